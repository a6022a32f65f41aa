/**
 * Every failure the CLI reports on purpose is a ConvergenceError: it carries the exit code of the
 * DESIGN contract, a one-line cause and, where we know one, the next thing the user should try.
 * Anything else that escapes a command is a bug and exits 1.
 */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  pipelineFailed: 3,
  dataQualityFailed: 4,
  alreadyRunning: 5,
  quotaExceeded: 6,
  auth: 7,
  notFound: 8,
  deployAborted: 9,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorDetails {
  suggestion?: string;
  /** Machine-readable detail for --json consumers (never a secret). */
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class ConvergenceError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly code: string;
  readonly suggestion: string | undefined;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: string, exitCode: ExitCodeValue, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ConvergenceError';
    this.code = code;
    this.exitCode = exitCode;
    this.suggestion = details.suggestion;
    this.data = details.data;
  }
}

export const usageError = (message: string, details?: ErrorDetails) => new ConvergenceError('USAGE', ExitCode.usage, message, details);
export const validationError = (message: string, details?: ErrorDetails) =>
  new ConvergenceError('VALIDATION', ExitCode.usage, message, details);
export const conflictError = (message: string, details?: ErrorDetails) =>
  new ConvergenceError('CONFLICT', ExitCode.usage, message, details);
export const notFoundError = (message: string, details?: ErrorDetails) =>
  new ConvergenceError('NOT_FOUND', ExitCode.notFound, message, details);
export const authError = (message: string, details?: ErrorDetails) => new ConvergenceError('AUTH', ExitCode.auth, message, details);
export const lockHeldError = (message: string, details?: ErrorDetails) =>
  new ConvergenceError('LOCK_HELD', ExitCode.alreadyRunning, message, details);
export const quotaExceededError = (message: string, details?: ErrorDetails) =>
  new ConvergenceError('QUOTA_EXCEEDED', ExitCode.quotaExceeded, message, details);
export const keyringError = (message: string, details?: ErrorDetails) => new ConvergenceError('KEYRING', ExitCode.usage, message, details);

export const isConvergenceError = (err: unknown): err is ConvergenceError => err instanceof ConvergenceError;

/** Any failure inside a pipeline step, as a pipeline failure (exit 3) that keeps a ConvergenceError's code and advice. */
export function asStepFailure(err: unknown): ConvergenceError {
  if (isConvergenceError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ConvergenceError('STEP_FAILED', ExitCode.pipelineFailed, message, { cause: err });
}
