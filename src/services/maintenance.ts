import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { UUID_PATTERN } from '../domain/ids.ts';
import { TERMINAL_RUN_STATES } from '../domain/states.ts';
import { ExitCode, validationError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';
import { recountRunning } from './quotas.ts';
import { runLockKey } from './runs/admission.ts';
import { closeOpenSteps, findLiveRuns, findRuns, finishRun, type RunRecord } from './runs/store.ts';

/**
 * The cleanup-orphaned-pipelines job (seed 000, every 30 min): runs that never recorded an end
 * — their process crashed or their container was killed — become TIMEOUT, their lock and quota
 * slot are freed, and staging folders of ended runs are removed. Safe to run any number of times.
 */
export interface CleanupOptions {
  /** Also end live runs that started longer ago than this, whatever their timeout. */
  olderThanMs?: number;
  dryRun?: boolean;
}

export interface OrphanedRun {
  runId: string;
  tenantId: string;
  pipelineId: string;
  status: string;
  startTime: Date | null;
  timeoutAt: Date | null;
  reason: string;
}

export interface CleanupResult {
  dryRun: boolean;
  /** Runs marked TIMEOUT (or that would be, with --dry-run). */
  timedOut: OrphanedRun[];
  /** Run ids whose lock was released. */
  locksReleased: string[];
  /** Tenants whose in-flight counter was corrected. */
  countersCorrected: Array<{ tenantId: string; from: number; to: number }>;
  /** Run ids whose staging folder was removed. */
  stagingRemoved: string[];
}

const stagingRoot = (ctx: ServiceContext) => path.join(ctx.env.stateDir, 'staging');

export async function cleanupOrphans(ctx: ServiceContext, options: CleanupOptions = {}): Promise<CleanupResult> {
  if (options.olderThanMs !== undefined && (!Number.isFinite(options.olderThanMs) || options.olderThanMs <= 0)) {
    throw validationError(`--older-than must be a positive duration, got ${options.olderThanMs} ms`);
  }
  const dryRun = options.dryRun ?? false;
  const now = ctx.now();
  const orphans = await findOrphans(ctx, now, options.olderThanMs);
  const result: CleanupResult = { dryRun, timedOut: [], locksReleased: [], countersCorrected: [], stagingRemoved: [] };

  const tenants = new Set<string>();
  for (const orphan of orphans) {
    if (!dryRun) {
      // Conditional on the run still being live: its process may have ended it meanwhile.
      const ended = await finishRun(ctx, orphan.runId, {
        status: 'TIMEOUT',
        exitCode: ExitCode.pipelineFailed,
        errorMessage: orphan.reason,
      });
      if (!ended) continue;
      await closeOpenSteps(ctx, orphan.runId, 'TIMEOUT', 'the run was ended by cleanup-orphans');
    }
    result.timedOut.push(orphan);
    tenants.add(orphan.tenantId);
    if (await releaseRunLock(ctx, orphan, dryRun)) result.locksReleased.push(orphan.runId);
  }
  if (!dryRun) {
    for (const tenantId of [...tenants].sort()) {
      const [from, to] = await recountRunning(ctx, tenantId);
      if (from !== to) result.countersCorrected.push({ tenantId, from, to });
    }
  }
  result.stagingRemoved = await removeEndedStaging(ctx, dryRun, new Set(result.timedOut.map((o) => o.runId)));
  return result;
}

async function findOrphans(ctx: ServiceContext, now: Date, olderThanMs: number | undefined): Promise<OrphanedRun[]> {
  const found = new Map<string, OrphanedRun>();
  const add = (run: RunRecord, reason: string) => {
    if (found.has(run.runId)) return;
    found.set(run.runId, {
      runId: run.runId,
      tenantId: run.tenantId,
      pipelineId: run.pipelineId,
      status: run.status,
      startTime: run.startTime,
      timeoutAt: run.timeoutAt,
      reason,
    });
  };
  for (const run of await findLiveRuns(ctx, { timedOutBy: now })) {
    add(run, `orphaned: still ${run.status} at its timeout (${run.timeoutAt?.toISOString()}); ended by cleanup-orphans`);
  }
  if (olderThanMs !== undefined) {
    const cutoff = new Date(now.getTime() - olderThanMs);
    for (const run of await findLiveRuns(ctx, { startedBefore: cutoff })) {
      add(run, `orphaned: still ${run.status} after starting before ${cutoff.toISOString()}; ended by cleanup-orphans`);
    }
  }
  return [...found.values()];
}

/** Frees the run's lock only while that very run holds it: a newer run of the pipeline keeps its own. */
export async function releaseRunLock(
  ctx: ServiceContext,
  orphan: Pick<OrphanedRun, 'runId' | 'tenantId' | 'pipelineId'>,
  dryRun = false,
): Promise<boolean> {
  const lock = await ctx.backends.lock();
  const key = runLockKey(orphan.tenantId, orphan.pipelineId);
  const holder = await lock.inspect(key);
  if (holder?.info?.run_id !== orphan.runId) return false;
  return dryRun ? true : lock.release({ ...holder, key });
}

/** Staging folders are named after run ids; a live run's folder is its work in progress. */
async function removeEndedStaging(ctx: ServiceContext, dryRun: boolean, endingNow: Set<string>): Promise<string[]> {
  const root = stagingRoot(ctx);
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const ids = entries.filter((e) => e.isDirectory() && UUID_PATTERN.test(e.name)).map((e) => e.name);
  const runs = await findRuns(ctx, ids);
  const removable = runs
    .filter((run) => TERMINAL_RUN_STATES.has(run.status) || (dryRun && endingNow.has(run.runId)))
    .map((run) => run.runId)
    .sort();
  if (!dryRun) for (const id of removable) await rm(path.join(root, id), { recursive: true, force: true });
  return removable;
}
