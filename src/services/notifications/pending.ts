import type { Backends } from '../../backends/factory.ts';

/**
 * Deliveries still on their way, per set of adapters: a CLI command waits for its context's
 * before it closes the adapters (deliveries record themselves in the warehouse), while `serve`
 * never waits and its deliveries go on in the background.
 */
const pending = new WeakMap<Backends, Set<Promise<unknown>>>();

/** How long closing a context waits for its deliveries: each one gives up on its own well before. */
const SETTLE_LIMIT_MS = 15_000;

/** Follows a delivery started in the background (it never rejects). */
export function trackDelivery(backends: Backends, work: Promise<unknown>): void {
  let set = pending.get(backends);
  if (!set) {
    set = new Set();
    pending.set(backends, set);
  }
  const entry = work.finally(() => set.delete(entry));
  set.add(entry);
}

/** Waits for the deliveries started with these adapters, at most `limitMs`. */
export async function settleDeliveries(backends: Backends, limitMs = SETTLE_LIMIT_MS): Promise<void> {
  const set = pending.get(backends);
  if (!set || set.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, limitMs);
    timer.unref();
  });
  // New deliveries may start while earlier ones finish (a run_recovered after a lookup).
  const all = (async () => {
    while (set.size > 0) await Promise.allSettled([...set]);
  })();
  await Promise.race([all, limit]);
  clearTimeout(timer);
}
