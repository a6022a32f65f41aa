import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Row } from '../../backends/warehouse/port.ts';
import { resolveRunDate } from '../../domain/dates.ts';
import type { RunState } from '../../domain/states.ts';
import { parseDuration } from '../../lib/duration.ts';
import { ConvergenceError, ExitCode, type ExitCodeValue } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { notifyRunEnd, notifyRunRefused } from '../notifications/notify.ts';
import { admitRun, type Admission } from '../runs/admission.ts';
import { asRunError, type RunOutcome } from '../runs/outcome.ts';
import { runSteps } from '../runs/run-steps.ts';
import { runStagingDir, stepEnv } from '../runs/step-env.ts';
import { StepRecorder, type StepObserver, type StepSummary } from '../runs/steps.ts';
import { createRun, finishRun, markRunning } from '../runs/store.ts';
import { RunSupervisor } from '../runs/supervisor.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle, type PipelineBundle } from './bundle.ts';
import { assertSourcePaths } from './paths.ts';
import { assertRestHosts } from './rest-hosts.ts';
import { describePlan, type RunPlan } from './plan.ts';
import { assertRunParams } from './run-request.ts';
import { assertTenantSql } from './tenant-sql.ts';

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
  /** The configuration the caller has already read (a pushed one for remote runs); by default the workspace files are read. */
  bundle?: PipelineBundle;
  /** The tenant's profile when the caller has just read it: admission then does not read it again. */
  tenantProfile?: Row;
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
export interface RunObserver extends StepObserver {
  /** The run passed admission and its row is RUNNING: callers that start runs in the background answer here. */
  runStarted?(runId: string): void;
}

/**
 * The configuration and run date of a run, read once: the caller's bundle, or the workspace's.
 * Its parameters are checked against that configuration here, so local, API, scheduled and
 * headless runs refuse the same names and sizes a remote start does (exit 2).
 */
async function prepareRun(ctx: ServiceContext, input: RunInput): Promise<{ bundle: PipelineBundle; runDate: string }> {
  const bundle = input.bundle ?? (await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId));
  assertRunParams(bundle, input.params ?? {});
  return { bundle, runDate: resolveRunDate(input.runDate, ctx.now()) };
}

/**
 * Configuration errors (exit 2) found before any lock or run row: a file path the tenant may not
 * read, a REST source at an internal address the environment does not list, tenant SQL the
 * warehouse's parser refuses (checked again when it runs).
 */
async function refuseUnsafeConfig(ctx: ServiceContext, bundle: PipelineBundle): Promise<void> {
  await assertSourcePaths(ctx, bundle);
  await assertRestHosts(ctx, bundle);
  await assertTenantSql(ctx, bundle);
}

/** Reads and checks everything, resolves what each step would do, and writes nothing. */
export async function planPipelineRun(ctx: ServiceContext, input: RunInput): Promise<RunPlan> {
  await requireTenant(ctx, input.tenantId);
  const { bundle, runDate } = await prepareRun(ctx, input);
  await refuseUnsafeConfig(ctx, bundle);
  const runId = input.runId ?? randomUUID();
  const env = await stepEnv(ctx, bundle, {
    tenantId: input.tenantId,
    pipelineId: input.pipelineId,
    params: input.params,
    fullRefresh: input.fullRefresh,
    runId,
    runDate,
    signal: new AbortController().signal,
    progress: () => undefined,
  });
  return describePlan(env, bundle, { runDate, fullRefresh: Boolean(input.fullRefresh) });
}

/**
 * Runs a pipeline to its end: admission (lock, quota, tenant state), a run row moving through
 * PENDING → RUNNING → a terminal state, one step log per step, and a supervisor stopping the run
 * at its next checkpoint (between steps, between pages and batches) on cancel, timeout or a lost
 * lock. Step failures are part of the summary, not exceptions: the caller decides how to render
 * and which exit code to use.
 */
export async function runPipeline(ctx: ServiceContext, input: RunInput, observer: RunObserver = {}): Promise<RunSummary> {
  // A remote start wrote this run's row before its container got here: a refusal ends it.
  const refuse = async (err: unknown): Promise<never> => {
    if (input.runId) await endRefusedRun(ctx, input.runId, err);
    throw err;
  };
  const { bundle, runDate } = await prepareRun(ctx, input).catch(refuse);
  await refuseUnsafeConfig(ctx, bundle).catch(refuse);
  const runId = input.runId ?? randomUUID();
  const timeoutMs = parseDuration(bundle.pipeline.timeout, 'timeout');
  const startedAt = Date.now();
  const admission = await admitRun(ctx, {
    tenantId: input.tenantId,
    pipelineId: input.pipelineId,
    runId,
    timeoutMs,
    ...(input.tenantProfile ? { profile: input.tenantProfile } : {}),
  }).catch((err: unknown) => {
    notifyRunRefused(ctx, bundle.pipeline, { tenantId: input.tenantId, pipelineId: input.pipelineId, runId }, err);
    return refuse(err);
  });

  const recorder = new StepRecorder(ctx, { runId, tenantId: input.tenantId, pipelineId: input.pipelineId }, observer);
  let supervisor: RunSupervisor | undefined;
  let outcome: RunOutcome;
  try {
    await openRunRecord(ctx, input, { runId, configVersion: bundle.version, runDate, timeoutMs });
    observer.runStarted?.(runId);
    supervisor = new RunSupervisor(ctx, { runId, timeoutMs, timeoutText: bundle.pipeline.timeout, admission, signal: input.signal });
    const env = await stepEnv(ctx, bundle, {
      tenantId: input.tenantId,
      pipelineId: input.pipelineId,
      params: input.params,
      fullRefresh: input.fullRefresh,
      runId,
      runDate,
      signal: supervisor.signal,
      progress: recorder.progress,
    });
    outcome = await runSteps(ctx, { bundle, env, supervisor, recorder });
  } catch (err) {
    outcome = { status: 'FAILED', exitCode: ExitCode.pipelineFailed, error: asRunError(err) };
  } finally {
    supervisor?.close();
  }

  await endRun(ctx, runId, { outcome, rowsProcessed: recorder.rowsProcessed, admission });
  const summary: RunSummary = {
    runId,
    tenantId: input.tenantId,
    pipelineId: input.pipelineId,
    status: outcome.status,
    exitCode: outcome.exitCode,
    runDate,
    configVersion: bundle.version,
    durationMs: Date.now() - startedAt,
    rowsProcessed: recorder.rowsProcessed,
    steps: recorder.steps,
    ...(outcome.error ? { error: summaryError(outcome.error) } : {}),
  };
  // After the run row is final: deliveries go on in the background and never change the outcome.
  notifyRunEnd(ctx, bundle.pipeline, summary);
  return summary;
}

/** The error that ended a run, as its summary carries it: code, message and advice. */
function summaryError(error: ConvergenceError): NonNullable<RunSummary['error']> {
  return { code: error.code, message: error.message, ...(error.suggestion ? { suggestion: error.suggestion } : {}) };
}

/** The run row, written PENDING (or a remote start's PENDING row continued) and moved to RUNNING. */
async function openRunRecord(
  ctx: ServiceContext,
  input: RunInput,
  run: { runId: string; configVersion: string; runDate: string; timeoutMs: number },
): Promise<void> {
  await createRun(ctx, {
    runId: run.runId,
    tenantId: input.tenantId,
    pipelineId: input.pipelineId,
    trigger: input.trigger ?? 'manual',
    ...(input.triggeredBy ? { triggeredBy: input.triggeredBy } : {}),
    configVersion: run.configVersion,
    runDate: run.runDate,
    parameters: input.params ?? {},
    timeoutAt: new Date(ctx.now().getTime() + run.timeoutMs),
    adoptPending: input.runId !== undefined,
  });
  await markRunning(ctx, run.runId);
}

/** Records the run's end, gives its quota slot and lock back, and removes its staging folder once it completed. */
async function endRun(
  ctx: ServiceContext,
  runId: string,
  end: { outcome: RunOutcome; rowsProcessed: number; admission: Admission },
): Promise<void> {
  const { outcome } = end;
  await finishRun(ctx, runId, {
    status: outcome.status,
    exitCode: outcome.exitCode,
    rowsProcessed: end.rowsProcessed,
    ...(outcome.error ? { errorMessage: outcome.error.message } : {}),
  }).catch((err: unknown) => ctx.warn(`could not record the end of run ${runId}: ${(err as Error).message}`));
  await end.admission.release(outcome.status === 'COMPLETE' ? 'succeeded' : 'failed');
  if (outcome.status === 'COMPLETE') await rm(runStagingDir(ctx, runId), { recursive: true, force: true });
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

/**
 * The error a run that did not complete ends its command or job with: the run's exit code and
 * error, and its own advice or else where to read its logs.
 */
export function runFailure(summary: RunSummary): ConvergenceError {
  const error = summary.error ?? { code: 'RUN_FAILED', message: `run ${summary.runId} ended ${summary.status}` };
  return new ConvergenceError(error.code, summary.exitCode as ExitCodeValue, `run ${summary.runId} ${summary.status}: ${error.message}`, {
    suggestion: error.suggestion ?? `see \`convergence pipeline logs ${summary.runId}\``,
    data: { run: summary },
  });
}
