import type { RestSourceError } from './errors.ts';
import { SourceHttpError, NetworkError } from './errors.ts';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Upper bound on any single wait, even when the server asks for longer via Retry-After. */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/**
 * Parse a Retry-After header value (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date.
 * Returns the delay in ms (never negative), or undefined when absent or unparseable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  // An HTTP-date always names a month; this keeps Date.parse from accepting "-3" or "2026".
  if (!/[a-z]{3}/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))]. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** 408, 429, 5xx and network errors/timeouts are retryable; every other error is not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof SourceHttpError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return error instanceof NetworkError;
}

export interface RetryOptions {
  sleep: (ms: number) => Promise<void>;
  random?: () => number;
  signal?: AbortSignal;
  /** Called before each wait; for logging/metrics. */
  onRetry?: (info: { attempt: number; delayMs: number; error: Error }) => void;
}

/**
 * Run `fn` until it succeeds, a non-retryable error occurs, or `maxAttempts` is reached.
 * A Retry-After carried by an SourceHttpError is honoured instead of the jittered backoff.
 * When attempts are exhausted, the last error is rethrown with the attempt count in its message.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy, options: RetryOptions): Promise<T> {
  const maxAttempts = Math.max(1, Math.floor(policy.maxAttempts));
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (!isRetryable(error)) throw error;
      const err = error as RestSourceError;
      if (attempt >= maxAttempts) {
        err.message = `${err.message} (gave up after ${attempt} attempt${attempt === 1 ? '' : 's'})`;
        err.attempts = attempt;
        throw err;
      }
      const retryAfter = err instanceof SourceHttpError ? err.retryAfterMs : undefined;
      const delayMs = retryAfter !== undefined ? Math.min(retryAfter, MAX_RETRY_AFTER_MS) : backoffDelay(attempt, policy, options.random);
      options.onRetry?.({ attempt, delayMs, error: err });
      await options.sleep(delayMs);
    }
  }
}

/** A setTimeout-based sleep that rejects with the signal's reason when aborted. */
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
