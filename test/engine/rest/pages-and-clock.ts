/** Shared by the REST source tests: draining a paginator, and a fake clock for retry waits. */

/** Collect every page of an async iterable. */
export async function collect<T>(pages: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const page of pages) out.push(page);
  return out;
}

/** Fake sleep that records requested delays and advances an optional fake clock. */
export function fakeTime(start = 1_700_000_000_000): { now: () => number; sleep: (ms: number) => Promise<void>; sleeps: number[] } {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}
