import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { RateLimiter } from '../../../src/lib/rate-limiter.ts';
import { startFakeApi } from '../../fakes/http-api.ts';
import { collect, fakeTime } from './pages-and-clock.ts';

describe('rate limiter', () => {
  it('spaces acquisitions by 1000 / requests_per_second (injected clock)', async () => {
    const time = fakeTime(0);
    const limiter = new RateLimiter({ requestsPerSecond: 5, now: time.now, sleep: time.sleep });
    const at: number[] = [];
    for (let i = 0; i < 4; i++) {
      await limiter.acquire();
      at.push(time.now());
    }
    assert.deepEqual(at, [0, 200, 400, 600]);
  });

  it('does not wait when the caller is slower than the rate', async () => {
    const time = fakeTime(0);
    const limiter = new RateLimiter({ requestsPerSecond: 2, now: time.now, sleep: time.sleep });
    await limiter.acquire();
    await time.sleep(800);
    time.sleeps.length = 0;
    await limiter.acquire();
    assert.deepEqual(time.sleeps, []);
    await limiter.acquire();
    assert.deepEqual(time.sleeps, [500]);
  });

  it('tryAcquire takes a token from the burst, then tells how long until the next one', () => {
    const time = fakeTime(0);
    const limiter = new RateLimiter({ requestsPerSecond: 4, burst: 2, now: time.now });
    assert.deepEqual([limiter.tryAcquire(), limiter.tryAcquire(), limiter.tryAcquire()], [0, 0, 250]);
    void time.sleep(100);
    assert.equal(limiter.tryAcquire(), 150);
    void time.sleep(150);
    assert.equal(limiter.tryAcquire(), 0);
  });

  it('rejects a non-positive rate', () => {
    assert.throws(() => new RateLimiter({ requestsPerSecond: 0, sleep: async () => {} }), RangeError);
  });

  it('spaces requests of fetchPages end to end', async () => {
    const api = await startFakeApi((req) => ({ body: Number(req.url.searchParams.get('p')) <= 3 ? [req.url.searchParams.get('p')] : [] }));
    try {
      const time = fakeTime(10_000);
      const at: number[] = [];
      await collect(
        fetchPages(
          { url: `${api.base}/r`, pagination: { type: 'page_number', param: 'p' }, rate_limit: { requests_per_second: 4 } },
          { ...time, onRequest: () => at.push(time.now()) },
        ),
      );
      assert.equal(api.requests.length, 4);
      assert.deepEqual(at, [10_000, 10_250, 10_500, 10_750]);
    } finally {
      await api.close();
    }
  });
});

describe('abort', () => {
  it('rethrows promptly without retrying when the signal aborts a hanging request', async () => {
    // Abort once the request has arrived, not after a fixed delay: a slow machine must not abort before it.
    const controller = new AbortController();
    const api = await startFakeApi(() => {
      setTimeout(() => controller.abort(new Error('run cancelled')), 20);
      return { hang: true };
    });
    try {
      const error = await collect(
        fetchPages({ url: `${api.base}/h`, pagination: { type: 'none' }, timeout_ms: 10_000 }, { signal: controller.signal }),
      ).catch((e: unknown) => e);
      assert.ok(error instanceof Error);
      assert.equal(error.message, 'run cancelled');
      assert.equal(api.requests.length, 1);
    } finally {
      await api.close();
    }
  });

  // Retry-After is an hour: only an interrupted wait lets the test finish within its timeout.
  it('interrupts a backoff wait', async () => {
    const controller = new AbortController();
    const api = await startFakeApi(() => {
      setTimeout(() => controller.abort(), 20);
      return { status: 503, headers: { 'retry-after': '3600' } };
    });
    try {
      const error = await collect(fetchPages({ url: `${api.base}/h`, pagination: { type: 'none' } }, { signal: controller.signal })).catch(
        (e: unknown) => e,
      );
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'AbortError');
      assert.equal(api.requests.length, 1);
    } finally {
      await api.close();
    }
  });

  it('does not start when the signal is already aborted', async () => {
    const api = await startFakeApi(() => ({ body: [] }));
    try {
      const error = await collect(
        fetchPages({ url: `${api.base}/h`, pagination: { type: 'none' } }, { signal: AbortSignal.abort() }),
      ).catch((e: unknown) => e);
      assert.ok(error instanceof Error);
      assert.equal(api.requests.length, 0);
    } finally {
      await api.close();
    }
  });
});
