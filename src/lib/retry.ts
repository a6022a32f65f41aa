/**
 * The one retry loop of the code base: bounded attempts, exponential backoff with jitter, an
 * abort signal that stops the waiting. What is worth retrying, and whether a failure names its
 * own wait (an HTTP Retry-After), is for each adapter to say.
 */

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  attempts: number;
  /** Ceiling of the first wait; it doubles with each retry, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * How a wait is drawn under its ceiling: 'full' (the default) anywhere from 0, 'equal' from
   * half of it, for callers that must give a failing backend some room every time.
   */
  jitter?: 'full' | 'equal';
}

export interface RetryOptions {
  /** Whether a failure may go away when the same call is made again. */
  retryable: (error: unknown) => boolean;
  /** The wait a failure asks for itself; undefined leaves it to the backoff. */
  delayFor?: (error: unknown) => number | undefined;
  /** Stops the loop: no further attempt starts, a wait in progress ends, the signal's reason is thrown. */
  signal?: AbortSignal;
  /** Injectable for tests; defaults to a timer that honours `signal`. */
  sleep?: (ms: number) => Promise<void>;
  /** Random source in [0, 1) for the jitter (tests); defaults to Math.random. */
  random?: () => number;
  /** Called with the last failure when the attempts are used up, before it is thrown. */
  onGiveUp?: (error: unknown, attempts: number) => void;
}

/** The wait before retry number `attempt` (1 after the first failure), in whole milliseconds. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  if (policy.jitter === 'equal') return Math.floor(ceiling / 2 + random() * (ceiling / 2));
  return Math.floor(random() * ceiling);
}

/**
 * Runs `call` until it succeeds, fails in a way `retryable` rejects, or has been attempted
 * `policy.attempts` times; the last failure is thrown as it is.
 */
export async function retry<T>(call: (attempt: number) => Promise<T>, policy: RetryPolicy, options: RetryOptions): Promise<T> {
  const { signal } = options;
  const sleep = options.sleep ?? ((ms: number) => abortableSleep(ms, signal));
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await call(attempt);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!options.retryable(error)) throw error;
      if (attempt >= policy.attempts) {
        options.onGiveUp?.(error, attempt);
        throw error;
      }
      await sleep(options.delayFor?.(error) ?? backoffDelay(attempt, policy, options.random));
    }
  }
}

/** A timer that rejects with the signal's reason when the signal aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
