import { createHash } from 'node:crypto';

import { basicCredentials, Redactor, userinfoSecrets } from '../../../lib/redaction.ts';
import { SourceHttpError, NetworkError, PaginationError, RedirectError, ResponseParseError, excerpt, safeUrl } from './errors.ts';
import { createPaginator, samePageError } from './paginators.ts';
import { RateLimiter } from '../../../lib/rate-limiter.ts';
import { extractRecords } from './records.ts';
import { abortableSleep, retry } from '../../../lib/retry.ts';
import { parseRetryAfter, REST_RETRY_RULES } from './retry.ts';
import type { FetchPagesOptions, Page, RestAuth, RestSourceConfig } from './types.ts';
import { DEFAULTS } from './types.ts';
import { sourceFetch } from './transport.ts';

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

/** Request headers for a config: Accept, configured headers, then auth (auth wins). */
function buildHeaders(config: RestSourceConfig): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json', ...(config.headers ?? {}) };
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

/** How a source talks to its API: headers (with credentials for its own origin only) and what to hide. */
interface Requester {
  method: 'GET';
  /** Credentials go only to the origin of the configured URL, never to where a link or redirect points. */
  headersFor(url: URL): Record<string, string>;
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
    method: 'GET',
    headersFor: (url) => (url.origin === origin ? headers : anonymous),
    redactor,
    privateHosts: config.private_hosts,
    show: (url) => redactor.redact(safeUrl(url)),
  };
}

/** fetch, following redirects itself so that credentials never follow one to another origin. */
async function fetchFollowing(url: URL, requester: Requester, signal: AbortSignal): Promise<Response> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const response = await sourceFetch(
      current,
      { method: requester.method, headers: requester.headersFor(current), signal, redirect: 'manual' },
      requester.privateHosts,
    );
    const location = response.headers.get('location');
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return response;
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
  let response: Response;
  let text: string;
  try {
    response = await fetchFollowing(url, requester, signal);
    text = await response.text();
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout.aborted) throw new NetworkError(shown, `no complete response within ${timeoutMs} ms`, true);
    if (error instanceof RedirectError) throw error;
    const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new NetworkError(shown, requester.redactor.redact(cause), false);
  }
  if (response.status < 200 || response.status >= 300) {
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'), now());
    // Redacted before it is cut: a secret cut in half by the excerpt would no longer match.
    throw new SourceHttpError(response.status, shown, excerpt(requester.redactor.redact(text)), retryAfter);
  }
  return { status: response.status, headers: response.headers, text };
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
    const records = extractRecords(body, config.records_path, show(current));
    if (pagesByNumber && records.length > 0) {
      // An API that ignores the page/offset parameter returns the same page under a new URL.
      const digest = createHash('sha256').update(response.text).digest('hex');
      if (digest === previousDigest) throw samePageError(current, 'the page/offset parameter seems to be ignored');
      previousDigest = digest;
    }
    const next = paginator.next({ url: current, body, records, headers: response.headers });
    if (next !== null && next.href === current.href) throw samePageError(current, 'the next page link points at the current page');
    yield { records, url: show(current), page: pageNo };
    url = next;
  }
}
