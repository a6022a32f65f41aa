/**
 * Behaviour every Lock adapter promises (lock files here, a GCS-generation lock over a fake
 * later): one holder at a time, expiry, renewal, release, stale takeover and fencing tokens.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AcquireResult, Lease, Lock } from '../../src/backends/lock/port.ts';

export interface LockFixture {
  subject: Lock;
  cleanup(): Promise<void>;
}

const KEY = 'run/acme_corp/p_usage_daily';

function leaseOf(result: AcquireResult): Lease {
  assert.equal(result.acquired, true, 'expected the lock to be acquired');
  return (result as { lease: Lease }).lease;
}

export function lockContract(name: string, make: () => Promise<LockFixture>): void {
  describe(`Lock contract: ${name}`, () => {
    let fixture: LockFixture;
    let lock: Lock;

    beforeEach(async () => {
      fixture = await make();
      lock = fixture.subject;
    });
    afterEach(() => fixture.cleanup());

    it('grants a free lock and describes the lease', async () => {
      const before = Date.now();
      const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000, info: { run_id: 'r1' } }));
      assert.equal(lease.key, KEY);
      assert.equal(lease.owner, 'runner-a');
      assert.ok(Number.isInteger(lease.token) && lease.token > 0);
      assert.deepEqual(lease.info, { run_id: 'r1' });
      assert.ok(lease.acquiredAt.getTime() >= before - 1000 && lease.acquiredAt.getTime() <= Date.now() + 1000);
      const ttl = lease.expiresAt.getTime() - lease.acquiredAt.getTime();
      assert.ok(ttl >= 59_000 && ttl <= 61_000, `ttl ${ttl}`);
    });

    it('refuses a held lock and names the holder', async () => {
      const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000, info: { run_id: 'r1' } }));
      const second = await lock.acquire(KEY, { owner: 'runner-b', ttlMs: 60_000 });
      assert.equal(second.acquired, false);
      if (second.acquired) return;
      assert.equal(second.holder.owner, 'runner-a');
      assert.equal(second.holder.token, lease.token);
      assert.deepEqual(second.holder.info, { run_id: 'r1' });
      assert.equal(second.holder.expiresAt.getTime(), lease.expiresAt.getTime());
    });

    it('lets exactly one of 8 concurrent acquirers win', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => lock.acquire(KEY, { owner: `racer-${i}`, ttlMs: 60_000 })));
      const winners = results.filter((r) => r.acquired);
      assert.equal(winners.length, 1);
      const winner = leaseOf(winners[0]!);
      for (const loser of results.filter((r) => !r.acquired)) {
        if (!loser.acquired) assert.equal(loser.holder.owner, winner.owner);
      }
      assert.equal((await lock.inspect(KEY))?.owner, winner.owner);
    });

    it('keeps keys independent, including keys with slashes and escapes', async () => {
      const keys = ['run/a/b', 'run/a_b', 'run%2Fa%2Fb', 'run/a/b/', 'run\\a'];
      for (const key of keys) leaseOf(await lock.acquire(key, { owner: key, ttlMs: 60_000 }));
      for (const key of keys) assert.equal((await lock.inspect(key))?.owner, key);
    });

    it('renews a held lease, extending its expiry and keeping its token', async () => {
      const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 1000 }));
      await sleep(50);
      const renewed = await lock.renew(lease, 60_000);
      assert.equal(renewed.token, lease.token);
      assert.equal(renewed.owner, 'runner-a');
      assert.ok(renewed.expiresAt.getTime() > lease.expiresAt.getTime() + 30_000);
      await sleep(1100);
      assert.equal((await lock.inspect(KEY))?.token, lease.token, 'renewed lease must outlive the first ttl');
      const again = await lock.renew(renewed, 60_000);
      assert.equal(again.token, lease.token);
      assert.equal((await lock.acquire(KEY, { owner: 'runner-b', ttlMs: 1000 })).acquired, false);
    });

    it('fails renewal with LOCK_LOST once the lease expired or was taken over', async () => {
      const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 100 }));
      await sleep(200);
      await assert.rejects(lock.renew(lease, 60_000), (err: unknown) => (err as { code?: string }).code === 'LOCK_LOST');
      const taker = leaseOf(await lock.acquire(KEY, { owner: 'runner-b', ttlMs: 60_000 }));
      await assert.rejects(lock.renew(lease, 60_000), (err: unknown) => (err as { code?: string }).code === 'LOCK_LOST');
      assert.equal((await lock.inspect(KEY))?.token, taker.token);
    });

    it('releases only its own lease', async () => {
      const first = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 100 }));
      await sleep(200);
      const second = leaseOf(await lock.acquire(KEY, { owner: 'runner-b', ttlMs: 60_000 }));
      assert.equal(await lock.release(first), false, 'a taken-over lease releases nothing');
      assert.equal((await lock.inspect(KEY))?.owner, 'runner-b');
      assert.equal(await lock.release(second), true);
      assert.equal(await lock.inspect(KEY), undefined);
      assert.equal(await lock.release(second), false);
      const third = leaseOf(await lock.acquire(KEY, { owner: 'runner-c', ttlMs: 60_000 }));
      assert.ok(third.token > second.token);
    });

    it('inspects the holder, and nothing once the lease expired', async () => {
      assert.equal(await lock.inspect(KEY), undefined);
      const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 600, info: { run_id: 'r9' } }));
      const holder = await lock.inspect(KEY);
      assert.equal(holder?.owner, 'runner-a');
      assert.equal(holder?.token, lease.token);
      assert.deepEqual(holder?.info, { run_id: 'r9' });
      await sleep(700);
      assert.equal(await lock.inspect(KEY), undefined);
    });

    it('lets exactly one of two racers take over a stale lease, with a higher token', async () => {
      const stale = leaseOf(await lock.acquire(KEY, { owner: 'crashed', ttlMs: 100 }));
      await sleep(200);
      const results = await Promise.all([
        lock.acquire(KEY, { owner: 'racer-1', ttlMs: 60_000 }),
        lock.acquire(KEY, { owner: 'racer-2', ttlMs: 60_000 }),
      ]);
      const winners = results.filter((r) => r.acquired);
      assert.equal(winners.length, 1);
      const winner = leaseOf(winners[0]!);
      assert.ok(winner.token > stale.token);
      const loser = results.find((r) => !r.acquired);
      if (loser && !loser.acquired) assert.equal(loser.holder.owner, winner.owner);
    });

    it('issues strictly increasing fencing tokens across releases and takeovers', async () => {
      const tokens: number[] = [];
      for (let i = 0; i < 4; i++) {
        const lease = leaseOf(await lock.acquire(KEY, { owner: `seq-${i}`, ttlMs: 60_000 }));
        tokens.push(lease.token);
        await lock.release(lease);
      }
      tokens.push(leaseOf(await lock.acquire(KEY, { owner: 'short', ttlMs: 50 })).token);
      await sleep(120);
      tokens.push(leaseOf(await lock.acquire(KEY, { owner: 'taker', ttlMs: 60_000 })).token);
      await lock.forceRelease(KEY);
      tokens.push(leaseOf(await lock.acquire(KEY, { owner: 'after-force', ttlMs: 60_000 })).token);
      for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `tokens ${tokens.join(',')}`);
    });

    it('force-releases whatever holds the lock', async () => {
      assert.equal(await lock.forceRelease(KEY), false);
      const lease = leaseOf(await lock.acquire(KEY, { owner: 'stuck', ttlMs: 60_000 }));
      assert.equal(await lock.forceRelease(KEY), true);
      assert.equal(await lock.inspect(KEY), undefined);
      await assert.rejects(lock.renew(lease, 1000), (err: unknown) => (err as { code?: string }).code === 'LOCK_LOST');
      leaseOf(await lock.acquire(KEY, { owner: 'next', ttlMs: 60_000 }));
    });
  });
}
