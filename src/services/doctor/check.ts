import { isConvergenceError } from '../../lib/errors.ts';

/** One line of `convergence doctor`: what was checked, how it went, and the fix when it did not pass. */
type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';
export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

/** How a check names what went wrong. */
export const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** The remedy the error carries, else `fallback`. */
export const fixOf = (err: unknown, fallback: string) => (isConvergenceError(err) && err.suggestion ? err.suggestion : fallback);
