/** Plain config shape of a `rest_api` pipeline source (secrets already resolved by the caller). */

/**
 * Where a token-based auth (OAuth2 client credentials, Google) gets its access token. Every token
 * it hands out has already been given to the source's redactor (see `onSecret`).
 */
export interface AccessTokenProvider {
  /** A token valid for at least the next minute, fetched or refreshed as needed. */
  token(signal?: AbortSignal): Promise<string>;
  /** The API answered 401 with the current token: the next `token()` fetches a new one. */
  invalidate(): void;
}

export type RestAuth =
  | { type: 'bearer'; token: string }
  | { type: 'header'; name: string; value: string }
  | { type: 'basic'; username: string; password: string }
  /** Sent as `Authorization: Bearer <token>`; only to the source's own origin. */
  | { type: 'access_token'; provider: AccessTokenProvider };

/** How records sit in a response: JSON objects, or arrays whose first one (on the first page of a fetch) names the columns. */
type RecordsFormat = 'objects' | 'rows_with_header';

export type RestPagination =
  | { type: 'cursor'; cursor_path: string; param: string }
  | { type: 'page_number'; param: string; start?: number; page_size_param?: string; page_size?: number }
  | { type: 'offset'; param: string; limit_param: string; limit: number }
  | { type: 'link_header' }
  | { type: 'next_url'; next_url_path: string }
  | { type: 'none' };

interface RestRetryConfig {
  max_attempts?: number;
  base_delay_ms?: number;
  max_delay_ms?: number;
}

export interface RestSourceConfig {
  /** May carry credentials as userinfo (`https://user:pass@host`): they are sent as basic auth, never in the URL. */
  url: string;
  method?: 'GET' | 'POST';
  /** A list repeats the key (`group_by[]=a&group_by[]=b`), in order. */
  params?: Record<string, string | string[]>;
  /** JSON body of a POST, already rendered; sent with content-type application/json on every page. */
  body?: unknown;
  headers?: Record<string, string>;
  auth?: RestAuth;
  /**
   * Every secret value rendered into `url`, `params` or `headers`: redacted, with `auth` and URL
   * userinfo, from every message, error and callback of the source.
   */
  secrets?: string[];
  pagination: RestPagination;
  /** Dotted path to the records; `[*]` flattens an array level (`data[*].results[*]`). */
  records_path?: string;
  /** Columns copied into each record from the array element holding it: { column: dotted path in it }. */
  include_parent?: Record<string, string>;
  records_format?: RecordsFormat;
  /**
   * Hosts (`host` or `host:port`) the operator lets tenant sources reach on loopback, private or
   * link-local addresses (environment `rest_sources.private_hosts`); every other such address is
   * refused at connect time, redirects included.
   */
  private_hosts?: string[];
  rate_limit?: { requests_per_second: number };
  retry?: RestRetryConfig;
  timeout_ms?: number;
  max_pages?: number;
}

interface RequestInfo {
  url: string;
  page: number;
  attempt: number;
}

export interface FetchPagesOptions {
  signal?: AbortSignal;
  /** Injectable sleep (tests); defaults to a timer that honours `signal`. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable clock in ms (tests); defaults to Date.now. */
  now?: () => number;
  /** Called before every HTTP attempt. Never receives headers or secrets. */
  onRequest?: (info: RequestInfo) => void;
  /** Random source in [0, 1) for backoff jitter (tests); defaults to Math.random. */
  random?: () => number;
}

export interface Page {
  records: unknown[];
  url: string;
  page: number;
}

export const DEFAULTS = {
  retry: { max_attempts: 5, base_delay_ms: 500, max_delay_ms: 30_000 },
  timeout_ms: 30_000,
  max_pages: 10_000,
  page_number_start: 1,
} as const;
