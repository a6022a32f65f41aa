export { baseUrl, buildHeaders, fetchPages } from './client.ts';
export {
  HttpError,
  NetworkError,
  PaginationError,
  RecordsPathError,
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
export { backoffDelay, isRetryable, parseRetryAfter, withRetry } from './retry.ts';
export type { FetchPagesOptions, Page, RequestInfo, RestAuth, RestPagination, RestRetryConfig, RestSourceConfig } from './types.ts';
