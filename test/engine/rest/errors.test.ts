import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { SourceHttpError, RecordsPathError, ResponseParseError } from '../../../src/engine/sources/rest/errors.ts';
import { extractRecords } from '../../../src/engine/sources/rest/records.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { startFakeApi, type Handler, type RecordedRequest } from '../../fakes/http-api.ts';
import { collect } from './pages-and-clock.ts';

async function attempt(handler: Handler, config: (base: string) => RestSourceConfig) {
  const api = await startFakeApi(handler);
  try {
    const result = await collect(
      fetchPages(config(api.base), { sleep: async () => {}, onRequest: (i) => infos.push(JSON.stringify(i)) }),
    ).then(
      (pages) => ({ pages, error: undefined }),
      (error: unknown) => ({ pages: [], error: error as Error }),
    );
    return { ...result, requests: api.requests, base: api.base };
  } finally {
    await api.close();
  }
}
const infos: string[] = [];

describe('malformed JSON', () => {
  it('names the URL and page number', async () => {
    const { error, requests, base } = await attempt(
      (req) => (req.url.searchParams.get('p') === '1' ? { body: { data: [1] } } : { body: '{"data": [1,' }),
      (b) => ({ url: `${b}/x`, pagination: { type: 'page_number', param: 'p' }, records_path: 'data' }),
    );
    assert.ok(error instanceof ResponseParseError, String(error));
    assert.equal(error.page, 2);
    assert.match(error.message, /page 2/);
    assert.ok(error.message.includes(`${base}/x?p=2`), error.message);
    assert.equal(requests.length, 2);
  });
});

describe('records_path', () => {
  it('reads nested paths', () => {
    assert.deepEqual(extractRecords({ data: { items: [1, 2] } }, 'data.items', 'http://h/x'), [1, 2]);
    assert.deepEqual(extractRecords([3], undefined, 'http://h/x'), [3]);
  });

  it('errors on a missing path, naming URL and path', () => {
    assert.throws(
      () => extractRecords({ data: {} }, 'data.items', 'http://h/x?a=1'),
      (e: unknown) =>
        e instanceof RecordsPathError &&
        /data\.items/.test(e.message) &&
        e.message.includes('http://h/x?a=1') &&
        /not found/.test(e.message),
    );
  });

  it('errors on a non-array value', () => {
    assert.throws(
      () => extractRecords({ data: { items: { a: 1 } } }, 'data.items', 'http://h/x'),
      (e: unknown) => e instanceof RecordsPathError && /not an array \(got object\)/.test(e.message),
    );
    assert.throws(() => extractRecords({ data: 1 }, undefined, 'http://h/x'), RecordsPathError);
  });

  it('surfaces RecordsPathError end to end', async () => {
    const { error, base } = await attempt(
      () => ({ body: { results: [] } }),
      (b) => ({ url: `${b}/r`, pagination: { type: 'none' }, records_path: 'data' }),
    );
    assert.ok(error instanceof RecordsPathError);
    assert.ok(error.message.includes(`${base}/r`));
    assert.match(error.message, /"data"/);
  });
});

describe('auth', () => {
  const cases: { name: string; auth: RestSourceConfig['auth']; check: (r: RecordedRequest) => void }[] = [
    { name: 'bearer', auth: { type: 'bearer', token: 'tok-123' }, check: (r) => assert.equal(r.headers.authorization, 'Bearer tok-123') },
    {
      name: 'header',
      auth: { type: 'header', name: 'X-Api-Key', value: 'k-456' },
      check: (r) => assert.equal(r.headers['x-api-key'], 'k-456'),
    },
    {
      name: 'basic',
      auth: { type: 'basic', username: 'ann', password: 'p:w' },
      check: (r) => assert.equal(r.headers.authorization, `Basic ${Buffer.from('ann:p:w').toString('base64')}`),
    },
  ];
  for (const c of cases) {
    it(`sends ${c.name} auth on every request, plus configured headers`, async () => {
      const { requests, error } = await attempt(
        (req) => ({ body: req.url.searchParams.get('p') === '1' ? [1] : [] }),
        (b) => ({ url: `${b}/a`, headers: { 'X-Tenant': 't1' }, auth: c.auth, pagination: { type: 'page_number', param: 'p' } }),
      );
      assert.equal(error, undefined);
      assert.equal(requests.length, 2);
      for (const r of requests) {
        c.check(r);
        assert.equal(r.headers['x-tenant'], 't1');
        assert.equal(r.headers.accept, 'application/json');
      }
    });
  }
});

describe('secrets', () => {
  const TOKEN = 'sk-live-SUPERSECRET-9f8e7d';
  const scenarios: { name: string; handler: Handler; extra?: Partial<RestSourceConfig> }[] = [
    { name: '401 echoing the header', handler: (req) => ({ status: 401, body: { error: `bad token ${req.headers.authorization}` } }) },
    {
      name: '500 exhausted echoing the token',
      handler: () => ({ status: 500, body: `boom ${TOKEN}` }),
      extra: { retry: { max_attempts: 2 } },
    },
    { name: 'malformed JSON echoing the token', handler: () => ({ body: `{"token": "${TOKEN}"` }) },
    { name: 'records path missing', handler: () => ({ body: { token: TOKEN } }) },
    { name: 'timeout', handler: () => ({ hang: true }), extra: { timeout_ms: 30, retry: { max_attempts: 1 } } },
  ];
  for (const s of scenarios) {
    it(`never puts the bearer token in an error message: ${s.name}`, async () => {
      infos.length = 0;
      const { error } = await attempt(s.handler, (b) => ({
        url: `${b}/s`,
        auth: { type: 'bearer', token: TOKEN },
        pagination: { type: 'none' },
        records_path: 'data',
        ...s.extra,
      }));
      assert.ok(error instanceof Error, 'expected an error');
      for (let e: unknown = error; e instanceof Error; e = e.cause) {
        assert.ok(!e.message.includes(TOKEN), `token leaked in: ${e.message}`);
        assert.ok(!(e.stack ?? '').includes(TOKEN), 'token leaked in stack');
      }
      assert.ok(!JSON.stringify({ ...error }).includes(TOKEN), 'token leaked in error properties');
      assert.ok(infos.length > 0 && infos.every((i) => !i.includes(TOKEN)));
    });
  }

  it('redacts the echoed token in SourceHttpError body excerpts', async () => {
    const { error } = await attempt(
      () => ({ status: 403, body: `forbidden for ${TOKEN}` }),
      (b) => ({ url: `${b}/s`, auth: { type: 'bearer', token: TOKEN }, pagination: { type: 'none' } }),
    );
    assert.ok(error instanceof SourceHttpError);
    assert.match(error.message, /forbidden for \[REDACTED\]/);
  });
});
