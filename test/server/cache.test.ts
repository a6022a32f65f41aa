import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TtlCache } from '../../src/server/cache.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('TtlCache', () => {
  it('answers from memory while fresh and loads again after', async () => {
    let now = 0;
    let loads = 0;
    const cache = new TtlCache<number>({ ttlMs: 100, now: () => now });
    const load = async () => ++loads;
    assert.equal(await cache.get('k', load), 1);
    now = 99;
    assert.equal(await cache.get('k', load), 1);
    now = 100;
    assert.equal(await cache.get('k', load), 2);
  });

  it('shares one load between concurrent callers of a key', async () => {
    const cache = new TtlCache<string>({ ttlMs: 1_000 });
    const pending = deferred<string>();
    let loads = 0;
    const load = () => {
      loads++;
      return pending.promise;
    };
    const all = Promise.all([cache.get('k', load), cache.get('k', load), cache.get('k', load)]);
    pending.resolve('v');
    assert.deepEqual(await all, ['v', 'v', 'v']);
    assert.equal(loads, 1);
  });

  it('gives the stale answer at once while one background reload replaces it', async () => {
    let now = 0;
    const cache = new TtlCache<string>({ ttlMs: 100, staleMs: 100, now: () => now });
    await cache.get('k', async () => 'old');
    now = 150;
    const reload = deferred<string>();
    let reloads = 0;
    const load = () => {
      reloads++;
      return reload.promise;
    };
    assert.equal(await cache.get('k', load), 'old');
    assert.equal(await cache.get('k', load), 'old');
    assert.equal(reloads, 1);
    reload.resolve('new');
    await reload.promise;
    await Promise.resolve();
    assert.equal(await cache.get('k', async () => 'unused'), 'new');
    // Past the stale window a caller waits for a fresh answer.
    now = 150 + 100 + 100;
    assert.equal(await cache.get('k', async () => 'newest'), 'newest');
  });

  it('never keeps a failure, nor a value whose ttl is 0', async () => {
    const cache = new TtlCache<string>({ ttlMs: 1_000 });
    await assert.rejects(
      cache.get('k', () => Promise.reject(new Error('warehouse down'))),
      /warehouse down/,
    );
    assert.equal(await cache.get('k', async () => 'ok'), 'ok');
    assert.equal(
      await cache.get(
        'z',
        async () => 'once',
        () => 0,
      ),
      'once',
    );
    assert.equal(
      await cache.get(
        'z',
        async () => 'twice',
        () => 0,
      ),
      'twice',
    );
    assert.equal(cache.size, 1);
  });

  it('does not store a load that an invalidation overtook', async () => {
    const cache = new TtlCache<string>({ ttlMs: 1_000 });
    const pending = deferred<string>();
    const first = cache.get('k', () => pending.promise);
    cache.delete('k');
    pending.resolve('before revocation');
    assert.equal(await first, 'before revocation');
    assert.equal(await cache.get('k', async () => 'after revocation'), 'after revocation');
    cache.clear();
    assert.equal(await cache.get('k', async () => 'after clear'), 'after clear');
  });

  it('drops the oldest entry beyond maxEntries', async () => {
    const cache = new TtlCache<string>({ ttlMs: 1_000, maxEntries: 2 });
    for (const k of ['a', 'b', 'c']) await cache.get(k, async () => k);
    assert.equal(cache.size, 2);
    assert.equal(await cache.get('a', async () => 'reloaded'), 'reloaded');
    assert.equal(await cache.get('c', async () => 'not reloaded'), 'c');
  });
});
