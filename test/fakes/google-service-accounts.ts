/**
 * Service-account keys for fakes of Google APIs, and the check those APIs make of a self-signed
 * JWT used directly as a bearer token ("service account authorization without OAuth"): signed
 * RS256 by the private key of a key the account holds (the `kid` header names it), `iss` and
 * `sub` the account's email, a `scope` claim granting the API's scope, not expired, and issued
 * for at most an hour. google-auth-library signs such a token itself with the JWT client option
 * `useJWTAccessWithScope`, without any token endpoint.
 *
 * A fake API asks `verifyBearer(request.headers.authorization, scope)` and answers 401 when it
 * returns `{ ok: false }`, as Google answers a missing or invalid credential.
 */
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';

export interface IssuedKey {
  email: string;
  /** The key file as Google's console downloads it (JSON text): what a tenant stores as its secret. */
  json: string;
  privateKeyId: string;
}

export type BearerCheck = { ok: true; email: string; scopes: string[] } | { ok: false; reason: string };

type Claims = Record<string, unknown>;

const MAX_LIFETIME_SECONDS = 3600;
/** Clock skew Google tolerates on iat. */
const SKEW_SECONDS = 300;

export class GoogleServiceAccounts {
  /** Public keys by private_key_id; a deleted key is removed. */
  readonly #keys = new Map<string, { email: string; publicKey: KeyObject }>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** A new key for `email` (a fresh RSA key pair), as a key file JSON. */
  issue(email: string, projectId = 'demo-project'): IssuedKey {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const privateKeyId = randomBytes(20).toString('hex');
    this.#keys.set(privateKeyId, { email, publicKey });
    const keyFile = {
      type: 'service_account',
      project_id: projectId,
      private_key_id: privateKeyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: 'https://oauth2.googleapis.com/token',
      universe_domain: 'googleapis.com',
    };
    return { email, json: JSON.stringify(keyFile, null, 2), privateKeyId };
  }

  /** The key no longer authenticates (deleted in the console). */
  revoke(privateKeyId: string): void {
    this.#keys.delete(privateKeyId);
  }

  /** Whether an Authorization header carries a valid self-signed JWT granting `scope`. */
  verifyBearer(authorization: string | undefined, scope: string): BearerCheck {
    const match = /^Bearer (\S+)$/i.exec(authorization ?? '');
    if (!match) return { ok: false, reason: 'no bearer token' };
    const parts = match[1]!.split('.');
    if (parts.length !== 3) return { ok: false, reason: 'not a JWT' };
    const [headerPart, payloadPart, signature] = parts as [string, string, string];
    const header = decode(headerPart);
    const claims = decode(payloadPart);
    if (!header || !claims) return { ok: false, reason: 'malformed JWT' };
    if (header.alg !== 'RS256') return { ok: false, reason: 'alg must be RS256' };
    const key = typeof header.kid === 'string' ? this.#keys.get(header.kid) : undefined;
    if (!key) return { ok: false, reason: 'unknown key id' };
    const signed = verify('RSA-SHA256', Buffer.from(`${headerPart}.${payloadPart}`), key.publicKey, Buffer.from(signature, 'base64url'));
    if (!signed) return { ok: false, reason: 'invalid signature' };
    if (claims.iss !== key.email || claims.sub !== key.email) return { ok: false, reason: 'iss and sub must be the key account' };
    const now = this.#now() / 1000;
    if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number') return { ok: false, reason: 'iat and exp are required' };
    if (claims.exp <= now) return { ok: false, reason: 'token expired' };
    if (claims.iat > now + SKEW_SECONDS || claims.exp - claims.iat > MAX_LIFETIME_SECONDS) {
      return { ok: false, reason: 'token lifetime must be at most an hour from iat' };
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
    if (!scopes.includes(scope)) return { ok: false, reason: `scope ${scope} not granted` };
    return { ok: true, email: key.email, scopes };
  }
}

function decode(part: string): Claims | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value && typeof value === 'object' ? (value as Claims) : undefined;
  } catch {
    return undefined;
  }
}
