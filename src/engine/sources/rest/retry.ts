/**
 * What the rest_api source retries and how long it waits, for the loop of lib/retry.ts: 408, 429,
 * 5xx and network errors/timeouts are retried, a Retry-After is honoured instead of the jittered
 * backoff, and the error that ends the retries says how many attempts were made.
 */
import type { RetryOptions } from '../../../lib/retry.ts';
import type { RestSourceError } from './errors.ts';
import { SourceHttpError, NetworkError } from './errors.ts';

/** Upper bound on any single wait, even when the server asks for longer via Retry-After. */
const MAX_RETRY_AFTER_MS = 15 * 60_000;

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

/** 408, 429, 5xx and network errors/timeouts are retryable; every other error is not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof SourceHttpError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return error instanceof NetworkError;
}

/** The wait the server asked for with Retry-After, capped; undefined when it did not ask. */
function retryAfterOf(error: unknown): number | undefined {
  const retryAfter = error instanceof SourceHttpError ? error.retryAfterMs : undefined;
  return retryAfter === undefined ? undefined : Math.min(retryAfter, MAX_RETRY_AFTER_MS);
}

/** The last error tells the operator that it was not a one-off. */
function noteAttempts(error: unknown, attempts: number): void {
  const err = error as RestSourceError;
  err.message = `${err.message} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`;
  err.attempts = attempts;
}

/** The rest_api source's rules for lib/retry.ts's `retry`. */
export const REST_RETRY_RULES = {
  retryable: isRetryable,
  delayFor: retryAfterOf,
  onGiveUp: noteAttempts,
} satisfies Pick<RetryOptions, 'retryable' | 'delayFor' | 'onGiveUp'>;
