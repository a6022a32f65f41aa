import type { PipelineStep } from '../../domain/pipeline.ts';
import type { StepState } from '../../domain/states.ts';
import type { StepEnv, StepOutcome } from '../../engine/steps/types.ts';
import type { ConvergenceError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { finishStep, skipStep, startStep } from './store.ts';

export interface StepSummary {
  index: number;
  name: string;
  type: PipelineStep['type'];
  status: StepState;
  rowsIn: number;
  rowsOut: number;
  bytes: number;
  durationMs: number;
  notes: string[];
  error?: string;
}

/** Live step events for a renderer; the run never depends on them. */
export interface StepObserver {
  stepStarted?(index: number): void;
  stepProgress?(index: number, text: string): void;
  stepFinished?(index: number, step: StepSummary): void;
}

export interface RecordedRun {
  runId: string;
  tenantId: string;
  pipelineId: string;
}

/** A step whose row is written (RUNNING) and whose end is still to be recorded. */
export interface StartedStep {
  index: number;
  step: PipelineStep;
  stepId: string;
  began: number;
}

export interface StepEnd {
  status: StepState;
  result?: StepOutcome | undefined;
  error?: ConvergenceError | undefined;
}

/**
 * The steps of one run as they start and finish: a tenant_step_logs row each, the summaries the
 * run returns, and the events its observer follows.
 */
export class StepRecorder {
  readonly steps: StepSummary[] = [];
  readonly #ctx: ServiceContext;
  readonly #run: RecordedRun;
  readonly #observer: StepObserver;
  #current = 0;

  constructor(ctx: ServiceContext, run: RecordedRun, observer: StepObserver) {
    this.#ctx = ctx;
    this.#run = run;
    this.#observer = observer;
  }

  /** Rows the run wrote: data-quality steps only read. */
  get rowsProcessed(): number {
    return this.steps.filter((s) => s.type !== 'dq').reduce((n, s) => n + s.rowsOut, 0);
  }

  /** The progress callback of the step environment: updates land on the step running now. */
  readonly progress: StepEnv['progress'] = (update) => {
    const text = update.message ?? (update.rows !== undefined ? `${update.rows.toLocaleString('en-US')} rows` : undefined);
    if (text) this.#observer.stepProgress?.(this.#current, text);
  };

  /** A step not run because the run stopped or failed before it. */
  async skip(index: number, step: PipelineStep): Promise<void> {
    this.#current = index;
    await skipStep(this.#ctx, this.#row(index, step));
    const skipped: StepSummary = {
      index,
      name: step.name,
      type: step.type,
      status: 'SKIPPED',
      rowsIn: 0,
      rowsOut: 0,
      bytes: 0,
      durationMs: 0,
      notes: [],
    };
    this.steps.push(skipped);
    this.#observer.stepFinished?.(index, skipped);
  }

  async start(index: number, step: PipelineStep): Promise<StartedStep> {
    this.#current = index;
    this.#observer.stepStarted?.(index);
    const stepId = await startStep(this.#ctx, this.#row(index, step));
    return { index, step, stepId, began: Date.now() };
  }

  async finish(started: StartedStep, end: StepEnd): Promise<StepSummary> {
    const { index, step } = started;
    const { status, result, error } = end;
    const summary: StepSummary = {
      index,
      name: step.name,
      type: step.type,
      status,
      rowsIn: result?.rowsIn ?? 0,
      rowsOut: result?.rowsOut ?? 0,
      bytes: result?.bytes ?? 0,
      durationMs: Date.now() - started.began,
      notes: result?.notes ?? [],
      ...(error ? { error: error.message } : {}),
    };
    await finishStep(this.#ctx, started.stepId, {
      status,
      rowsIn: summary.rowsIn,
      rowsOut: summary.rowsOut,
      bytesProcessed: summary.bytes,
      ...(error ? { errorMessage: error.message } : {}),
      details: { ...(result?.details ?? {}), notes: summary.notes },
    });
    this.steps.push(summary);
    this.#observer.stepFinished?.(index, summary);
    for (const note of summary.notes) this.#ctx.warn(`${step.name}: ${note}`);
    return summary;
  }

  #row(index: number, step: PipelineStep) {
    return { ...this.#run, stepName: step.name, stepType: step.type, stepIndex: index };
  }
}
