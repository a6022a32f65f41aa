import { PaginationError, safeUrl } from './errors.ts';
import { findLink } from './link-header.ts';
import { getPath } from './records.ts';
import type { RestPagination } from './types.ts';
import { DEFAULTS } from './types.ts';

interface PageResult {
  /** The URL that was requested. */
  url: URL;
  body: unknown;
  records: unknown[];
  headers: Headers;
}

export interface Paginator {
  /** The first request URL, from the base URL (config url + params). */
  first(base: URL): URL;
  /** The next request URL after a page, or null when pagination is over. */
  next(page: PageResult): URL | null;
}

function withParam(url: URL, name: string, value: string | number): URL {
  const out = new URL(url);
  out.searchParams.set(name, String(value));
  return out;
}

function sameAgain(url: URL, what: string): PaginationError {
  return new PaginationError(
    safeUrl(url),
    `pagination did not advance after ${safeUrl(url)}: the API returned the same page again (${what}); stopping instead of looping forever`,
  );
}

function cursorPaginator(cfg: Extract<RestPagination, { type: 'cursor' }>): Paginator {
  const seen = new Set<string>();
  return {
    first: (base) => new URL(base),
    next({ url, body }) {
      const cursor = getPath(body, cfg.cursor_path);
      if (cursor === null || cursor === undefined || cursor === '' || cursor === false) return null;
      if (typeof cursor === 'object') {
        throw new PaginationError(
          safeUrl(url),
          `cursor at "${cfg.cursor_path}" in the response from ${safeUrl(url)} is not a string or number`,
        );
      }
      const value = String(cursor);
      if (seen.has(value) || url.searchParams.get(cfg.param) === value) throw sameAgain(url, `cursor "${cfg.cursor_path}" repeated`);
      seen.add(value);
      return withParam(url, cfg.param, value);
    },
  };
}

function pageNumberPaginator(cfg: Extract<RestPagination, { type: 'page_number' }>): Paginator {
  let page = cfg.start ?? DEFAULTS.page_number_start;
  return {
    first(base) {
      let url = withParam(base, cfg.param, page);
      if (cfg.page_size_param && cfg.page_size !== undefined) url = withParam(url, cfg.page_size_param, cfg.page_size);
      return url;
    },
    next({ url, records }) {
      if (records.length === 0) return null;
      if (cfg.page_size !== undefined && records.length < cfg.page_size) return null;
      page += 1;
      return withParam(url, cfg.param, page);
    },
  };
}

function offsetPaginator(cfg: Extract<RestPagination, { type: 'offset' }>): Paginator {
  let offset = 0;
  return {
    first: (base) => withParam(withParam(base, cfg.param, offset), cfg.limit_param, cfg.limit),
    next({ url, records }) {
      if (records.length === 0 || records.length < cfg.limit) return null;
      offset += records.length;
      return withParam(url, cfg.param, offset);
    },
  };
}

function linkHeaderPaginator(): Paginator {
  return {
    first: (base) => new URL(base),
    next: ({ url, headers }) => findLink(headers.get('link'), url, 'next'),
  };
}

function nextUrlPaginator(cfg: Extract<RestPagination, { type: 'next_url' }>): Paginator {
  return {
    first: (base) => new URL(base),
    next({ url, body }) {
      const next = getPath(body, cfg.next_url_path);
      if (next === null || next === undefined || next === '') return null;
      if (typeof next !== 'string') {
        throw new PaginationError(
          safeUrl(url),
          `next_url_path "${cfg.next_url_path}" in the response from ${safeUrl(url)} is not a string`,
        );
      }
      try {
        return new URL(next, url);
      } catch {
        throw new PaginationError(
          safeUrl(url),
          `next_url_path "${cfg.next_url_path}" in the response from ${safeUrl(url)} is not a valid URL`,
        );
      }
    },
  };
}

/** A stateful paginator for one run of a source. */
export function createPaginator(cfg: RestPagination): Paginator {
  switch (cfg.type) {
    case 'cursor':
      return cursorPaginator(cfg);
    case 'page_number':
      return pageNumberPaginator(cfg);
    case 'offset':
      return offsetPaginator(cfg);
    case 'link_header':
      return linkHeaderPaginator();
    case 'next_url':
      return nextUrlPaginator(cfg);
    case 'none':
      return { first: (base) => new URL(base), next: () => null };
    default: {
      const unknownType: never = cfg;
      throw new PaginationError('', `unknown pagination type ${JSON.stringify((unknownType as { type: unknown }).type)}`);
    }
  }
}

export { sameAgain as samePageError };
