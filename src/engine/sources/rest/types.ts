/** Plain config shape of a `rest_api` pipeline source (secrets already resolved by the caller). */

export type RestAuth =
  | { type: 'bearer'; token: string }
  | { type: 'header'; name: string; value: string }
  | { type: 'basic'; username: string; password: string };

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
  method?: 'GET';
  params?: Record<string, string>;
  headers?: Record<string, string>;
  auth?: RestAuth;
  /**
   * Every secret value rendered into `url`, `params` or `headers`: redacted, with `auth` and URL
   * userinfo, from every message, error and callback of the source.
   */
  secrets?: string[];
  pagination: RestPagination;
  records_path?: string;
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
