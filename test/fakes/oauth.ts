/**
 * Google's OAuth 2.0 token endpoint on 127.0.0.1, for service-account key files: the JWT-bearer
 * grant google-auth-library's JWT client sends. Like Google, it only answers an assertion signed
 * by the private key of a key file it issued; an assertion carrying `target_audience` gets an ID
 * token signed by the fake's own key, which `verifyIdToken` checks the way a Cloud Run front end
 * would (signature, aud, exp).
 */
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** google-auth-library signs every assertion for Google's own token URL, whatever the key file says. */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const TOKEN_LIFETIME_SECONDS = 3600;

export interface TokenRequest {
  grantType: string;
  targetAudience?: string;
  email?: string;
}

type Claims = Record<string, unknown>;

export class OAuthFake {
  readonly tokenUri: string;
  readonly requests: TokenRequest[] = [];
  readonly #server: Server;
  readonly #signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  readonly #keyId = randomBytes(8).toString('hex');
  /** Public keys of the key files this fake issued, by service-account email. */
  readonly #accounts = new Map<string, KeyObject>();
  #refusal: 'invalid_grant' | null = null;

  private constructor(server: Server) {
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.tokenUri = `http://127.0.0.1:${port}/token`;
  }

  static async start(): Promise<OAuthFake> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new OAuthFake(server);
    server.on('request', (request, response) => void fake.#handle(request, response));
    return fake;
  }

  /** Writes a service-account JSON key (a fresh RSA key) whose token_uri is this fake; returns its path. */
  async writeKeyFile(dir: string, email: string): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#accounts.set(email, publicKey);
    const keyId = randomBytes(20).toString('hex');
    const path = join(dir, `${email.split('@')[0]}-${keyId.slice(0, 8)}.json`);
    const keyFile = {
      type: 'service_account',
      project_id: email.split('@')[1]?.split('.')[0] ?? 'demo-project',
      private_key_id: keyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUri,
      universe_domain: 'googleapis.com',
    };
    await writeFile(path, JSON.stringify(keyFile, null, 2), { mode: 0o600 });
    return path;
  }

  /** `invalid_grant`: every token request is answered the way Google answers a revoked or expired key. */
  refuse(error: 'invalid_grant' | null): void {
    this.#refusal = error;
  }

  /** The ID token's email when it was signed by this fake for `audience` and has not expired. */
  verifyIdToken(token: string, audience: string): { email: string } | undefined {
    const claims = verifiedClaims(token, this.#signingKey.publicKey);
    if (!claims || claims.aud !== audience || !notExpired(claims)) return undefined;
    return typeof claims.email === 'string' ? { email: claims.email } : undefined;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const form = new URLSearchParams(await readBody(request));
    if (request.method !== 'POST' || new URL(request.url ?? '/', this.tokenUri).pathname !== '/token') {
      return reply(response, 404, { error: 'not_found' });
    }
    const grantType = form.get('grant_type') ?? '';
    const assertion = form.get('assertion') ?? '';
    const unverified = decodeClaims(assertion);
    const email = typeof unverified?.iss === 'string' ? unverified.iss : undefined;
    const targetAudience = typeof unverified?.target_audience === 'string' ? unverified.target_audience : undefined;
    this.requests.push({ grantType, ...(targetAudience ? { targetAudience } : {}), ...(email ? { email } : {}) });

    if (grantType !== JWT_BEARER) {
      return reply(response, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: ' + grantType });
    }
    if (this.#refusal) {
      return reply(response, 400, { error: this.#refusal, error_description: 'Token has been expired or revoked.' });
    }
    const publicKey = email ? this.#accounts.get(email) : undefined;
    const claims = publicKey ? verifiedClaims(assertion, publicKey) : undefined;
    if (!claims) return reply(response, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    if (claims.aud !== GOOGLE_TOKEN_URL && claims.aud !== this.tokenUri) {
      return reply(response, 400, { error: 'invalid_grant', error_description: 'Invalid JWT: aud is not the token URI.' });
    }
    if (!notExpired(claims)) {
      return reply(response, 400, {
        error: 'invalid_grant',
        error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.',
      });
    }
    if (targetAudience) return reply(response, 200, { id_token: this.#idToken(email!, targetAudience) });
    return reply(response, 200, {
      access_token: `ya29.fake-${randomBytes(16).toString('hex')}`,
      expires_in: TOKEN_LIFETIME_SECONDS,
      token_type: 'Bearer',
    });
  }

  #idToken(email: string, audience: string): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', kid: this.#keyId };
    const claims = {
      iss: 'https://accounts.google.com',
      aud: audience,
      azp: email,
      sub: email,
      email,
      email_verified: true,
      iat: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
    };
    const signingInput = `${base64url(header)}.${base64url(claims)}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), this.#signingKey.privateKey);
    return `${signingInput}.${signature.toString('base64url')}`;
  }
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeClaims(jwt: string): Claims | undefined {
  const payload = jwt.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return claims && typeof claims === 'object' ? (claims as Claims) : undefined;
  } catch {
    return undefined;
  }
}

/** The claims of an RS256 JWT whose signature `publicKey` verifies, else undefined. */
function verifiedClaims(jwt: string, publicKey: KeyObject): Claims | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  const [header, payload, signature] = parts as [string, string, string];
  let alg: unknown;
  try {
    alg = (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown }).alg;
  } catch {
    return undefined;
  }
  if (alg !== 'RS256') return undefined;
  const valid = verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, 'base64url'));
  return valid ? decodeClaims(jwt) : undefined;
}

function notExpired(claims: Claims): boolean {
  return typeof claims.exp === 'number' && claims.exp > Date.now() / 1000;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reply(response: ServerResponse, status: number, body: object): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(body));
}
