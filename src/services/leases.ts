import { setTimeout as sleep } from 'node:timers/promises';
import { lockHeldError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';

export interface LeaseOptions {
  /** How long to wait for the current holder before failing with exit 5; 0 fails at once. */
  waitMs: number;
  /** What the lock protects, for the error message, e.g. 'the keys of tenant "acme"'. */
  what: string;
  ttlMs?: number;
}

/** Runs `work` while holding the lease on `key`, across processes; always releases it. */
export async function withLease<R>(ctx: ServiceContext, key: string, options: LeaseOptions, work: () => Promise<R>): Promise<R> {
  const lock = await ctx.backends.lock();
  const deadline = Date.now() + options.waitMs;
  for (;;) {
    const taken = await lock.acquire(key, { owner: ctx.actor, ttlMs: options.ttlMs ?? 60_000 });
    if (taken.acquired) {
      try {
        return await work();
      } finally {
        await lock.release(taken.lease);
      }
    }
    if (Date.now() >= deadline) {
      throw lockHeldError(`${options.what} is being changed by ${taken.holder.owner}`, { suggestion: 'retry in a moment' });
    }
    await sleep(25 + Math.random() * 75);
  }
}
