/**
 * An OAuth 2.0 authorization server's token endpoint on 127.0.0.1 for the client credentials
 * grant (RFC 6749 4.4), with the rules of the RFC that a real one enforces: POST with a form body,
 * client authentication by HTTP Basic with form-encoded id and secret (2.3.1) or, where allowed,
 * by client_id/client_secret in the body; errors as JSON { error, error_description } with 400,
 * or 401 and WWW-Authenticate for a client that failed to authenticate (5.2); `Cache-Control:
 * no-store` on tokens (5.1). An API fake asks `accepts(authorization)` whether a bearer token is
 * one it issued and not yet expired.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenServerOptions {
  clientId: string;
  clientSecret: string;
  /** Scopes the client may be granted; a request for another one is refused (invalid_scope). */
  scopes?: string[];
  /** When set, the request must name this audience (Auth0's extension). */
  audience?: string;
  /**
   * The client authentication methods the client is registered for (default `basic`): `post` is
   * client_id and client_secret in the body. Like Auth0 and PingOne, another method is refused.
   */
  clientAuth?: Array<'basic' | 'post'>;
  /** Lifetime of an issued token. */
  expiresIn?: number;
  /** The token_type answered (RFC: "Bearer"). */
  tokenType?: string;
  now?: () => number;
}

export interface TokenRequestRecord {
  authorization: string | undefined;
  contentType: string | undefined;
  form: Record<string, string>;
  /** How the client authenticated, when it did. */
  clientAuth: 'basic' | 'post' | undefined;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export class OAuth2TokenServer {
  readonly tokenUrl: string;
  readonly requests: TokenRequestRecord[] = [];
  readonly #server: Server;
  readonly #options: TokenServerOptions;
  readonly #now: () => number;
  /** Issued tokens and when they expire (ms). */
  readonly #tokens = new Map<string, number>();
  readonly #scripted: Reply[] = [];
  #delayMs = 0;

  private constructor(server: Server, options: TokenServerOptions) {
    this.#server = server;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const { port } = server.address() as AddressInfo;
    this.tokenUrl = `http://127.0.0.1:${port}/oauth/token`;
  }

  static async start(options: TokenServerOptions): Promise<OAuth2TokenServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new OAuth2TokenServer(server, options);
    server.on('request', (request, response) => void fake.#handle(request, response));
    return fake;
  }

  /** The host:port of the endpoint, as an operator lists it in rest_sources.private_hosts. */
  get host(): string {
    return new URL(this.tokenUrl).host;
  }

  /** The next requests are answered with these replies, in order, before the normal handling resumes. */
  script(...replies: Reply[]): void {
    this.#scripted.push(...replies);
  }

  /** Every answer waits this long (to let concurrent callers pile up). */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  /** Every issued token stops being accepted (the provider rotated its signing keys). */
  revokeAll(): void {
    this.#tokens.clear();
  }

  /** Whether `Authorization: Bearer <token>` carries a token this server issued that has not expired. */
  accepts(authorization: string | undefined): boolean {
    const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    const expiresAt = token ? this.#tokens.get(token) : undefined;
    return expiresAt !== undefined && expiresAt > this.#now();
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const text = await readBody(request);
    const form = Object.fromEntries(new URLSearchParams(text));
    const record: TokenRequestRecord = {
      authorization: request.headers.authorization,
      contentType: request.headers['content-type'],
      form,
      clientAuth: undefined,
    };
    this.requests.push(record);
    if (this.#delayMs) await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
    const reply = this.#scripted.shift() ?? this.#answer(request, record);
    response.writeHead(reply.status, {
      'content-type': 'application/json;charset=UTF-8',
      'cache-control': 'no-store',
      pragma: 'no-cache',
      ...(reply.headers ?? {}),
    });
    response.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
  }

  #answer(request: IncomingMessage, record: TokenRequestRecord): Reply {
    if (new URL(request.url ?? '/', this.tokenUrl).pathname !== '/oauth/token') return { status: 404, body: { error: 'not_found' } };
    if (request.method !== 'POST') return oauthError(405, 'invalid_request', 'the token endpoint takes POST');
    if (!record.contentType?.startsWith('application/x-www-form-urlencoded')) {
      return oauthError(400, 'invalid_request', 'content-type must be application/x-www-form-urlencoded');
    }
    const client = this.#authenticate(record);
    if (client === 'invalid') {
      return oauthError(401, 'invalid_client', 'Client authentication failed.', { 'www-authenticate': 'Basic realm="token"' });
    }
    if (record.form.grant_type !== 'client_credentials') {
      return oauthError(400, 'unsupported_grant_type', `grant_type ${record.form.grant_type ?? '(none)'} is not supported`);
    }
    const requested = record.form.scope?.split(' ').filter(Boolean) ?? [];
    const unknownScope = requested.find((scope) => !(this.#options.scopes ?? []).includes(scope));
    if (unknownScope) return oauthError(400, 'invalid_scope', `scope ${unknownScope} is not granted to this client`);
    if (this.#options.audience !== undefined && record.form.audience !== this.#options.audience) {
      return oauthError(403, 'access_denied', `Service not enabled within domain: ${record.form.audience ?? ''}`);
    }
    const expiresIn = this.#options.expiresIn ?? 3600;
    const token = `at-${randomBytes(16).toString('hex')}`;
    this.#tokens.set(token, this.#now() + expiresIn * 1000);
    return {
      status: 200,
      body: {
        access_token: token,
        token_type: this.#options.tokenType ?? 'Bearer',
        expires_in: expiresIn,
        ...(requested.length ? { scope: requested.join(' ') } : {}),
      },
    };
  }

  /** RFC 6749 2.3: exactly one client authentication method; Basic parts are form-decoded. */
  #authenticate(record: TokenRequestRecord): 'ok' | 'invalid' {
    const basic = /^Basic (\S+)$/i.exec(record.authorization ?? '')?.[1];
    const inBody = record.form.client_secret !== undefined;
    if (basic && inBody) return 'invalid';
    const methods = this.#options.clientAuth ?? ['basic'];
    let id: string | undefined;
    let secret: string | undefined;
    if (basic && methods.includes('basic')) {
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return 'invalid';
      const formDecode = (part: string) => new URLSearchParams(`v=${part}`).get('v') ?? '';
      id = formDecode(decoded.slice(0, colon));
      secret = formDecode(decoded.slice(colon + 1));
      record.clientAuth = 'basic';
    } else if (inBody && methods.includes('post')) {
      id = record.form.client_id;
      secret = record.form.client_secret;
      record.clientAuth = 'post';
    }
    return id === this.#options.clientId && secret === this.#options.clientSecret ? 'ok' : 'invalid';
  }
}

function oauthError(status: number, error: string, description: string, headers?: Record<string, string>): Reply {
  return { status, body: { error, error_description: description }, ...(headers ? { headers } : {}) };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
