import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Lease, LockHolder } from '../backends/lock/port.ts';
import { lockHeldError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';

export interface LeaseOptions {
  /** How long to wait for the current holder before failing with exit 5; 0 fails at once. */
  waitMs: number;
  /** What the lock protects, for the error message, e.g. 'the keys of tenant "acme"'. */
  what: string;
  ttlMs?: number;
}

/**
 * Who takes a lease: the actor plus this process's pid and host, recorded in the lease so that a
 * holder killed with `kill -9` can be recognised as dead and taken over at once.
 */
export function holderIdentity(ctx: ServiceContext, info: Record<string, string> = {}): { owner: string; info: Record<string, string> } {
  const host = os.hostname();
  return { owner: `${ctx.actor} pid ${process.pid} on ${host}`, info: { ...info, pid: String(process.pid), host } };
}

/**
 * A holder on this machine whose process is gone (kill -9, OOM) would block others until its
 * lease expires; pids mean something only on the same host, so only local leases are judged so.
 */
export function holderIsDeadHere(ctx: ServiceContext, holder: LockHolder): boolean {
  if (ctx.env.backend !== 'local' || holder.info?.host !== os.hostname()) return false;
  const pid = Number(holder.info.pid);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Runs `work` while holding the lease on `key`, across processes; always releases it. */
export async function withLease<R>(ctx: ServiceContext, key: string, options: LeaseOptions, work: () => Promise<R>): Promise<R> {
  const lock = await ctx.backends.lock();
  const deadline = Date.now() + options.waitMs;
  for (;;) {
    const taken = await lock.acquire(key, { ...holderIdentity(ctx), ttlMs: options.ttlMs ?? 60_000 });
    if (taken.acquired) {
      try {
        return await work();
      } finally {
        await lock.release(taken.lease);
      }
    }
    if (holderIsDeadHere(ctx, taken.holder)) {
      // Release exactly the dead holder's lease: if a racer already took over, its lease stays.
      const dead: Lease = { ...taken.holder, key };
      await lock.release(dead);
      ctx.warn(`took over ${key}: its holder, process ${taken.holder.info?.pid}, is no longer running`);
      continue;
    }
    if (Date.now() >= deadline) {
      throw lockHeldError(`${options.what} is being changed by ${taken.holder.owner}`, { suggestion: 'retry in a moment' });
    }
    await sleep(25 + Math.random() * 75);
  }
}
