import { createHash } from 'node:crypto';

import { SourceHttpError, NetworkError, PaginationError, RedirectError, ResponseParseError, excerpt } from './errors.ts';
import { createPaginator, samePageError } from './paginators.ts';
import { RateLimiter } from '../../../lib/rate-limiter.ts';
import { pageRecordsReader } from './page-records.ts';
import { abortableSleep, retry } from '../../../lib/retry.ts';
import { parseRetryAfter, REST_RETRY_RULES } from './retry.ts';
import { accessTokenFor, baseUrl, fetchFollowing, requesterOf, type Requester } from './requester.ts';
import type { FetchPagesOptions, Page, RestSourceConfig } from './types.ts';
import { DEFAULTS } from './types.ts';
import { isConvergenceError } from '../../../lib/errors.ts';

export { sourceRedactor } from './requester.ts';

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * One attempt at one page: its access token, the request with redirects followed, and the answer
 * read whole; a non-2xx answer becomes a SourceHttpError (the retry loop decides what is retried).
 */
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
 * Fetch every page of a `rest_api` source, yielding the records of each page as it arrives
 * (shaped by records_path, records_format and include_parent: see page-records.ts). Retries 408/429/5xx/network errors with exponential backoff and full jitter (honouring
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
