import { setTimeout as sleep } from 'node:timers/promises';
import { cloudEnv } from '../../backends/factory.ts';
import { calendarDays } from '../../domain/date-range.ts';
import type { RunState } from '../../domain/states.ts';
import { ConvergenceError, ExitCode, isConvergenceError, usageError, type ExitCodeValue } from '../../lib/errors.ts';
import { envFlag, type ServiceContext } from '../context.ts';
import { findRunsByRunDate, type RunRecord } from '../runs/store.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle, type PipelineBundle } from './bundle.ts';
import { loadActiveBundle } from './push.ts';
import { startRemoteRun } from './remote.ts';
import { assertRunParams } from './run-request.ts';
import { runPipeline } from './run.ts';

/**
 * `pipeline backfill`: one run per run date, oldest first, each through the path a single
 * `pipeline run --run-date` takes (local engine, or the pushed config on Cloud Run Jobs). Dates
 * whose latest run completed are skipped unless forced, so a backfill stopped half way is resumed
 * by calling it again.
 *
 * The dates run one after another: every run of a pipeline takes the pipeline's run lock
 * (run/<tenant>/<pipeline>), locally and in a Cloud Run container alike, and incremental cursors
 * and merge destinations assume one run at a time; a second date started beside the first would
 * only be refused with exit 5. --concurrency above 1 is therefore refused up front.
 */

/** A longer range needs the caller's confirmation (--yes). */
export const CONFIRM_ABOVE_DATES = 366;
/** Ten years of days: anything longer is a typo. */
const MAX_BACKFILL_DATES = 3660;
const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;
const DEFAULT_LOCK_RETRY_MS = 5_000;
const RESUME = 'after fixing the cause, run the same backfill again: dates already COMPLETE are skipped';

export interface BackfillInput {
  tenantId: string;
  pipelineId: string;
  from: string;
  to: string;
  params?: Record<string, string>;
  fullRefresh?: boolean;
  /** Run dates whose latest run completed as well. */
  force?: boolean;
  /** The pushed config on the environment's Cloud Run job, each date followed to its end. */
  remote?: boolean;
  concurrency?: number;
  /** How long a date waits for the pipeline's lock while another run holds it, before the backfill stops (exit 5). */
  lockWaitMs?: number;
  /** Pause between two looks at a held lock. */
  lockRetryMs?: number;
  /** How often a remote date looks at its execution. */
  remotePollMs?: number;
  /** Aborting it cancels the date running (it ends CANCELLED) and runs no further date. */
  signal?: AbortSignal;
}

interface BackfillPlanDate {
  runDate: string;
  action: 'run' | 'skip';
  /** The latest run of the date, if any: the COMPLETE one a skipped date keeps. */
  latestRun: { runId: string; status: RunState } | null;
}

export interface BackfillPlan {
  tenantId: string;
  pipelineId: string;
  from: string;
  to: string;
  mode: 'local' | 'remote';
  force: boolean;
  dates: BackfillPlanDate[];
}

/** NOT_RUN: never started because the backfill stopped first (a refusal, Ctrl-C). */
type BackfillDateStatus = Exclude<RunState, 'PENDING' | 'RUNNING'> | 'SKIPPED' | 'REFUSED' | 'NOT_RUN';

export interface BackfillDate {
  runDate: string;
  status: BackfillDateStatus;
  runId: string | null;
  rowsProcessed: number | null;
  durationMs: number | null;
  exitCode: number | null;
  error: string | null;
}

export interface BackfillResult {
  tenantId: string;
  pipelineId: string;
  from: string;
  to: string;
  mode: 'local' | 'remote';
  dates: BackfillDate[];
  counts: { complete: number; failed: number; skipped: number; notRun: number };
  /** 0 when no date failed; see backfillExitCode. */
  exitCode: number;
  /** The refusal that stopped the backfill before its last date (quota used up, lock held too long). */
  stoppedBy: { code: string; message: string; suggestion?: string } | null;
}

/** Live events for a renderer, by index into the plan's dates. */
export interface BackfillObserver {
  dateStarted?(index: number): void;
  dateProgress?(index: number, text: string): void;
  dateFinished?(index: number, date: BackfillDate): void;
}

/**
 * The dates of the range and what a backfill would do with each, read in one metadata query, and
 * the checks a run would refuse on before its first date (tenant, pipeline, parameters). Writes nothing.
 */
export async function planBackfill(ctx: ServiceContext, input: BackfillInput): Promise<BackfillPlan> {
  assertSequential(input.concurrency);
  const days = calendarDays({ from: input.from, to: input.to, maxDays: MAX_BACKFILL_DATES });
  const today = ctx.now().toISOString().slice(0, 10);
  if (input.to > today) {
    throw usageError(`--to ${input.to} is after today (${today}, UTC); a backfill runs dates that have begun`, {
      suggestion: `end the range at --to ${today} at the latest`,
    });
  }
  if (input.remote) assertCloudEnv(ctx);
  await requireTenant(ctx, input.tenantId);
  assertRunParams(await backfillBundle(ctx, input), input.params ?? {});
  const history = await findRunsByRunDate(ctx, { tenantId: input.tenantId, pipelineId: input.pipelineId, from: input.from, to: input.to });
  const latest = latestByRunDate(history);
  return {
    tenantId: input.tenantId,
    pipelineId: input.pipelineId,
    from: input.from,
    to: input.to,
    mode: input.remote ? 'remote' : 'local',
    force: Boolean(input.force),
    dates: days.map((runDate) => {
      const run = latest.get(runDate);
      return {
        runDate,
        action: run?.status === 'COMPLETE' && !input.force ? 'skip' : 'run',
        latestRun: run ? { runId: run.runId, status: run.status } : null,
      };
    }),
  };
}

/** Runs the plan's dates in order; the result tells every date's outcome, failures included. */
export async function runBackfill(
  ctx: ServiceContext,
  input: BackfillInput,
  plan: BackfillPlan,
  observer: BackfillObserver = {},
): Promise<BackfillResult> {
  // Read once: every date runs the same configuration.
  const bundle = input.remote ? undefined : await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId);
  const dates: BackfillDate[] = [];
  let stoppedBy: BackfillResult['stoppedBy'] = null;
  for (const [index, planned] of plan.dates.entries()) {
    const untouched = { runDate: planned.runDate, runId: null, rowsProcessed: null, durationMs: null, exitCode: null, error: null };
    let date: BackfillDate;
    if (planned.action === 'skip') {
      date = { ...untouched, status: 'SKIPPED', runId: planned.latestRun?.runId ?? null };
    } else if (stoppedBy || input.signal?.aborted) {
      stoppedBy ??= { code: 'INTERRUPTED', message: 'interrupted', suggestion: RESUME };
      date = { ...untouched, status: 'NOT_RUN' };
    } else {
      observer.dateStarted?.(index);
      const progress = (text: string) => observer.dateProgress?.(index, text);
      try {
        date = await runDateWaitingForLock(ctx, { ...input, runDate: planned.runDate, bundle }, progress);
      } catch (err) {
        const refusal = asRefusal(err);
        stoppedBy = refusal;
        date = { ...untouched, status: 'REFUSED', exitCode: exitCodeOf(err), error: refusal.message };
      }
    }
    dates.push(date);
    observer.dateFinished?.(index, date);
  }
  return {
    tenantId: plan.tenantId,
    pipelineId: plan.pipelineId,
    from: plan.from,
    to: plan.to,
    mode: plan.mode,
    dates,
    counts: {
      complete: dates.filter((d) => d.status === 'COMPLETE').length,
      failed: dates.filter((d) => isFailedDate(d)).length,
      skipped: dates.filter((d) => d.status === 'SKIPPED').length,
      notRun: dates.filter((d) => d.status === 'NOT_RUN').length,
    },
    exitCode: backfillExitCode(dates),
    stoppedBy,
  };
}

/**
 * The exit code of a backfill: 0 when no date failed; the refusal's code when one stopped it
 * (6 quota, 5 lock); else the failed runs' own code when they all failed the same way (4 when
 * every failure was a data-quality rule), 3 when they differ.
 */
function backfillExitCode(dates: BackfillDate[]): number {
  const refused = dates.find((d) => d.status === 'REFUSED');
  if (refused) return refused.exitCode ?? ExitCode.pipelineFailed;
  const codes = new Set(dates.filter(isFailedDate).map((d) => d.exitCode ?? ExitCode.pipelineFailed));
  // Interrupted between two dates: nothing failed, but not every date ran.
  if (dates.some((d) => d.status === 'NOT_RUN')) codes.add(ExitCode.pipelineFailed);
  if (codes.size === 0) return ExitCode.ok;
  return codes.size === 1 ? [...codes][0]! : ExitCode.pipelineFailed;
}

/** The error a backfill with a failed or refused date ends its command with; every date rides along in its data. */
export function backfillFailure(ctx: ServiceContext, result: BackfillResult): ConvergenceError {
  const firstRun = result.dates.find((d) => isFailedDate(d) && d.runId)?.runId;
  return new ConvergenceError(result.stoppedBy?.code ?? 'BACKFILL_FAILED', result.exitCode as ExitCodeValue, failureMessage(result), {
    suggestion:
      result.stoppedBy?.suggestion ??
      (firstRun ? `see \`convergence pipeline logs ${firstRun}${envFlag(ctx.env.name)}\`; ${RESUME}` : RESUME),
    data: { backfill: result },
  });
}

/** Where and why a backfill stopped (a refusal, an interrupt), or which of its dates failed. */
function failureMessage(result: BackfillResult): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const what = `backfill of ${result.pipelineId}`;
  const { failed, notRun } = result.counts;
  const refused = result.dates.find((d) => d.status === 'REFUSED');
  if (refused) return `${what} stopped at ${refused.runDate}: ${refused.error} (${plural(notRun, 'later date')} not run)`;
  if (result.stoppedBy) {
    const next = result.dates.find((d) => d.status === 'NOT_RUN')?.runDate ?? result.to;
    const alsoFailed = failed ? `, ${plural(failed, 'date')} failed` : '';
    return `${what} stopped before ${next}: ${result.stoppedBy.message} (${plural(notRun, 'date')} not run${alsoFailed})`;
  }
  const failedDates = result.dates.filter(isFailedDate).map((d) => d.runDate);
  return `${what}: ${failed} of ${result.dates.length} dates failed (${failedDates.join(', ')})`;
}

const isFailedDate = (d: BackfillDate) => d.status === 'FAILED' || d.status === 'TIMEOUT' || d.status === 'CANCELLED';

function assertSequential(concurrency: number | undefined): void {
  if (concurrency === undefined || concurrency === 1) return;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1)
    throw usageError(`--concurrency must be a whole number of at least 1, got ${concurrency}`);
  throw usageError(
    `--concurrency ${concurrency}: the runs of one pipeline hold its run lock one at a time, here and on Cloud Run alike, so a backfill runs its dates one after another`,
    { suggestion: 'drop --concurrency; backfills of different pipelines can run side by side' },
  );
}

/** The configuration the dates will run: the workspace's, or with --remote the pushed one. */
async function backfillBundle(ctx: ServiceContext, input: BackfillInput): Promise<PipelineBundle> {
  return input.remote
    ? loadActiveBundle(ctx, input.tenantId, input.pipelineId)
    : loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId);
}

function assertCloudEnv(ctx: ServiceContext): void {
  if (!cloudEnv(ctx.env) || !ctx.backends.runPlatform) {
    throw usageError(`--remote runs on Cloud Run Jobs; "${ctx.env.name}" is a local environment`, {
      suggestion: 'pass --env <cloud environment>, or drop --remote to run here',
    });
  }
}

/** The newest run of each run date (runs come newest first). */
function latestByRunDate(runs: RunRecord[]): Map<string, RunRecord> {
  const latest = new Map<string, RunRecord>();
  for (const run of runs) if (run.runDate !== null && !latest.has(run.runDate)) latest.set(run.runDate, run);
  return latest;
}

type DateRequest = BackfillInput & { runDate: string; bundle: PipelineBundle | undefined };

/**
 * One date; while another run holds the pipeline's lock (a scheduled run, a colleague's run) the
 * date waits and tries again, up to the lock wait, instead of failing the backfill.
 */
async function runDateWaitingForLock(ctx: ServiceContext, request: DateRequest, progress: (text: string) => void): Promise<BackfillDate> {
  const giveUpAt = Date.now() + (request.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
  for (let attempt = 0; ; attempt++) {
    try {
      return await runDate(ctx, request, progress);
    } catch (err) {
      if (!isConvergenceError(err) || err.code !== 'LOCK_HELD' || Date.now() >= giveUpAt || request.signal?.aborted) throw err;
      if (attempt === 0) progress(`waiting for the lock: ${err.message}`);
      await sleep(request.lockRetryMs ?? DEFAULT_LOCK_RETRY_MS, undefined, { signal: request.signal }).catch(() => undefined);
    }
  }
}

async function runDate(ctx: ServiceContext, request: DateRequest, progress: (text: string) => void): Promise<BackfillDate> {
  const base = { tenantId: request.tenantId, pipelineId: request.pipelineId, runDate: request.runDate, params: request.params ?? {} };
  if (request.remote) {
    const result = await startRemoteRun(ctx, {
      ...base,
      fullRefresh: request.fullRefresh,
      wait: true,
      ...(request.remotePollMs !== undefined ? { pollMs: request.remotePollMs } : {}),
      onProgress: progress,
    });
    const run = result.run;
    return {
      runDate: request.runDate,
      status: run && run.status !== 'PENDING' && run.status !== 'RUNNING' ? run.status : result.exitCode === 0 ? 'COMPLETE' : 'FAILED',
      runId: result.runId,
      rowsProcessed: run?.rowsProcessed ?? null,
      durationMs: run?.durationMs ?? null,
      exitCode: result.exitCode,
      error: result.exitCode === 0 ? null : (run?.errorMessage ?? result.message),
    };
  }
  // A date's row shows which step it is in and how each ended; the steps' own progress lines
  // would repeat for every date of a long range.
  const summary = await runPipeline(
    ctx,
    {
      ...base,
      fullRefresh: request.fullRefresh,
      ...(request.bundle ? { bundle: request.bundle } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
    },
    {
      stepStarted: (i) => progress(`${request.bundle?.pipeline.steps[i]?.name ?? `step ${i + 1}`}…`),
      stepFinished: (_i, step) => progress(`${step.name} ${step.status}, ${step.rowsOut.toLocaleString('en-US')} rows`),
    },
  );
  return {
    runDate: request.runDate,
    status: summary.status === 'PENDING' || summary.status === 'RUNNING' ? 'FAILED' : summary.status,
    runId: summary.runId,
    rowsProcessed: summary.rowsProcessed,
    durationMs: summary.durationMs,
    exitCode: summary.exitCode,
    error: summary.error?.message ?? null,
  };
}

const exitCodeOf = (err: unknown) => (isConvergenceError(err) ? err.exitCode : ExitCode.unexpected);

function asRefusal(err: unknown): NonNullable<BackfillResult['stoppedBy']> {
  if (isConvergenceError(err)) return { code: err.code, message: err.message, ...(err.suggestion ? { suggestion: err.suggestion } : {}) };
  return { code: 'UNEXPECTED', message: err instanceof Error ? err.message : String(err) };
}
