/**
 * The bounded retry every gcp adapter puts around its Google calls. Adapters pass gax
 * `retry: null` and rely on this instead, so every API gets the same policy (gax's own defaults
 * differ per method: some never retry, others keep trying for ten minutes).
 */
import { retry, type RetryPolicy } from '../../lib/retry.ts';
import { isTransient } from './errors.ts';

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 4000 };

/** A response whose CRC32C does not match its data was damaged on the way: worth another try. */
export class IntegrityError extends Error {}

/** Failures a repeated call may get past: transient Google errors and responses damaged in transit. */
function isRetryable(err: unknown): boolean {
  return err instanceof IntegrityError || isTransient(err);
}

/** Runs `call` again while it fails in a way worth retrying, up to the policy's attempts (DEFAULT_RETRY where unset). */
export function retryTransient<T>(call: (attempt: number) => Promise<T>, policy: Partial<RetryPolicy> = {}): Promise<T> {
  return retry(call, { ...DEFAULT_RETRY, ...policy }, { retryable: isRetryable });
}
