import type { RunState } from '../../domain/states.ts';
import { asStepFailure, ConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { StopReason } from './supervisor.ts';

/** How a run ended: its terminal state, exit code and the error that ended it. */
export interface RunOutcome {
  status: Exclude<RunState, 'PENDING' | 'RUNNING'>;
  exitCode: number;
  error?: ConvergenceError;
}

export const COMPLETED: RunOutcome = { status: 'COMPLETE', exitCode: 0 };

/** The error a run stopped early ends with (exit 3). */
export function stopError(reason: StopReason): ConvergenceError {
  const code = reason.status === 'CANCELLED' ? 'RUN_CANCELLED' : reason.status === 'TIMEOUT' ? 'RUN_TIMEOUT' : 'LOCK_LOST';
  return new ConvergenceError(code, ExitCode.pipelineFailed, reason.message);
}

/** A run stopped by its supervisor (cancel, timeout, lock lost), ending with `error`. */
export function stoppedOutcome(reason: StopReason, error: ConvergenceError = stopError(reason)): RunOutcome {
  return { status: reason.status, exitCode: ExitCode.pipelineFailed, error };
}

/** A run ended by a failed step: exit 4 when a data-quality rule failed it, else 3. */
export function failedOutcome(error: ConvergenceError): RunOutcome {
  return {
    status: 'FAILED',
    exitCode: error.exitCode === ExitCode.dataQualityFailed ? ExitCode.dataQualityFailed : ExitCode.pipelineFailed,
    error,
  };
}

/** Any failure inside a step, as a pipeline failure that keeps a ConvergenceError's code and advice. */
export const asRunError = asStepFailure;
