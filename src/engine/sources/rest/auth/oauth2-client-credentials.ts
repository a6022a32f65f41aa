/**
 * OAuth 2.0 client credentials grant (RFC 6749 4.4): the source's access token comes from the
 * token endpoint, the client authenticated by HTTP Basic of its id and secret (2.3.1, each part
 * form-encoded first), which the RFC requires every server to support, or, where a provider's
 * client setting asks for it (Auth0 and PingOne enforce the method configured per application),
 * by client_id and client_secret in the form body. The token is kept until a minute before it
 * expires, or until the API refuses it.
 */
import { authError, ConvergenceError, ExitCode, validationError } from '../../../../lib/errors.ts';
import { basicCredentials, Redactor } from '../../../../lib/redaction.ts';
import { retry } from '../../../../lib/retry.ts';
import { excerpt } from '../errors.ts';
import { sourceFetch } from '../transport.ts';
import type { AccessTokenProvider } from '../types.ts';
import { isListedHost } from '../../../../lib/net/private-hosts.ts';

export interface ClientCredentials {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** The tenant secret holding the client secret, named in messages. */
  clientSecretName: string;
  scope?: string;
  audience?: string;
  /** `basic` (the default) or `post` (client_secret_post). */
  clientAuth?: 'basic' | 'post';
}

export interface TokenEndpointOptions {
  privateHosts: readonly string[];
  /** Receives every credential value and token, so the process redacts it wherever it reports. */
  onSecret: (value: string) => void;
  /** Clock in ms (tests); defaults to Date.now. */
  now?: () => number;
  timeoutMs?: number;
  /** Wait between attempts (tests); defaults to a timer that honours the signal. */
  sleep?: (ms: number) => Promise<void>;
}

/** A token is fetched again when fewer than this many ms of it remain. */
const REFRESH_MARGIN_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 30_000;
/** A busy or failing endpoint (429, 5xx, network) is asked again, briefly: the run itself is retried later. */
const RETRY_POLICY = { attempts: 3, baseDelayMs: 500, maxDelayMs: 5_000 };

/** application/x-www-form-urlencoded, as RFC 6749 2.3.1 encodes the id and secret before Basic. */
const formEncode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);

/**
 * The token URL as a URL, refused unless https or a host the operator lists as private (a local
 * endpoint): the client secret is never sent in clear text to anyone else.
 */
function tokenEndpoint(tokenUrl: string, privateHosts: readonly string[]): URL {
  const url = URL.canParse(tokenUrl) ? new URL(tokenUrl) : undefined;
  if (!url) throw validationError('auth.token_url is not a valid absolute URL');
  if (url.username || url.password) {
    throw validationError(`auth.token_url of ${url.host} carries credentials: the client id and secret go in client_id and client_secret`);
  }
  const local = url.protocol === 'http:' && isListedHost(url, privateHosts);
  if (url.protocol !== 'https:' && !local) {
    throw validationError(`auth.token_url must be an https URL (${url.protocol}//${url.host} would send the client secret in clear text)`, {
      suggestion: 'use the https token URL of the provider; an operator may list a local endpoint in rest_sources.private_hosts',
    });
  }
  return url;
}

/** A failure worth asking again: the endpoint was busy or unreachable. */
class TransientTokenFailure extends Error {}

interface IssuedToken {
  token: string;
  /** When to fetch a new one (ms); Infinity when the endpoint gave no lifetime. */
  refreshAt: number;
}

export class ClientCredentialsTokens implements AccessTokenProvider {
  readonly #credentials: ClientCredentials;
  readonly #endpoint: URL;
  readonly #options: TokenEndpointOptions;
  readonly #now: () => number;
  readonly #redactor: Redactor;
  /** The client authentication of every token request: a header, or form fields. */
  readonly #clientAuth: { headers: Record<string, string>; form: Record<string, string> };
  #current: IssuedToken | undefined;
  #pending: Promise<string> | undefined;

  constructor(credentials: ClientCredentials, options: TokenEndpointOptions) {
    this.#credentials = credentials;
    this.#endpoint = tokenEndpoint(credentials.tokenUrl, options.privateHosts);
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const encoded = basicCredentials(formEncode(credentials.clientId), formEncode(credentials.clientSecret));
    this.#clientAuth =
      credentials.clientAuth === 'post'
        ? { headers: {}, form: { client_id: credentials.clientId, client_secret: credentials.clientSecret } }
        : { headers: { authorization: `Basic ${encoded}` }, form: {} };
    const secrets = [credentials.clientSecret, encoded, basicCredentials(credentials.clientId, credentials.clientSecret)];
    this.#redactor = new Redactor(secrets);
    for (const value of secrets) options.onSecret(value);
  }

  /** The current token while more than a minute of it remains; else one request, shared by concurrent callers. */
  token(signal?: AbortSignal): Promise<string> {
    if (this.#current && this.#now() < this.#current.refreshAt) return Promise.resolve(this.#current.token);
    this.#pending ??= this.#fetchToken(signal).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  invalidate(): void {
    this.#current = undefined;
  }

  async #fetchToken(signal: AbortSignal | undefined): Promise<string> {
    try {
      const issued = await retry(() => this.#request(signal), RETRY_POLICY, {
        retryable: (error) => error instanceof TransientTokenFailure,
        ...(signal ? { signal } : {}),
        ...(this.#options.sleep ? { sleep: this.#options.sleep } : {}),
      });
      this.#options.onSecret(issued.token);
      this.#redactor.add(issued.token);
      this.#current = issued;
      return issued.token;
    } catch (error) {
      if (error instanceof TransientTokenFailure) {
        throw new ConvergenceError(
          'TOKEN_ENDPOINT',
          ExitCode.pipelineFailed,
          `${error.message} (after ${RETRY_POLICY.attempts} attempts)`,
          {
            data: { tokenHost: this.#endpoint.host },
          },
        );
      }
      throw this.#redactor.redactError(error);
    }
  }

  async #request(signal: AbortSignal | undefined): Promise<IssuedToken> {
    const started = this.#now();
    const timeout = AbortSignal.timeout(this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const response = await this.#post(signal ? AbortSignal.any([signal, timeout]) : timeout, signal);
    const text = await response.text();
    const host = this.#endpoint.host;
    if (response.status === 429 || response.status >= 500) {
      throw new TransientTokenFailure(`the OAuth token endpoint ${host} answered HTTP ${response.status}`);
    }
    if (response.status >= 300 && response.status < 400) {
      throw validationError(`the OAuth token endpoint ${host} answered with a redirect (HTTP ${response.status}), which is not followed`, {
        suggestion: 'set auth.token_url to the final token URL of the provider',
      });
    }
    if (response.status !== 200) throw this.#refusal(response.status, text);
    return this.#issued(text, started);
  }

  async #post(timeoutAndAbort: AbortSignal, callerSignal: AbortSignal | undefined): Promise<Response> {
    const { scope, audience } = this.#credentials;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      ...(scope ? { scope } : {}),
      ...(audience ? { audience } : {}),
      ...this.#clientAuth.form,
    });
    try {
      return await sourceFetch(
        this.#endpoint,
        {
          method: 'POST',
          redirect: 'manual',
          headers: {
            ...this.#clientAuth.headers,
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
          },
          body: body.toString(),
          signal: timeoutAndAbort,
        },
        this.#options.privateHosts,
      );
    } catch (error) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      // The transport refuses some destinations on purpose (a private address): that is final.
      const cause = error instanceof TypeError ? error.cause : undefined;
      if (error instanceof ConvergenceError) throw error;
      if (cause instanceof ConvergenceError) throw cause;
      const detail = timeoutAndAbort.aborted ? 'timed out' : cause instanceof Error ? cause.message : String(error);
      throw new TransientTokenFailure(`the OAuth token endpoint ${this.#endpoint.host} could not be reached: ${detail}`);
    }
  }

  /** 400/401/403: the endpoint refused these credentials or this request (RFC 6749 5.2). */
  #refusal(status: number, text: string): ConvergenceError {
    const { error, description } = oauthError(text);
    const reason = error ? `${error}${description ? `: ${description}` : ''}` : excerpt(text) || 'no error given';
    const message = this.#redactor.redact(
      `the OAuth token endpoint ${this.#endpoint.host} refused the client credentials (HTTP ${status}, ${reason})`,
    );
    const named = [this.#credentials.scope ? 'scope' : '', this.#credentials.audience ? 'audience' : ''].filter(Boolean);
    return authError(message, {
      suggestion: `check auth.client_id${named.map((key) => `, auth.${key}`).join('')} and the client secret stored as "${this.#credentials.clientSecretName}" (convergence tenant credentials set)`,
      data: { tokenHost: this.#endpoint.host, status, ...(error ? { oauthError: error } : {}) },
    });
  }

  #issued(text: string, started: number): IssuedToken {
    const host = this.#endpoint.host;
    const answer = parseObject(text);
    const token = answer?.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new ConvergenceError(
        'TOKEN_ENDPOINT',
        ExitCode.pipelineFailed,
        `the OAuth token endpoint ${host} answered without an access_token`,
      );
    }
    const type = answer?.token_type;
    // RFC 6749 7.1: the type is case-insensitive; a source can only send a bearer token.
    if (type !== undefined && (typeof type !== 'string' || type.toLowerCase() !== 'bearer')) {
      this.#options.onSecret(token);
      throw validationError(`the OAuth token endpoint ${host} issued a token of type ${String(type)}; only Bearer tokens can be sent`);
    }
    return { token, refreshAt: refreshTime(answer?.expires_in, started) };
  }
}

/** When to fetch again: a minute before expiry (half the lifetime for tokens shorter than two minutes). */
function refreshTime(expiresIn: unknown, issuedAt: number): number {
  const seconds = typeof expiresIn === 'string' && /^\d+$/.test(expiresIn) ? Number(expiresIn) : expiresIn;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) return Infinity;
  const lifetime = seconds * 1000;
  return issuedAt + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2);
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The `error` and `error_description` of an OAuth error answer, shortened. */
function oauthError(text: string): { error?: string; description?: string } {
  const answer = parseObject(text);
  const error = typeof answer?.error === 'string' ? excerpt(answer.error, 60) : undefined;
  const description = typeof answer?.error_description === 'string' ? excerpt(answer.error_description) : undefined;
  return { ...(error ? { error } : {}), ...(description ? { description } : {}) };
}
