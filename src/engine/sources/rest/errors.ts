/** Error classes of the rest_api source. Messages never contain headers, tokens or credentials. */

export class RestSourceError extends Error {
  override name = 'RestSourceError';
  /** Number of attempts made when the request was retried and gave up; undefined otherwise. */
  attempts: number | undefined;
}

export class SourceHttpError extends RestSourceError {
  override name = 'SourceHttpError';
  readonly status: number;
  readonly url: string;
  readonly bodyExcerpt: string;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, url: string, bodyExcerpt: string, retryAfterMs?: number) {
    super(`HTTP ${status} from ${url}${bodyExcerpt ? `: ${bodyExcerpt}` : ''}`);
    this.status = status;
    this.url = url;
    this.bodyExcerpt = bodyExcerpt;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A network failure or per-request timeout (retryable). */
export class NetworkError extends RestSourceError {
  override name = 'NetworkError';
  readonly url: string;
  readonly timedOut: boolean;
  constructor(url: string, detail: string, timedOut: boolean, options?: { cause?: unknown }) {
    super(timedOut ? `request to ${url} timed out: ${detail}` : `network error requesting ${url}: ${detail}`, options);
    this.url = url;
    this.timedOut = timedOut;
  }
}

/** A redirect the client will not follow: too many hops, or to a scheme other than http(s). */
export class RedirectError extends RestSourceError {
  override name = 'RedirectError';
  readonly url: string;
  constructor(url: string, detail: string) {
    super(`cannot follow the redirect from ${url}: ${detail}`);
    this.url = url;
  }
}

export class PaginationError extends RestSourceError {
  override name = 'PaginationError';
  readonly url: string;
  constructor(url: string, message: string) {
    super(message);
    this.url = url;
  }
}

export class RecordsPathError extends RestSourceError {
  override name = 'RecordsPathError';
  readonly url: string;
  readonly recordsPath: string;
  constructor(url: string, recordsPath: string, detail: string) {
    super(recordsPath ? `records_path "${recordsPath}" ${detail} in the response from ${url}` : `${detail} (response from ${url})`);
    this.url = url;
    this.recordsPath = recordsPath;
  }
}

/** A `records_format: rows_with_header` response whose header or rows do not fit together. */
export class RowsWithHeaderError extends RestSourceError {
  override name = 'RowsWithHeaderError';
  readonly url: string;
  constructor(url: string, detail: string) {
    super(`records_format rows_with_header: ${detail} (response from ${url})`);
    this.url = url;
  }
}

export class ResponseParseError extends RestSourceError {
  override name = 'ResponseParseError';
  readonly url: string;
  readonly page: number;
  constructor(url: string, page: number, detail: string) {
    super(`malformed JSON in page ${page} from ${url}: ${detail}`);
    this.url = url;
    this.page = page;
  }
}

/** Collapse whitespace and cut a response body to a short excerpt for error messages. */
export function excerpt(body: string, max = 200): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

const SENSITIVE_PARAM = /key|token|secret|password|passwd|signature|sig|auth|credential/i;

/** The URL with the values of credential-looking query parameters replaced, for error messages. */
export function safeUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return String(url);
  }
  if (parsed.username || parsed.password) {
    parsed.username = '';
    parsed.password = '';
  }
  for (const name of [...new Set(parsed.searchParams.keys())]) {
    if (SENSITIVE_PARAM.test(name)) parsed.searchParams.set(name, 'REDACTED');
  }
  return parsed.href;
}
