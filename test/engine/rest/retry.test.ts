import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { SourceHttpError, NetworkError } from '../../../src/engine/sources/rest/errors.ts';
import { isRetryable, parseRetryAfter } from '../../../src/engine/sources/rest/retry.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { startFakeApi, type Handler } from '../../fakes/http-api.ts';
import { collect, fakeTime } from './pages-and-clock.ts';

const NOW = 1_700_000_000_000; // a whole second, so HTTP-dates round-trip exactly

async function withApi<T>(handler: Handler, fn: (base: string, requests: { path: string }[]) => Promise<T>): Promise<T> {
  const api = await startFakeApi(handler);
  try {
    return await fn(api.base, api.requests);
  } finally {
    await api.close();
  }
}

function cfg(base: string, extra: Partial<RestSourceConfig> = {}): RestSourceConfig {
  return { url: `${base}/data`, pagination: { type: 'none' }, records_path: 'data', ...extra };
}

describe('parseRetryAfter / isRetryable', () => {
  it('parses delay-seconds and HTTP-dates', () => {
    assert.equal(parseRetryAfter('3', NOW), 3000);
    assert.equal(parseRetryAfter(' 0 ', NOW), 0);
    assert.equal(parseRetryAfter(new Date(NOW + 42_000).toUTCString(), NOW), 42_000);
    assert.equal(parseRetryAfter(new Date(NOW - 5_000).toUTCString(), NOW), 0);
    assert.equal(parseRetryAfter('soon', NOW), undefined);
    assert.equal(parseRetryAfter('-3', NOW), undefined);
    assert.equal(parseRetryAfter(null, NOW), undefined);
  });

  it('classifies retryable errors', () => {
    assert.equal(isRetryable(new SourceHttpError(429, 'u', '')), true);
    assert.equal(isRetryable(new SourceHttpError(408, 'u', '')), true);
    assert.equal(isRetryable(new SourceHttpError(503, 'u', '')), true);
    assert.equal(isRetryable(new SourceHttpError(404, 'u', '')), false);
    assert.equal(isRetryable(new NetworkError('u', 'x', true)), true);
    assert.equal(isRetryable(new Error('x')), false);
  });
});

describe('retries', () => {
  it('honours Retry-After in seconds on 429', async () => {
    const time = fakeTime(NOW);
    await withApi(
      (_req, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '7' }, body: { error: 'slow down' } } : { body: { data: [1] } }),
      async (base, requests) => {
        const pages = await collect(fetchPages(cfg(base), time));
        assert.deepEqual(pages[0]?.records, [1]);
        assert.equal(requests.length, 2);
        assert.deepEqual(time.sleeps, [7000]);
      },
    );
  });

  it('honours Retry-After as an HTTP-date on 429', async () => {
    const time = fakeTime(NOW);
    await withApi(
      (_req, i) => (i === 0 ? { status: 429, headers: { 'retry-after': new Date(NOW + 12_000).toUTCString() } } : { body: { data: [1] } }),
      async (base, requests) => {
        await collect(fetchPages(cfg(base), time));
        assert.equal(requests.length, 2);
        assert.deepEqual(time.sleeps, [12_000]);
      },
    );
  });

  it('caps a Retry-After longer than 15 minutes', async () => {
    const time = fakeTime(NOW);
    await withApi(
      (_req, i) => (i === 0 ? { status: 503, headers: { 'retry-after': '7200' } } : { body: { data: [1] } }),
      async (base, requests) => {
        await collect(fetchPages(cfg(base), time));
        assert.equal(requests.length, 2);
        assert.deepEqual(time.sleeps, [15 * 60_000]);
      },
    );
  });

  it('retries a 5xx burst with jittered exponential backoff, then succeeds', async () => {
    const time = fakeTime(NOW);
    const statuses = [500, 502, 503];
    await withApi(
      (_req, i) => (i < statuses.length ? { status: statuses[i], body: 'upstream down' } : { body: { data: ['ok'] } }),
      async (base, requests) => {
        const pages = await collect(
          fetchPages(cfg(base, { retry: { max_attempts: 5, base_delay_ms: 100, max_delay_ms: 10_000 } }), { ...time, random: () => 0.5 }),
        );
        assert.deepEqual(pages[0]?.records, ['ok']);
        assert.equal(requests.length, 4);
        assert.deepEqual(time.sleeps, [50, 100, 200]);
      },
    );
  });

  it('throws the last error with the attempt count after max_attempts', async () => {
    const time = fakeTime(NOW);
    await withApi(
      () => ({ status: 503, body: { error: 'maintenance' } }),
      async (base, requests) => {
        const error = await collect(fetchPages(cfg(base, { retry: { max_attempts: 3 } }), time)).catch((e: unknown) => e);
        assert.ok(error instanceof SourceHttpError, String(error));
        assert.equal(error.status, 503);
        assert.equal(error.attempts, 3);
        assert.match(error.message, /HTTP 503/);
        assert.match(error.message, /maintenance/);
        assert.match(error.message, /after 3 attempts/);
        assert.ok(error.message.includes(`${base}/data`));
        assert.equal(requests.length, 3);
        assert.equal(time.sleeps.length, 2);
      },
    );
  });

  it('fails at once on a non-retryable 4xx', async () => {
    const time = fakeTime(NOW);
    await withApi(
      () => ({ status: 404, body: { error: 'no such endpoint' } }),
      async (base, requests) => {
        const error = await collect(fetchPages(cfg(base), time)).catch((e: unknown) => e);
        assert.ok(error instanceof SourceHttpError);
        assert.equal(error.status, 404);
        assert.match(error.message, /no such endpoint/);
        assert.equal(requests.length, 1);
        assert.deepEqual(time.sleeps, []);
      },
    );
  });

  it('retries a request timeout (real time) and then succeeds', async () => {
    await withApi(
      (_req, i) => (i === 0 ? { hang: true } : { body: { data: [42] } }),
      async (base, requests) => {
        const started = Date.now();
        const attempts: number[] = [];
        const pages = await collect(
          fetchPages(cfg(base, { timeout_ms: 100, retry: { base_delay_ms: 10, max_delay_ms: 20 } }), {
            onRequest: (info) => attempts.push(info.attempt),
          }),
        );
        assert.deepEqual(pages[0]?.records, [42]);
        assert.equal(requests.length, 2);
        assert.deepEqual(attempts, [1, 2]);
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 90, `the first attempt waited for its 100 ms timeout (elapsed ${elapsed})`);
      },
    );
  });

  it('reports a timeout with the attempt count when every attempt times out', async () => {
    await withApi(
      () => ({ hang: true }),
      async (base, requests) => {
        const error = await collect(fetchPages(cfg(base, { timeout_ms: 50, retry: { max_attempts: 2 } }), { sleep: async () => {} })).catch(
          (e: unknown) => e,
        );
        assert.ok(error instanceof NetworkError, String(error));
        assert.equal(error.timedOut, true);
        assert.match(error.message, /timed out/);
        assert.match(error.message, /after 2 attempts/);
        assert.equal(requests.length, 2);
      },
    );
  });

  it('retries network errors (connection refused)', async () => {
    const api = await startFakeApi(() => ({ body: [] }));
    const base = api.base;
    await api.close();
    const time = fakeTime(NOW);
    const error = await collect(fetchPages(cfg(base, { retry: { max_attempts: 3 } }), time)).catch((e: unknown) => e);
    assert.ok(error instanceof NetworkError, String(error));
    assert.equal(error.timedOut, false);
    assert.match(error.message, /after 3 attempts/);
    assert.equal(time.sleeps.length, 2);
  });
});
