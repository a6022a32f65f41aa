import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { PaginationError } from '../../../src/engine/sources/rest/errors.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { startFakeApi, type FakeApi, type Handler } from '../../fakes/http-api.ts';
import { collect } from './pages-and-clock.ts';

async function run(handler: Handler, config: (base: string) => RestSourceConfig) {
  const api = await startFakeApi(handler);
  try {
    const pages = await collect(fetchPages(config(api.base), { sleep: async () => {} }));
    return { pages, records: pages.flatMap((p) => p.records), requests: api.requests };
  } finally {
    await api.close();
  }
}

async function runError(handler: Handler, config: (base: string) => RestSourceConfig) {
  const api = await startFakeApi(handler);
  try {
    const error = await collect(fetchPages(config(api.base), { sleep: async () => {} })).then(
      () => assert.fail('expected an error'),
      (e: unknown) => e,
    );
    return { error: error as Error, requests: api.requests, base: api.base };
  } finally {
    await api.close();
  }
}

describe('cursor pagination', () => {
  it('follows the cursor until it is null and sends it as the query param', async () => {
    const pages: Record<string, unknown> = {
      '': { data: [1, 2], meta: { next: 'c2' } },
      c2: { data: [3], meta: { next: 'c3' } },
      c3: { data: [4], meta: { next: null } },
    };
    const {
      records,
      requests,
      pages: got,
    } = await run(
      (req) => ({ body: pages[req.url.searchParams.get('page') ?? ''] }),
      (base) => ({
        url: `${base}/v1/usage`,
        params: { starting_at: '2025-01-01' },
        pagination: { type: 'cursor', cursor_path: 'meta.next', param: 'page' },
        records_path: 'data',
      }),
    );
    assert.deepEqual(records, [1, 2, 3, 4]);
    assert.equal(requests.length, 3);
    assert.deepEqual(
      requests.map((r) => r.path),
      ['/v1/usage?starting_at=2025-01-01', '/v1/usage?starting_at=2025-01-01&page=c2', '/v1/usage?starting_at=2025-01-01&page=c3'],
    );
    assert.deepEqual(
      got.map((p) => p.page),
      [1, 2, 3],
    );
  });

  it('stops on an empty-string cursor', async () => {
    const { records, requests } = await run(
      (req) => ({ body: req.url.searchParams.get('c') ? { data: [2], next: '' } : { data: [1], next: 'x' } }),
      (base) => ({ url: `${base}/x`, pagination: { type: 'cursor', cursor_path: 'next', param: 'c' }, records_path: 'data' }),
    );
    assert.deepEqual(records, [1, 2]);
    assert.equal(requests.length, 2);
  });

  it('fails with PaginationError when a cursor repeats', async () => {
    const next: Record<string, string> = { '': 'a', a: 'b', b: 'a' };
    const { error, requests } = await runError(
      (req) => ({ body: { data: [1], next: next[req.url.searchParams.get('c') ?? ''] } }),
      (base) => ({ url: `${base}/items`, pagination: { type: 'cursor', cursor_path: 'next', param: 'c' }, records_path: 'data' }),
    );
    assert.ok(error instanceof PaginationError, String(error));
    assert.match(error.message, /same page again/);
    assert.match(error.message, /\/items\?c=b/);
    assert.equal(requests.length, 3);
  });

  it('fails with PaginationError when the cursor equals the current one', async () => {
    const { error, requests } = await runError(
      () => ({ body: { data: [1], next: 'same' } }),
      (base) => ({ url: `${base}/items`, pagination: { type: 'cursor', cursor_path: 'next', param: 'c' }, records_path: 'data' }),
    );
    assert.ok(error instanceof PaginationError);
    assert.equal(requests.length, 2);
  });
});

describe('page_number pagination', () => {
  it('stops on an empty page', async () => {
    const { records, requests } = await run(
      (req) => {
        const n = Number(req.url.searchParams.get('p'));
        return { body: n <= 2 ? { data: [`r${n}a`, `r${n}b`] } : { data: [] } };
      },
      (base) => ({ url: `${base}/list`, pagination: { type: 'page_number', param: 'p' }, records_path: 'data' }),
    );
    assert.deepEqual(records, ['r1a', 'r1b', 'r2a', 'r2b']);
    assert.deepEqual(
      requests.map((r) => r.url.searchParams.get('p')),
      ['1', '2', '3'],
    );
  });

  it('stops on a short page when page_size is set, and sends page_size_param', async () => {
    const { records, requests } = await run(
      (req) => {
        const n = Number(req.url.searchParams.get('page'));
        return { body: n === 0 ? [1, 2] : [3] };
      },
      (base) => ({
        url: `${base}/list`,
        pagination: { type: 'page_number', param: 'page', start: 0, page_size_param: 'per_page', page_size: 2 },
      }),
    );
    assert.deepEqual(records, [1, 2, 3]);
    assert.equal(requests.length, 2);
    assert.deepEqual(
      requests.map((r) => r.path),
      ['/list?page=0&per_page=2', '/list?page=1&per_page=2'],
    );
  });

  it('fails when the API ignores the page parameter and returns the same page', async () => {
    const { error, requests } = await runError(
      () => ({ body: { data: [1, 2] } }),
      (base) => ({ url: `${base}/list`, pagination: { type: 'page_number', param: 'p' }, records_path: 'data' }),
    );
    assert.ok(error instanceof PaginationError);
    assert.match(error.message, /same page again/);
    assert.equal(requests.length, 2);
  });
});

describe('offset pagination', () => {
  const items = [1, 2, 3, 4, 5];
  const handler: Handler = (req) => {
    const offset = Number(req.url.searchParams.get('offset'));
    const limit = Number(req.url.searchParams.get('limit'));
    return { body: { data: items.slice(offset, offset + limit) } };
  };

  it('advances by the records received and stops on a short page', async () => {
    const { records, requests } = await run(handler, (base) => ({
      url: `${base}/rows`,
      pagination: { type: 'offset', param: 'offset', limit_param: 'limit', limit: 2 },
      records_path: 'data',
    }));
    assert.deepEqual(records, items);
    assert.deepEqual(
      requests.map((r) => r.path),
      ['/rows?offset=0&limit=2', '/rows?offset=2&limit=2', '/rows?offset=4&limit=2'],
    );
  });

  it('stops on an empty page when the total is a multiple of the limit', async () => {
    const { records, requests } = await run(handler, (base) => ({
      url: `${base}/rows`,
      pagination: { type: 'offset', param: 'offset', limit_param: 'limit', limit: 5 },
      records_path: 'data',
    }));
    assert.deepEqual(records, items);
    assert.equal(requests.length, 2);
  });
});

describe('link_header pagination', () => {
  it('follows rel="next" across relative and absolute links', async () => {
    let base = '';
    const { records, requests } = await run(
      (req) => {
        const p = req.url.searchParams.get('page') ?? '1';
        if (p === '1') return { body: [1], headers: { link: '<?page=9>; rel="last", <items?page=2>; rel="next"' } };
        if (p === '2')
          return { body: [2], headers: { link: `<${base}/api/items?page=1>; rel="prev first", <${base}/api/items?page=3>; rel="next"` } };
        return { body: [3], headers: { link: '</api/items?page=2>; rel=prev' } };
      },
      (b) => {
        base = b;
        return { url: `${b}/api/items`, pagination: { type: 'link_header' } };
      },
    );
    assert.deepEqual(records, [1, 2, 3]);
    assert.deepEqual(
      requests.map((r) => r.path),
      ['/api/items', '/api/items?page=2', '/api/items?page=3'],
    );
  });

  it('fails fast when the next link points at the current page', async () => {
    const { error, requests, base } = await runError(
      () => ({ body: [1], headers: { link: '</api/items?page=1>; rel="next"' } }),
      (b) => ({ url: `${b}/api/items?page=1`, pagination: { type: 'link_header' } }),
    );
    assert.ok(error instanceof PaginationError, String(error));
    assert.ok(error.message.includes(`${base}/api/items?page=1`), error.message);
    assert.match(error.message, /same page again/);
    assert.equal(requests.length, 1);
  });
});

describe('next_url pagination', () => {
  it('follows relative and absolute next URLs', async () => {
    let base = '';
    const { records, requests } = await run(
      (req) => {
        if (req.url.pathname === '/a') return { body: { items: [1], links: { next: '/b?x=1' } } };
        if (req.url.pathname === '/b') return { body: { items: [2], links: { next: `${base}/c` } } };
        return { body: { items: [3], links: { next: null } } };
      },
      (b) => {
        base = b;
        return { url: `${b}/a`, pagination: { type: 'next_url', next_url_path: 'links.next' }, records_path: 'items' };
      },
    );
    assert.deepEqual(records, [1, 2, 3]);
    assert.deepEqual(
      requests.map((r) => r.path),
      ['/a', '/b?x=1', '/c'],
    );
  });

  it('fails fast when next points at the current page', async () => {
    const { error, requests } = await runError(
      () => ({ body: { items: [1], next: '/a?q=1' } }),
      (b) => ({ url: `${b}/a?q=1`, pagination: { type: 'next_url', next_url_path: 'next' }, records_path: 'items' }),
    );
    assert.ok(error instanceof PaginationError);
    assert.match(error.message, /same page again/);
    assert.equal(requests.length, 1);
  });

  it('fails when next cycles back to a page already requested', async () => {
    const { error, requests } = await runError(
      (req) => ({ body: { items: [1], next: req.url.pathname === '/a' ? '/b' : '/a' } }),
      (b) => ({ url: `${b}/a`, pagination: { type: 'next_url', next_url_path: 'next' }, records_path: 'items' }),
    );
    assert.ok(error instanceof PaginationError);
    assert.match(error.message, /\/a/);
    assert.equal(requests.length, 2);
  });

  it('stops at max_pages with a clear error', async () => {
    const { error, requests } = await runError(
      (req) => ({ body: { items: [1], next: `/p?n=${Number(req.url.searchParams.get('n') ?? 0) + 1}` } }),
      (b) => ({ url: `${b}/p`, pagination: { type: 'next_url', next_url_path: 'next' }, records_path: 'items', max_pages: 3 }),
    );
    assert.ok(error instanceof PaginationError);
    assert.match(error.message, /max_pages=3/);
    assert.equal(requests.length, 3);
  });
});

describe('no pagination', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi(() => ({ body: { data: [{ id: 1 }, { id: 2 }], next: '/more' } }));
  });
  after(() => api.close());

  it('makes exactly one request', async () => {
    const pages = await collect(fetchPages({ url: `${api.base}/all`, pagination: { type: 'none' }, records_path: 'data' }));
    assert.equal(pages.length, 1);
    assert.deepEqual(pages[0]?.records, [{ id: 1 }, { id: 2 }]);
    assert.equal(pages[0]?.url, `${api.base}/all`);
    assert.equal(api.requests.length, 1);
    assert.equal(api.requests[0]?.method, 'GET');
  });
});
