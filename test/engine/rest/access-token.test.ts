/**
 * `auth: { type: access_token }` (OAuth2 client credentials, Google): the provider's token as a
 * bearer to the source's own origin only, one new token after a 401, every token redacted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { SourceHttpError } from '../../../src/engine/sources/rest/errors.ts';
import type { AccessTokenProvider, RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { startFakeApi, type FakeApi, type Handler } from '../../fakes/http-api.ts';
import { collect } from './pages-and-clock.ts';

/** Hands out ya29.token-1, ya29.token-2, ... : a new one after each invalidate(). */
function tokenProvider(): AccessTokenProvider & { issued: string[]; invalidated: number; signals: Array<AbortSignal | undefined> } {
  let current: string | undefined;
  const provider = {
    issued: [] as string[],
    invalidated: 0,
    signals: [] as Array<AbortSignal | undefined>,
    async token(signal?: AbortSignal) {
      provider.signals.push(signal);
      if (current === undefined) {
        current = `ya29.token-${provider.issued.length + 1}-abcdefgh`;
        provider.issued.push(current);
      }
      return current;
    },
    invalidate() {
      provider.invalidated += 1;
      current = undefined;
    },
  };
  return provider;
}

async function withApi<T>(handler: Handler, use: (api: FakeApi) => Promise<T>): Promise<T> {
  const api = await startFakeApi(handler);
  try {
    return await use(api);
  } finally {
    await api.close();
  }
}

const config = (url: string, provider: AccessTokenProvider, extra: Partial<RestSourceConfig> = {}): RestSourceConfig => ({
  url,
  auth: { type: 'access_token', provider },
  pagination: { type: 'none' },
  ...extra,
});

const drain = (c: RestSourceConfig) => collect(fetchPages(c, { sleep: async () => {} }));
const failure = (c: RestSourceConfig) =>
  drain(c).then(
    () => assert.fail('expected an error'),
    (error: unknown) => error as Error,
  );

/** A Sheets-like API: 401 unless the bearer is one it accepts; its error body echoes the header. */
const sheetsApi =
  (accepted: (token: string) => boolean): Handler =>
  (req) => {
    const bearer = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!req.headers.authorization || !accepted(bearer)) {
      return {
        status: 401,
        body: { error: { code: 401, message: `Request had invalid authentication credentials: ${bearer}`, status: 'UNAUTHENTICATED' } },
      };
    }
    return { body: { range: 'Sheet1!A1:B2', majorDimension: 'ROWS', values: [['Email'], ['a@x']] } };
  };

describe('access_token auth', () => {
  it('sends the provider token as a bearer on every page, asking the provider each time', async () => {
    const provider = tokenProvider();
    await withApi(
      (req) => ({ body: { data: [1], next: req.url.searchParams.has('c') ? null : 'c2' } }),
      async (api) => {
        await drain(
          config(`${api.base}/r`, provider, { pagination: { type: 'cursor', cursor_path: 'next', param: 'c' }, records_path: 'data' }),
        );
        assert.deepEqual(
          api.requests.map((r) => r.headers.authorization),
          ['Bearer ya29.token-1-abcdefgh', 'Bearer ya29.token-1-abcdefgh'],
        );
        assert.equal(provider.signals.length, 2);
        assert.ok(provider.signals.every((s) => s instanceof AbortSignal));
      },
    );
  });

  it('on a 401 invalidates the token and retries that request once with a new one', async () => {
    const provider = tokenProvider();
    await withApi(
      sheetsApi((token) => token !== 'ya29.token-1-abcdefgh'),
      async (api) => {
        const pages = await drain(
          config(`${api.base}/v4/spreadsheets/s/values/A1`, provider, { records_path: 'values', records_format: 'rows_with_header' }),
        );
        assert.deepEqual(pages[0]?.records, [{ Email: 'a@x' }]);
        assert.equal(provider.invalidated, 1);
        assert.deepEqual(
          api.requests.map((r) => r.headers.authorization),
          ['Bearer ya29.token-1-abcdefgh', 'Bearer ya29.token-2-abcdefgh'],
        );
      },
    );
  });

  it('fails on a second 401 with a SourceHttpError in which no token appears', async () => {
    const provider = tokenProvider();
    await withApi(
      sheetsApi(() => false),
      async (api) => {
        const error = await failure(config(`${api.base}/v4/spreadsheets/s/values/A1`, provider));
        assert.ok(error instanceof SourceHttpError);
        assert.equal(error.status, 401);
        assert.equal(api.requests.length, 2, 'one refresh, no retry loop');
        assert.equal(provider.invalidated, 1);
        assert.match(error.message, /UNAUTHENTICATED/);
        for (const token of provider.issued) {
          assert.ok(!error.message.includes(token), error.message);
          assert.ok(!String(error.stack).includes(token));
        }
        assert.match(error.message, /\[REDACTED\]/);
      },
    );
  });

  it('redacts a token from a page error long after it was obtained', async () => {
    const provider = tokenProvider();
    await withApi(
      (req, index) =>
        index === 0 ? { body: { data: [1], next: 'c2' } } : { status: 403, body: `forbidden for ${String(req.headers.authorization)}` },
      async (api) => {
        const error = await failure(
          config(`${api.base}/r`, provider, { pagination: { type: 'cursor', cursor_path: 'next', param: 'c' }, records_path: 'data' }),
        );
        assert.ok(error instanceof SourceHttpError && error.status === 403);
        assert.ok(!error.message.includes(provider.issued[0]!), error.message);
      },
    );
  });

  it('never sends the token to another origin a redirect points to, nor refreshes on its 401', async () => {
    const provider = tokenProvider();
    await withApi(
      () => ({ status: 401, body: { error: 'who are you' } }),
      async (elsewhere) => {
        await withApi(
          () => ({ status: 302, headers: { location: `${elsewhere.base}/moved` } }),
          async (api) => {
            const error = await failure(config(`${api.base}/r`, provider));
            assert.ok(error instanceof SourceHttpError && error.status === 401);
            assert.equal(api.requests[0]?.headers.authorization, 'Bearer ya29.token-1-abcdefgh');
            assert.equal(elsewhere.requests.length, 1);
            assert.equal(elsewhere.requests[0]?.headers.authorization, undefined);
            assert.equal(provider.invalidated, 0, 'the token was not the problem there');
          },
        );
      },
    );
  });

  it("passes a provider's own error through as it is, without a request", async () => {
    const refusing: AccessTokenProvider = {
      token: () => Promise.reject(new Error('token endpoint answered 400 invalid_client')),
      invalidate: () => {},
    };
    await withApi(
      () => ({ body: [] }),
      async (api) => {
        const error = await failure(config(`${api.base}/r`, refusing));
        assert.match(error.message, /invalid_client/);
        assert.ok(!(error instanceof SourceHttpError));
        assert.equal(api.requests.length, 0);
      },
    );
  });

  it('gives up waiting for a token at the request timeout', async () => {
    const hanging: AccessTokenProvider = {
      token: (signal) =>
        new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
      invalidate: () => {},
    };
    // The timeout's timer does not hold the process open; a real token request's socket would.
    const keepAlive = setInterval(() => {}, 1000);
    const error = await failure(config('http://127.0.0.1:9/r', hanging, { timeout_ms: 50, retry: { max_attempts: 1 } })).finally(() =>
      clearInterval(keepAlive),
    );
    assert.match(error.message, /timed out: no complete response within 50 ms/);
  });
});
