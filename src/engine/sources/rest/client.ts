import { createHash } from 'node:crypto';

import { HttpError, NetworkError, PaginationError, ResponseParseError, excerpt, redact, safeUrl } from './errors.ts';
import { createPaginator, samePageError } from './paginators.ts';
import { RateLimiter } from '../../../lib/rate-limiter.ts';
import { extractRecords } from './records.ts';
import { abortableSleep, parseRetryAfter, withRetry } from './retry.ts';
import type { FetchPagesOptions, Page, RestAuth, RestSourceConfig } from './types.ts';
import { DEFAULTS } from './types.ts';

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** Request headers for a config: Accept, configured headers, then auth (auth wins). */
export function buildHeaders(config: RestSourceConfig): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json', ...(config.headers ?? {}) };
  const auth = config.auth;
  if (auth?.type === 'bearer') headers.authorization = `Bearer ${auth.token}`;
  else if (auth?.type === 'basic') headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  else if (auth?.type === 'header') headers[auth.name] = auth.value;
  return headers;
}

/** Every secret string that must never appear in an error message. */
function secretsOf(auth: RestAuth | undefined): string[] {
  if (!auth) return [];
  if (auth.type === 'bearer') return [auth.token];
  if (auth.type === 'header') return [auth.value];
  return [auth.password, Buffer.from(`${auth.username}:${auth.password}`).toString('base64')];
}

/** The base URL: config url with config params merged into its query. */
export function baseUrl(config: RestSourceConfig): URL {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new TypeError(`rest_api url is not a valid absolute URL: ${JSON.stringify(config.url)}`);
  }
  for (const [name, value] of Object.entries(config.params ?? {})) url.searchParams.set(name, value);
  return url;
}

async function requestOnce(
  url: URL,
  config: RestSourceConfig,
  headers: Record<string, string>,
  secrets: string[],
  options: FetchPagesOptions,
  now: () => number,
): Promise<RawResponse> {
  const timeoutMs = config.timeout_ms ?? DEFAULTS.timeout_ms;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const shown = safeUrl(url);
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { method: config.method ?? 'GET', headers, signal, redirect: 'follow' });
    text = await response.text();
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout.aborted) throw new NetworkError(shown, `no complete response within ${timeoutMs} ms`, true);
    const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new NetworkError(shown, redact(cause, secrets), false);
  }
  if (response.status < 200 || response.status >= 300) {
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'), now());
    throw new HttpError(response.status, shown, redact(excerpt(text), secrets), retryAfter);
  }
  return { status: response.status, headers: response.headers, text };
}

/**
 * Fetch every page of a `rest_api` source, yielding the records of each page as it arrives.
 * Retries 408/429/5xx/network errors with exponential backoff and full jitter (honouring
 * Retry-After), applies the optional rate limit, and stops with a PaginationError when the API
 * does not advance or `max_pages` is exceeded. Error messages never contain auth secrets.
 */
export async function* fetchPages(config: RestSourceConfig, options: FetchPagesOptions = {}): AsyncGenerator<Page> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => abortableSleep(ms, options.signal));
  const maxPages = config.max_pages ?? DEFAULTS.max_pages;
  const policy = {
    maxAttempts: config.retry?.max_attempts ?? DEFAULTS.retry.max_attempts,
    baseDelayMs: config.retry?.base_delay_ms ?? DEFAULTS.retry.base_delay_ms,
    maxDelayMs: config.retry?.max_delay_ms ?? DEFAULTS.retry.max_delay_ms,
  };
  const limiter = config.rate_limit ? new RateLimiter({ requestsPerSecond: config.rate_limit.requests_per_second, now, sleep }) : undefined;
  const headers = buildHeaders(config);
  const secrets = secretsOf(config.auth);
  const paginator = createPaginator(config.pagination);
  const requested = new Set<string>();

  let url: URL | null = paginator.first(baseUrl(config));
  const pagesByNumber = config.pagination.type === 'page_number' || config.pagination.type === 'offset';
  let previousDigest: string | undefined;
  let page = 0;
  while (url !== null) {
    if (page >= maxPages) {
      throw new PaginationError(
        safeUrl(url),
        `stopped after max_pages=${maxPages} pages: the API still has a next page (${safeUrl(url)}); raise max_pages if this is expected`,
      );
    }
    if (requested.has(url.href)) throw samePageError(url, 'the next request is identical to one already made');
    requested.add(url.href);
    page += 1;
    const current: URL = url;
    const pageNo = page;

    const response = await withRetry(
      async (attempt) => {
        await limiter?.acquire();
        options.signal?.throwIfAborted();
        options.onRequest?.({ url: safeUrl(current), page: pageNo, attempt });
        return requestOnce(current, config, headers, secrets, options, now);
      },
      policy,
      { sleep, random: options.random, signal: options.signal },
    );

    let body: unknown;
    try {
      body = response.text.trim() === '' ? null : JSON.parse(response.text);
    } catch (error) {
      throw new ResponseParseError(
        safeUrl(current),
        pageNo,
        `${(error as Error).message}; body starts with ${JSON.stringify(redact(excerpt(response.text, 80), secrets))}`,
      );
    }
    const records = extractRecords(body, config.records_path, current.href);
    if (pagesByNumber && records.length > 0) {
      // An API that ignores the page/offset parameter returns the same page under a new URL.
      const digest = createHash('sha256').update(response.text).digest('hex');
      if (digest === previousDigest) throw samePageError(current, 'the page/offset parameter seems to be ignored');
      previousDigest = digest;
    }
    const next = paginator.next({ url: current, body, records, headers: response.headers });
    if (next !== null && next.href === current.href) throw samePageError(current, 'the next page link points at the current page');
    yield { records, url: current.href, page: pageNo };
    url = next;
  }
}
