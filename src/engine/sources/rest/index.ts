export { authOf, baseUrl, buildHeaders, fetchPages, sourceRedactor } from './client.ts';
export {
  SourceHttpError,
  NetworkError,
  PaginationError,
  RecordsPathError,
  RedirectError,
  ResponseParseError,
  RestSourceError,
  redact,
  safeUrl,
} from './errors.ts';
export { findLink, parseLinkHeader } from './link-header.ts';
export type { Link } from './link-header.ts';
export { createPaginator } from './paginators.ts';
export { RateLimiter } from '../../../lib/rate-limiter.ts';
export { extractRecords, getPath } from './records.ts';
export { isRetryable, parseRetryAfter } from './retry.ts';
export type { FetchPagesOptions, Page, RequestInfo, RestAuth, RestPagination, RestRetryConfig, RestSourceConfig } from './types.ts';
