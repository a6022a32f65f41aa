import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { PipelineStep } from '../../domain/pipeline.ts';
import { isCalendarDate } from '../../domain/dates.ts';
import type { RunState, StepState } from '../../domain/states.ts';
import type { StepEnv, StepOutcome } from '../../engine/steps/types.ts';
import { parseDuration } from '../../lib/duration.ts';
import { ConvergenceError, ExitCode, isConvergenceError, usageError, validationError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { admitRun } from '../runs/admission.ts';
import { recordDqResults } from '../runs/dq-results.ts';
import { createRun, finishRun, finishStep, isCancelRequested, markRunning, skipStep, startStep } from '../runs/store.ts';
import { resolveSecret } from '../credentials.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle, type PipelineBundle } from './bundle.ts';
import { assertSourcePaths, fileScope } from './paths.ts';
import { assertTenantSql } from './tenant-sql.ts';
import { describePlan, type RunPlan } from './plan.ts';

export interface RunInput {
  tenantId: string;
  pipelineId: string;
  /** --param k=v; override the pipeline's `params` defaults. */
  params?: Record<string, string>;
  /** YYYY-MM-DD; today (UTC) by default. */
  runDate?: string;
  fullRefresh?: boolean;
  trigger?: 'manual' | 'scheduled' | 'api' | 'remote';
  triggeredBy?: string;
  /** Aborting it (Ctrl-C, SIGTERM) stops the run at its next checkpoint as CANCELLED. */
  signal?: AbortSignal;
  runId?: string;
  /** A pushed config to run (remote runs); by default the workspace files are read. */
  bundle?: PipelineBundle;
}

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

export interface RunSummary {
  runId: string;
  tenantId: string;
  pipelineId: string;
  status: RunState;
  exitCode: number;
  runDate: string;
  configVersion: string;
  durationMs: number;
  rowsProcessed: number;
  steps: StepSummary[];
  error?: { code: string; message: string; suggestion?: string };
}

/** Live events for a renderer; the run never depends on them. */
export interface RunObserver {
  /** The run passed admission and its row is RUNNING: callers that start runs in the background answer here. */
  runStarted?(runId: string): void;
  stepStarted?(index: number): void;
  stepProgress?(index: number, text: string): void;
  stepFinished?(index: number, step: StepSummary): void;
}

const CANCEL_POLL_MS = 1_000;

function runVariables(
  ctx: ServiceContext,
  bundle: PipelineBundle,
  input: RunInput,
  runId: string,
  runDate: string,
): Record<string, string> {
  return {
    ...(bundle.pipeline.params ?? {}),
    ...(input.params ?? {}),
    run_date: runDate,
    run_id: runId,
    tenant_id: input.tenantId,
    pipeline_id: input.pipelineId,
    env: ctx.env.name,
  };
}

function resolveRunDate(ctx: ServiceContext, value: string | undefined): string {
  if (value === undefined) return ctx.now().toISOString().slice(0, 10);
  if (!isCalendarDate(value)) {
    throw usageError(`run date ${JSON.stringify(value)} is not a calendar date`, {
      suggestion: 'give a real day as YYYY-MM-DD, e.g. 2025-01-31',
    });
  }
  return value;
}

/**
 * Configuration errors (exit 2) found before any lock or run row: a file path the tenant may not
 * read, tenant SQL the warehouse's parser refuses (checked again when it runs).
 */
async function refuseUnsafeConfig(ctx: ServiceContext, bundle: PipelineBundle): Promise<void> {
  await assertSourcePaths(ctx, bundle);
  await assertTenantSql(ctx, bundle);
}

/** Reads and checks everything, resolves what each step would do, and writes nothing. */
export async function planPipelineRun(ctx: ServiceContext, input: RunInput): Promise<RunPlan> {
  await requireTenant(ctx, input.tenantId);
  const bundle = await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId);
  const runDate = resolveRunDate(ctx, input.runDate);
  await refuseUnsafeConfig(ctx, bundle);
  const runId = input.runId ?? randomUUID();
  const env = await stepEnv(ctx, bundle, input, runId, runDate, new AbortController().signal, () => undefined);
  return describePlan(env, bundle, { runDate, fullRefresh: Boolean(input.fullRefresh) });
}

async function stepEnv(
  ctx: ServiceContext,
  bundle: PipelineBundle,
  input: RunInput,
  runId: string,
  runDate: string,
  signal: AbortSignal,
  progress: StepEnv['progress'],
): Promise<StepEnv> {
  const tenantId = input.tenantId;
  // The tenant's own identity where the environment configures one (tenant_service_account).
  const warehouse = await ctx.backends.tenantWarehouse(tenantId);
  return {
    // Every job of the run is labelled with it, where the warehouse keeps job labels (BigQuery).
    warehouse: warehouse.withLabels?.({ tenant_id: tenantId, pipeline_id: input.pipelineId, run_id: runId }) ?? warehouse,
    tenantId,
    dataset: tenantId,
    pipelineId: input.pipelineId,
    runId,
    variables: runVariables(ctx, bundle, input, runId, runDate),
    fileScope: fileScope(ctx, tenantId),
    stagingDir: path.join(ctx.env.stateDir, 'staging', runId),
    fullRefresh: Boolean(input.fullRefresh),
    signal,
    progress,
    now: () => ctx.now(),
    warn: (m) => ctx.warn(m),
    source: (relative) => bundle.sources.get(relative)!,
    schema: (relative) => (relative ? bundle.schemas.get(relative) : undefined),
    sql: (relative) => bundle.sql.get(relative)!,
    secret: async (name) => {
      const value = await resolveSecret(ctx, tenantId, name);
      if (value === undefined) {
        throw validationError(`secret "${name}" of tenant ${tenantId} not found`, {
          suggestion: `put it in configs/${tenantId}/secrets/${name}.txt (mode 0600) or run \`convergence tenant credentials set ${tenantId} ${name}\``,
        });
      }
      return value;
    },
  };
}

async function executeStep(env: StepEnv, step: PipelineStep): Promise<StepOutcome> {
  if (step.type === 'ingest') return (await import('../../engine/steps/ingest.ts')).runIngest(env, step);
  if (step.type === 'dq') return (await import('../../engine/steps/dq.ts')).runDq(env, step);
  return (await import('../../engine/steps/transform.ts')).runTransform(env, step);
}

/** Why a run stopped early, carried as the abort reason. */
type StopReason = { status: 'CANCELLED' | 'TIMEOUT' | 'FAILED'; message: string };

function stopError(reason: StopReason): ConvergenceError {
  const code = reason.status === 'CANCELLED' ? 'RUN_CANCELLED' : reason.status === 'TIMEOUT' ? 'RUN_TIMEOUT' : 'LOCK_LOST';
  return new ConvergenceError(code, ExitCode.pipelineFailed, reason.message);
}

/**
 * Runs a pipeline to its end: admission (lock, quota, tenant state), a run row moving through
 * PENDING → RUNNING → a terminal state, one step log per step, and cancellation checked at every
 * checkpoint (between steps, between pages and batches). Step failures are part of the summary,
 * not exceptions: the caller decides how to render and which exit code to use.
 */
export async function runPipeline(ctx: ServiceContext, input: RunInput, observer: RunObserver = {}): Promise<RunSummary> {
  const bundle = input.bundle ?? (await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId));
  const runDate = resolveRunDate(ctx, input.runDate);
  await refuseUnsafeConfig(ctx, bundle).catch(async (err: unknown) => {
    // A remote start wrote this run's row before its container got here: end it with the refusal.
    if (input.runId) await endRefusedRun(ctx, input.runId, err);
    throw err;
  });
  const runId = input.runId ?? randomUUID();
  const timeoutMs = parseDuration(bundle.pipeline.timeout, 'timeout');
  const startedAt = Date.now();

  const admission = await admitRun(ctx, { tenantId: input.tenantId, pipelineId: input.pipelineId, runId, timeoutMs }).catch(
    async (err: unknown) => {
      // A remote start wrote this run's row before its container got here: end it with the refusal.
      if (input.runId) await endRefusedRun(ctx, input.runId, err);
      throw err;
    },
  );
  const stop = new AbortController();
  const abort = (reason: StopReason) => {
    if (!stop.signal.aborted) stop.abort(reason);
  };
  const timers: NodeJS.Timeout[] = [];
  const steps: StepSummary[] = [];
  let outcome: { status: Exclude<RunState, 'PENDING' | 'RUNNING'>; exitCode: number; error?: ConvergenceError } = {
    status: 'COMPLETE',
    exitCode: 0,
  };
  try {
    await createRun(ctx, {
      runId,
      tenantId: input.tenantId,
      pipelineId: input.pipelineId,
      trigger: input.trigger ?? 'manual',
      ...(input.triggeredBy ? { triggeredBy: input.triggeredBy } : {}),
      configVersion: bundle.version,
      runDate,
      parameters: input.params ?? {},
      timeoutAt: new Date(ctx.now().getTime() + timeoutMs),
      adoptPending: input.runId !== undefined,
    });
    await markRunning(ctx, runId);
    observer.runStarted?.(runId);

    const onUserAbort = () => abort({ status: 'CANCELLED', message: 'the run was interrupted' });
    if (input.signal?.aborted) onUserAbort();
    input.signal?.addEventListener('abort', onUserAbort, { once: true });
    timers.push(
      setTimeout(() => abort({ status: 'TIMEOUT', message: `the run exceeded its timeout of ${bundle.pipeline.timeout}` }), timeoutMs),
    );
    timers.push(
      setInterval(() => {
        void (async () => {
          try {
            if (await isCancelRequested(ctx, runId)) abort({ status: 'CANCELLED', message: 'the run was cancelled (pipeline cancel)' });
            await admission.checkpoint();
          } catch (err) {
            abort({ status: 'FAILED', message: `the run lost its lock: ${(err as Error).message}` });
          }
        })();
      }, CANCEL_POLL_MS),
    );
    for (const t of timers) t.unref();

    let current = 0;
    const env = await stepEnv(ctx, bundle, input, runId, runDate, stop.signal, (update) => {
      const text = update.message ?? (update.rows !== undefined ? `${update.rows.toLocaleString('en-US')} rows` : undefined);
      if (text) observer.stepProgress?.(current, text);
    });

    let failed = false;
    for (const [index, step] of bundle.pipeline.steps.entries()) {
      current = index;
      const base = {
        runId,
        tenantId: input.tenantId,
        pipelineId: input.pipelineId,
        stepName: step.name,
        stepType: step.type,
        stepIndex: index,
      };
      if (failed || stop.signal.aborted) {
        if (!failed) {
          // Stopped between steps: what ran stays committed, the rest is skipped.
          failed = true;
          const reason = stop.signal.reason as StopReason;
          outcome = { status: reason.status, exitCode: ExitCode.pipelineFailed, error: stopError(reason) };
        }
        await skipStep(ctx, base);
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
        steps.push(skipped);
        observer.stepFinished?.(index, skipped);
        continue;
      }
      observer.stepStarted?.(index);
      const stepId = await startStep(ctx, base);
      const began = Date.now();
      let result: StepOutcome | undefined;
      let error: ConvergenceError | undefined;
      try {
        result = await executeStep({ ...env, stagingDir: path.join(env.stagingDir, step.name) }, step);
        if (result.dq && step.type === 'dq') {
          await recordDqResults(ctx, result.dq, {
            runId,
            tenantId: input.tenantId,
            pipelineId: input.pipelineId,
            stepName: step.name,
            tableName: step.table,
            checkedAt: ctx.now(),
          });
        }
        error = result.failure;
      } catch (err) {
        error = stop.signal.aborted ? stopError(stop.signal.reason as StopReason) : asRunError(err);
      }
      const status: StepState = !error ? 'COMPLETE' : stop.signal.aborted ? (stop.signal.reason as StopReason).status : 'FAILED';
      const summary: StepSummary = {
        index,
        name: step.name,
        type: step.type,
        status,
        rowsIn: result?.rowsIn ?? 0,
        rowsOut: result?.rowsOut ?? 0,
        bytes: result?.bytes ?? 0,
        durationMs: Date.now() - began,
        notes: result?.notes ?? [],
        ...(error ? { error: error.message } : {}),
      };
      await finishStep(ctx, stepId, {
        status,
        rowsIn: summary.rowsIn,
        rowsOut: summary.rowsOut,
        bytesProcessed: summary.bytes,
        ...(error ? { errorMessage: error.message } : {}),
        details: { ...(result?.details ?? {}), notes: summary.notes },
      });
      steps.push(summary);
      observer.stepFinished?.(index, summary);
      for (const note of summary.notes) ctx.warn(`${step.name}: ${note}`);
      if (error && (stop.signal.aborted || step.on_failure === 'stop')) {
        failed = true;
        outcome = stop.signal.aborted
          ? { status: (stop.signal.reason as StopReason).status, exitCode: ExitCode.pipelineFailed, error }
          : {
              status: 'FAILED',
              exitCode: error.exitCode === ExitCode.dataQualityFailed ? ExitCode.dataQualityFailed : ExitCode.pipelineFailed,
              error,
            };
      } else if (error) {
        ctx.warn(`step ${step.name} failed and the pipeline continued (on_failure: continue): ${error.message}`);
      }
    }
  } catch (err) {
    outcome = { status: 'FAILED', exitCode: ExitCode.pipelineFailed, error: asRunError(err) };
  } finally {
    for (const t of timers) clearInterval(t);
  }

  const rowsProcessed = steps.filter((s) => s.type !== 'dq').reduce((n, s) => n + s.rowsOut, 0);
  await finishRun(ctx, runId, {
    status: outcome.status,
    exitCode: outcome.exitCode,
    rowsProcessed,
    ...(outcome.error ? { errorMessage: outcome.error.message } : {}),
  }).catch((err: unknown) => ctx.warn(`could not record the end of run ${runId}: ${(err as Error).message}`));
  await admission.release(outcome.status === 'COMPLETE' ? 'succeeded' : 'failed');
  if (outcome.status === 'COMPLETE') await rm(path.join(ctx.env.stateDir, 'staging', runId), { recursive: true, force: true });

  return {
    runId,
    tenantId: input.tenantId,
    pipelineId: input.pipelineId,
    status: outcome.status,
    exitCode: outcome.exitCode,
    runDate,
    configVersion: bundle.version,
    durationMs: Date.now() - startedAt,
    rowsProcessed,
    steps,
    ...(outcome.error
      ? {
          error: {
            code: outcome.error.code,
            message: outcome.error.message,
            ...(outcome.error.suggestion ? { suggestion: outcome.error.suggestion } : {}),
          },
        }
      : {}),
  };
}

/**
 * Ends the pre-written PENDING row of a run its admission refused. A run without a row, or one
 * already RUNNING elsewhere under the same id (a retried task), is left alone.
 */
async function endRefusedRun(ctx: ServiceContext, runId: string, err: unknown): Promise<void> {
  const refusal = asRunError(err);
  await finishRun(ctx, runId, { status: 'FAILED', exitCode: refusal.exitCode, errorMessage: refusal.message, onlyIf: ['PENDING'] }).catch(
    (finishErr: unknown) => ctx.warn(`could not record the refusal of run ${runId}: ${(finishErr as Error).message}`),
  );
}

/** Any failure inside a step, as a pipeline failure that keeps a ConvergenceError's code and advice. */
function asRunError(err: unknown): ConvergenceError {
  if (isConvergenceError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ConvergenceError('STEP_FAILED', ExitCode.pipelineFailed, message, { cause: err });
}
