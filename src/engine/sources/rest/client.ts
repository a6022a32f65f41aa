import { createHash } from 'node:crypto';

import { basicCredentials, Redactor, userinfoSecrets } from '../../../lib/redaction.ts';
import { SourceHttpError, NetworkError, PaginationError, RedirectError, ResponseParseError, excerpt, safeUrl } from './errors.ts';
import { createPaginator, samePageError } from './paginators.ts';
import { RateLimiter } from '../../../lib/rate-limiter.ts';
import { pageRecordsReader } from './page-records.ts';
import { abortableSleep, retry } from '../../../lib/retry.ts';
import { parseRetryAfter, REST_RETRY_RULES } from './retry.ts';
import type { AccessTokenProvider, FetchPagesOptions, Page, RestAuth, RestSourceConfig } from './types.ts';
import { DEFAULTS } from './types.ts';
import { sourceFetch } from './transport.ts';
import { isConvergenceError } from '../../../lib/errors.ts';

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * The credentials of a config: its `auth`, else the userinfo of its URL as basic auth (fetch
 * refuses URLs that carry credentials, and a URL is shown in messages, so they never stay in it).
 */
function authOf(config: RestSourceConfig): RestAuth | undefined {
  if (config.auth) return config.auth;
  const userinfo = userinfoOf(config.url);
  return userinfo ? { type: 'basic', ...userinfo } : undefined;
}

function userinfoOf(url: string): { username: string; password: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (!parsed.username && !parsed.password) return undefined;
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  return { username: decode(parsed.username), password: decode(parsed.password) };
}

/**
 * Request headers for a config: Accept, configured headers, the body's content type, then auth
 * (auth wins). An access token is not known yet: it is added per request.
 */
function buildHeaders(config: RestSourceConfig): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json', ...(config.headers ?? {}) };
  if (bodyOf(config) !== undefined) headers['content-type'] = 'application/json';
  const auth = authOf(config);
  if (auth?.type === 'bearer') headers.authorization = `Bearer ${auth.token}`;
  else if (auth?.type === 'basic') headers.authorization = `Basic ${basicCredentials(auth.username, auth.password)}`;
  else if (auth?.type === 'header') headers[auth.name] = auth.value;
  return headers;
}

/**
 * Every secret of a source, in every spelling it may come back in: the rendered secret values,
 * the auth secret (and the base64 of basic auth) and the URL's userinfo.
 */
export function sourceRedactor(config: RestSourceConfig): Redactor {
  const redactor = new Redactor(config.secrets ?? []);
  for (const value of userinfoSecrets(config.url)) redactor.add(value);
  const auth = authOf(config);
  if (auth?.type === 'bearer') redactor.add(auth.token);
  else if (auth?.type === 'header') redactor.add(auth.value);
  else if (auth?.type === 'basic') {
    redactor.add(auth.password);
    redactor.add(basicCredentials(auth.username, auth.password));
    // Without a password the user name is the credential (`https://TOKEN@host`).
    if (!auth.password) redactor.add(auth.username);
  }
  return redactor;
}

/** The JSON text a POST sends on every page; undefined for a GET or a POST without body. */
function bodyOf(config: RestSourceConfig): string | undefined {
  return config.method === 'POST' && config.body !== undefined ? JSON.stringify(config.body) : undefined;
}

/** The base URL: config url without userinfo, with config params merged into its query. */
function baseUrl(config: RestSourceConfig): URL {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new TypeError('rest_api url is not a valid absolute URL');
  }
  url.username = '';
  url.password = '';
  for (const [name, value] of Object.entries(config.params ?? {})) {
    url.searchParams.delete(name);
    // A list repeats its key in order (`group_by[]=model&group_by[]=api_key_id`).
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, item);
  }
  return url;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** Redirects that keep the method and body; the others turn a request into a GET without body. */
const BODY_KEEPING_REDIRECTS = new Set([307, 308]);

/** How a source talks to its API: method, body, headers (with credentials for its own origin only) and what to hide. */
interface Requester {
  method: 'GET' | 'POST';
  body: string | undefined;
  /** The origin of the configured URL: the only one credentials (and a POST) go to. */
  origin: string;
  /** Credentials go only to the origin of the configured URL, never to where a link or redirect points. */
  headersFor(url: URL, accessToken: string | undefined): Record<string, string>;
  /** Where an `access_token` auth gets its tokens. */
  tokens: AccessTokenProvider | undefined;
  redactor: Redactor;
  privateHosts: readonly string[] | undefined;
  /** A URL as messages show it: no userinfo, credential-looking parameters and secrets replaced. */
  show(url: URL): string;
}

function requesterOf(config: RestSourceConfig): Requester {
  const origin = baseUrl(config).origin;
  const headers = buildHeaders(config);
  const anonymous = { accept: headers.accept ?? 'application/json' };
  const redactor = sourceRedactor(config);
  return {
    method: config.method ?? 'GET',
    body: bodyOf(config),
    origin,
    headersFor: (url, accessToken) => {
      if (url.origin !== origin) return anonymous;
      return accessToken === undefined ? headers : { ...headers, authorization: `Bearer ${accessToken}` };
    },
    tokens: config.auth?.type === 'access_token' ? config.auth.provider : undefined,
    redactor,
    privateHosts: config.private_hosts,
    show: (url) => redactor.redact(safeUrl(url)),
  };
}

/** The access token of a request, if the source has one; every token obtained is redacted from then on. */
async function accessTokenFor(requester: Requester, signal: AbortSignal): Promise<string | undefined> {
  if (!requester.tokens) return undefined;
  const token = await requester.tokens.token(signal);
  requester.redactor.add(token);
  return token;
}

/**
 * Why a POST may not follow a redirect, or undefined when it may: only 307 and 308 keep the
 * method and body (301, 302 and 303 would silently turn it into a GET without its body), and
 * only to the source's own origin (the body may carry what the API needs kept secret).
 */
function postRedirectRefusal(status: number, next: URL, origin: string): string | undefined {
  if (!BODY_KEEPING_REDIRECTS.has(status)) {
    return `the API answered ${status} to a POST, which would turn it into a GET without its body; set url to the address the API redirects to`;
  }
  if (next.origin !== origin)
    return `a POST is not redirected to another origin (${next.origin}); set url to that address if it is trusted`;
  return undefined;
}

/** One response and the URL that gave it (after redirects). */
interface Sent {
  response: Response;
  at: URL;
}

/** fetch, following redirects itself so that credentials never follow one to another origin. */
async function fetchFollowing(url: URL, requester: Requester, accessToken: string | undefined, signal: AbortSignal): Promise<Sent> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const response = await sourceFetch(
      current,
      {
        method: requester.method,
        headers: requester.headersFor(current, accessToken),
        ...(requester.body === undefined ? {} : { body: requester.body }),
        signal,
        redirect: 'manual',
      },
      requester.privateHosts,
    );
    const location = response.headers.get('location');
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return { response, at: current };
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new RedirectError(requester.show(url), `more than ${MAX_REDIRECTS} redirects`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new RedirectError(requester.show(current), 'its Location is not a URL');
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new RedirectError(requester.show(current), `it points to a ${next.protocol} URL`);
    }
    const refusal = requester.method === 'POST' ? postRedirectRefusal(response.status, next, requester.origin) : undefined;
    if (refusal) throw new RedirectError(requester.show(current), refusal);
    current = next;
  }
}

async function requestOnce(
  url: URL,
  config: RestSourceConfig,
  requester: Requester,
  options: FetchPagesOptions,
  now: () => number,
): Promise<RawResponse> {
  const timeoutMs = config.timeout_ms ?? DEFAULTS.timeout_ms;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const shown = requester.show(url);
  /** The caller's abort and the timeout win over whatever error they caused. */
  const stopped = (): unknown => {
    if (options.signal?.aborted) return options.signal.reason;
    if (timeout.aborted) return new NetworkError(shown, `no complete response within ${timeoutMs} ms`, true);
    return undefined;
  };
  const exchange = async (): Promise<RawResponse & { at: URL }> => {
    // A token provider's own error (the token endpoint refusing, say) passes through as it is.
    const accessToken = await accessTokenFor(requester, signal).catch((error: unknown) => {
      throw stopped() ?? error;
    });
    try {
      const { response, at } = await fetchFollowing(url, requester, accessToken, signal);
      return { status: response.status, headers: response.headers, text: await response.text(), at };
    } catch (error) {
      const reason = stopped();
      if (reason !== undefined) throw reason;
      // A redirect refused, or a refusal of the transport's address guard, is final as it is.
      if (error instanceof RedirectError || isConvergenceError(error)) throw error;
      const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new NetworkError(shown, requester.redactor.redact(cause), false);
    }
  };
  let response = await exchange();
  // A token may be revoked or expire early: one new token per request, only where the token went.
  if (response.status === 401 && requester.tokens && response.at.origin === requester.origin) {
    requester.tokens.invalidate();
    response = await exchange();
  }
  if (response.status < 200 || response.status >= 300) {
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'), now());
    // Redacted before it is cut: a secret cut in half by the excerpt would no longer match.
    throw new SourceHttpError(response.status, shown, excerpt(requester.redactor.redact(response.text)), retryAfter);
  }
  return { status: response.status, headers: response.headers, text: response.text };
}

/**
 * Fetch every page of a `rest_api` source, yielding the records of each page as it arrives.
 * Retries 408/429/5xx/network errors with exponential backoff and full jitter (honouring
 * Retry-After), applies the optional rate limit, and stops with a PaginationError when the API
 * does not advance or `max_pages` is exceeded. No error, message or callback of it contains a
 * secret of the source, in any spelling: every error leaves through the source's redactor.
 */
export async function* fetchPages(config: RestSourceConfig, options: FetchPagesOptions = {}): AsyncGenerator<Page> {
  const requester = requesterOf(config);
  try {
    yield* pagesOf(config, requester, options);
  } catch (error) {
    throw requester.redactor.redactError(error);
  }
}

async function* pagesOf(config: RestSourceConfig, requester: Requester, options: FetchPagesOptions): AsyncGenerator<Page> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => abortableSleep(ms, options.signal));
  const maxPages = config.max_pages ?? DEFAULTS.max_pages;
  const policy = {
    attempts: Math.max(1, Math.floor(config.retry?.max_attempts ?? DEFAULTS.retry.max_attempts)),
    baseDelayMs: config.retry?.base_delay_ms ?? DEFAULTS.retry.base_delay_ms,
    maxDelayMs: config.retry?.max_delay_ms ?? DEFAULTS.retry.max_delay_ms,
  };
  const limiter = config.rate_limit ? new RateLimiter({ requestsPerSecond: config.rate_limit.requests_per_second, now, sleep }) : undefined;
  const paginator = createPaginator(config.pagination);
  const readRecords = pageRecordsReader(config);
  const requested = new Set<string>();
  const { redactor, show } = requester;

  let url: URL | null = paginator.first(baseUrl(config));
  const pagesByNumber = config.pagination.type === 'page_number' || config.pagination.type === 'offset';
  let previousDigest: string | undefined;
  let page = 0;
  while (url !== null) {
    if (page >= maxPages) {
      throw new PaginationError(
        show(url),
        `stopped after max_pages=${maxPages} pages: the API still has a next page (${show(url)}); raise max_pages if this is expected`,
      );
    }
    if (requested.has(url.href)) throw samePageError(url, 'the next request is identical to one already made');
    requested.add(url.href);
    page += 1;
    const current: URL = url;
    const pageNo = page;

    const response = await retry(
      async (attempt) => {
        await limiter?.acquire();
        options.signal?.throwIfAborted();
        options.onRequest?.({ url: show(current), page: pageNo, attempt });
        return requestOnce(current, config, requester, options, now);
      },
      policy,
      { ...REST_RETRY_RULES, sleep, random: options.random, signal: options.signal },
    );

    let body: unknown;
    try {
      body = response.text.trim() === '' ? null : JSON.parse(response.text);
    } catch (error) {
      throw new ResponseParseError(
        show(current),
        pageNo,
        `${redactor.redact((error as Error).message)}; body starts with ${JSON.stringify(excerpt(redactor.redact(response.text), 80))}`,
      );
    }
    const { rows, records } = readRecords(body, show(current));
    if (pagesByNumber && rows.length > 0) {
      // An API that ignores the page/offset parameter returns the same page under a new URL.
      const digest = createHash('sha256').update(response.text).digest('hex');
      if (digest === previousDigest) throw samePageError(current, 'the page/offset parameter seems to be ignored');
      previousDigest = digest;
    }
    // Paginators count what the API served: a header row is one of the rows of its page.
    const next = paginator.next({ url: current, body, records: rows, headers: response.headers });
    if (next !== null && next.href === current.href) throw samePageError(current, 'the next page link points at the current page');
    yield { records, url: show(current), page: pageNo };
    url = next;
  }
}
