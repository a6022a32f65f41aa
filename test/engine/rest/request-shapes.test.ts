/**
 * What a REST source sends: a POST's JSON body on every page, redirects that keep or would drop
 * it, and list query parameters as repeated keys that every paginator keeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { RedirectError, SourceHttpError } from '../../../src/engine/sources/rest/errors.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { startFakeApi, type FakeApi, type Handler, type RecordedRequest } from '../../fakes/http-api.ts';
import { collect } from './pages-and-clock.ts';

async function withApi<T>(handler: Handler, use: (api: FakeApi) => Promise<T>): Promise<T> {
  const api = await startFakeApi(handler);
  try {
    return await use(api);
  } finally {
    await api.close();
  }
}

const drain = (config: RestSourceConfig) => collect(fetchPages(config, { sleep: async () => {} }));

async function failure(config: RestSourceConfig): Promise<Error> {
  return drain(config).then(
    () => assert.fail('expected an error'),
    (error: unknown) => error as Error,
  );
}

/** Cursor's daily usage: POST with epoch-millisecond dates in a JSON body. */
const CURSOR_BODY = { startDate: 1_735_689_600_000, endDate: 1_738_281_600_000 };

describe('POST with a JSON body', () => {
  it('sends the same body with content-type application/json on every page, the paginator param in the URL', async () => {
    const handler: Handler = (req) => {
      const page = Number(req.url.searchParams.get('page'));
      return { body: { data: page < 3 ? [{ page }] : [] } };
    };
    await withApi(handler, async (api) => {
      const pages = await drain({
        url: `${api.base}/teams/daily-usage-data`,
        method: 'POST',
        body: CURSOR_BODY,
        pagination: { type: 'page_number', param: 'page' },
        records_path: 'data',
      });
      assert.deepEqual(
        pages.flatMap((p) => p.records),
        [{ page: 1 }, { page: 2 }],
      );
      assert.equal(api.requests.length, 3);
      for (const [i, req] of api.requests.entries()) {
        assert.equal(req.method, 'POST');
        assert.equal(req.headers['content-type'], 'application/json');
        assert.deepEqual(JSON.parse(req.body), CURSOR_BODY);
        assert.equal(req.url.searchParams.get('page'), String(i + 1));
      }
    });
  });

  it('sends no body and no content-type for a GET, and none for a POST without body', async () => {
    await withApi(
      () => ({ body: [] }),
      async (api) => {
        await drain({ url: `${api.base}/a`, pagination: { type: 'none' } });
        await drain({ url: `${api.base}/b`, method: 'POST', pagination: { type: 'none' } });
        assert.deepEqual(
          api.requests.map((r) => [r.method, r.body, r.headers['content-type']]),
          [
            ['GET', '', undefined],
            ['POST', '', undefined],
          ],
        );
      },
    );
  });

  it('sends the body again on a retried attempt', async () => {
    await withApi(
      (_req, index) => (index === 0 ? { status: 503 } : { body: [{ ok: true }] }),
      async (api) => {
        const pages = await drain({ url: `${api.base}/u`, method: 'POST', body: CURSOR_BODY, pagination: { type: 'none' } });
        assert.equal(pages[0]?.records.length, 1);
        assert.deepEqual(
          api.requests.map((r) => JSON.parse(r.body) as unknown),
          [CURSOR_BODY, CURSOR_BODY],
        );
      },
    );
  });

  it('redacts a secret rendered into the body from an error that echoes it', async () => {
    const secret = 'crsr_key_0123456789abcdef';
    await withApi(
      (req) => ({ status: 400, body: { error: 'bad request', received: req.body } }),
      async (api) => {
        const error = await failure({
          url: `${api.base}/u`,
          method: 'POST',
          body: { apiKey: secret, startDate: 1 },
          secrets: [secret],
          pagination: { type: 'none' },
        });
        assert.ok(error instanceof SourceHttpError);
        assert.equal(error.status, 400);
        assert.ok(api.requests[0]?.body.includes(secret), 'the API got the body');
        assert.ok(!error.message.includes(secret), error.message);
        assert.ok(!String(error.stack).includes(secret));
        assert.match(error.message, /\[REDACTED\]/);
      },
    );
  });
});

describe('redirects of a POST', () => {
  const redirecting =
    (status: number, to: (req: RecordedRequest) => string): Handler =>
    (req) =>
      req.url.pathname === '/old' ? { status, headers: { location: to(req) } } : { body: [{ method: req.method, body: req.body }] };

  for (const status of [307, 308]) {
    it(`follows a ${status} to the same origin keeping method, body and credentials`, async () => {
      await withApi(
        redirecting(status, () => '/new'),
        async (api) => {
          const pages = await drain({
            url: `${api.base}/old`,
            method: 'POST',
            body: CURSOR_BODY,
            auth: { type: 'basic', username: 'key_abcdef123456', password: '' },
            pagination: { type: 'none' },
          });
          assert.deepEqual(pages[0]?.records, [{ method: 'POST', body: JSON.stringify(CURSOR_BODY) }]);
          const followed = api.requests[1]!;
          assert.equal(followed.url.pathname, '/new');
          assert.equal(followed.headers['content-type'], 'application/json');
          assert.match(String(followed.headers.authorization), /^Basic /);
        },
      );
    });
  }

  for (const status of [301, 302, 303]) {
    it(`refuses a ${status}, which would turn the POST into a GET without its body`, async () => {
      await withApi(
        redirecting(status, () => '/new'),
        async (api) => {
          const error = await failure({ url: `${api.base}/old`, method: 'POST', body: CURSOR_BODY, pagination: { type: 'none' } });
          assert.ok(error instanceof RedirectError, String(error));
          assert.match(error.message, new RegExp(`answered ${status} to a POST`));
          assert.match(error.message, /set url to/);
          assert.equal(api.requests.length, 1, 'the redirect is not followed, and not retried');
        },
      );
    });
  }

  it('refuses a 307 to another origin: the body stays with the source it was written for', async () => {
    await withApi(
      () => ({ body: [] }),
      async (elsewhere) => {
        await withApi(
          redirecting(307, () => `${elsewhere.base}/new`),
          async (api) => {
            const error = await failure({ url: `${api.base}/old`, method: 'POST', body: CURSOR_BODY, pagination: { type: 'none' } });
            assert.ok(error instanceof RedirectError);
            assert.match(error.message, /not redirected to another origin/);
            assert.equal(elsewhere.requests.length, 0);
          },
        );
      },
    );
  });

  it('still follows a 302 of a GET (as a GET)', async () => {
    await withApi(
      redirecting(302, () => '/new'),
      async (api) => {
        const pages = await drain({ url: `${api.base}/old`, pagination: { type: 'none' } });
        assert.deepEqual(pages[0]?.records, [{ method: 'GET', body: '' }]);
      },
    );
  });
});

describe('list query parameters', () => {
  /** Anthropic's usage report: array parameters spelled with [] and sent as the key repeated. */
  const GROUPS = { 'group_by[]': ['model', 'api_key_id'], bucket_width: '1d' };
  const expectedQuery = 'group_by%5B%5D=model&group_by%5B%5D=api_key_id&bucket_width=1d';

  it('reach the API as repeated keys, in order, percent-encoded as the WHATWG URL does', async () => {
    await withApi(
      () => ({ body: { data: [] } }),
      async (api) => {
        await drain({
          url: `${api.base}/v1/organizations/usage_report/messages`,
          params: GROUPS,
          pagination: { type: 'none' },
          records_path: 'data',
        });
        assert.equal(api.requests[0]?.path, `/v1/organizations/usage_report/messages?${expectedQuery}`);
        assert.deepEqual(api.requests[0]?.url.searchParams.getAll('group_by[]'), ['model', 'api_key_id']);
      },
    );
  });

  it('replace a parameter of the same name already in the url', async () => {
    await withApi(
      () => ({ body: [] }),
      async (api) => {
        await drain({ url: `${api.base}/r?group_by[]=workspace_id&x=1`, params: GROUPS, pagination: { type: 'none' } });
        assert.deepEqual(api.requests[0]?.url.searchParams.getAll('group_by[]'), ['model', 'api_key_id']);
        assert.equal(api.requests[0]?.url.searchParams.get('x'), '1');
      },
    );
  });

  const paginations: Array<{ name: string; pagination: RestSourceConfig['pagination']; reply: Handler }> = [
    {
      name: 'cursor',
      pagination: { type: 'cursor', cursor_path: 'next_page', param: 'page' },
      reply: (req) => ({ body: req.url.searchParams.has('page') ? { data: [2], next_page: null } : { data: [1], next_page: 'p2' } }),
    },
    {
      name: 'page_number',
      pagination: { type: 'page_number', param: 'p', page_size_param: 'size', page_size: 1 },
      reply: (req) => ({ body: { data: req.url.searchParams.get('p') === '1' ? [1] : [] } }),
    },
    {
      name: 'offset',
      pagination: { type: 'offset', param: 'offset', limit_param: 'limit', limit: 1 },
      reply: (req) => ({ body: { data: req.url.searchParams.get('offset') === '0' ? [1] : [] } }),
    },
  ];
  for (const { name, pagination, reply } of paginations) {
    it(`are kept whole on every page of ${name} pagination`, async () => {
      await withApi(reply, async (api) => {
        await drain({ url: `${api.base}/r`, params: GROUPS, pagination, records_path: 'data' });
        assert.equal(api.requests.length, 2);
        for (const req of api.requests) {
          assert.deepEqual(req.url.searchParams.getAll('group_by[]'), ['model', 'api_key_id'], req.path);
          assert.ok(req.path.includes('group_by%5B%5D=model&group_by%5B%5D=api_key_id'), req.path);
        }
      });
    });
  }
});
