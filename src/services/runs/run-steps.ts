import type { StepEnv, StepOutcome } from '../../engine/steps/types.ts';
import type { ConvergenceError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import type { PipelineBundle } from '../pipelines/bundle.ts';
import { recordDqResults } from './dq-results.ts';
import { asRunError, COMPLETED, failedOutcome, stopError, stoppedOutcome, type RunOutcome } from './outcome.ts';
import { executeStep } from './step-env.ts';
import type { StepRecorder } from './steps.ts';
import type { RunSupervisor } from './supervisor.ts';

export interface RunStepsInput {
  bundle: PipelineBundle;
  env: StepEnv;
  supervisor: RunSupervisor;
  recorder: StepRecorder;
}

/**
 * Runs the pipeline's steps in order. A step that fails with on_failure: stop, or a stop from the
 * supervisor, ends the run: what ran stays committed and the steps after it are recorded SKIPPED.
 * A step that fails with on_failure: continue is a warning.
 */
export async function runSteps(ctx: ServiceContext, input: RunStepsInput): Promise<RunOutcome> {
  const { bundle, env, supervisor, recorder } = input;
  let outcome = COMPLETED;
  let failed = false;
  for (const [index, step] of bundle.pipeline.steps.entries()) {
    const stopped = supervisor.stopReason();
    if (!failed && stopped) {
      // Stopped between steps: what ran stays committed, the rest is skipped.
      failed = true;
      outcome = stoppedOutcome(stopped);
    }
    if (failed) {
      await recorder.skip(index, step);
      continue;
    }
    const started = await recorder.start(index, step);
    let result: StepOutcome | undefined;
    let error: ConvergenceError | undefined;
    try {
      result = await executeStep(env, step);
      if (result.dq && step.type === 'dq') {
        await recordDqResults(ctx, result.dq, {
          runId: env.runId,
          tenantId: env.tenantId,
          pipelineId: env.pipelineId,
          stepName: step.name,
          tableName: step.table,
          checkedAt: ctx.now(),
        });
      }
      error = result.failure;
    } catch (err) {
      const stoppedNow = supervisor.stopReason();
      error = stoppedNow ? stopError(stoppedNow) : asRunError(err);
    }
    await recorder.finish(started, { status: !error ? 'COMPLETE' : (supervisor.stopReason()?.status ?? 'FAILED'), result, error });
    // The supervisor may have stopped the run while the step's end was recorded.
    const reason = supervisor.stopReason();
    if (error && (reason || step.on_failure === 'stop')) {
      failed = true;
      outcome = reason ? stoppedOutcome(reason, error) : failedOutcome(error);
    } else if (error) {
      ctx.warn(`step ${step.name} failed and the pipeline continued (on_failure: continue): ${error.message}`);
    }
  }
  return outcome;
}
