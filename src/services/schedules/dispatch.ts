import { createHash, randomUUID } from 'node:crypto';
import { isConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { withLease } from '../leases.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { notifyOperatorEvent } from '../notifications/notify.ts';
import { loadActiveBundle } from '../pipelines/push.ts';
import { runPipeline, type RunSummary } from '../pipelines/run.ts';
import { nextOccurrence, toSchedule, type ScheduleRow } from './sync.ts';

export interface DispatchOptions {
  /** This task's shard: CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT. */
  taskIndex: number;
  taskCount: number;
  /** Aborting stops the current run at its next checkpoint and starts no further schedule. */
  signal?: AbortSignal;
  /** Live events for the headless log. */
  onEvent?: (event: DispatchEvent) => void;
}

type DispatchEvent =
  | { kind: 'claimed'; schedule: ScheduleRow; runId: string; nextRunAt: Date | null }
  | { kind: 'skipped'; schedule: ScheduleRow; reason: string }
  | { kind: 'finished'; schedule: ScheduleRow; outcome: ScheduleOutcome };

interface ScheduleOutcome {
  scheduleId: string;
  tenantId: string;
  pipelineId: string;
  runId: string;
  status: RunSummary['status'] | 'NOT_STARTED';
  exitCode: number;
  error?: { code: string; message: string };
}

export interface DispatchResult {
  taskIndex: number;
  taskCount: number;
  /** Due schedules seen by this task, all shards. */
  due: number;
  /** Due schedules of this task's shard. */
  assigned: number;
  /** Claimed elsewhere or no longer due when re-checked under the lease. */
  skipped: number;
  succeeded: number;
  failed: number;
  outcomes: ScheduleOutcome[];
}

/** Stable shard of a schedule: the first 32 bits of sha256(schedule_id) modulo the task count. */
export function shardOf(scheduleId: string, taskCount: number): number {
  return createHash('sha256').update(scheduleId, 'utf8').digest().readUInt32BE(0) % Math.max(1, taskCount);
}

/** Active schedules whose next_run_at has passed. */
async function dueSchedules(ctx: ServiceContext, at: Date = ctx.now()): Promise<ScheduleRow[]> {
  const warehouse = await ctx.backends.warehouse();
  const rows = await warehouse.select(METADATA_DATASET, T.schedules, {
    where: { is_active: true, next_run_at: { op: '<=', value: at } },
    orderBy: [
      ['next_run_at', 'asc'],
      ['schedule_id', 'asc'],
    ],
  });
  return rows.map(toSchedule);
}

/**
 * Claims one due schedule: under the lease `schedule/<id>`, advances next_run_at to the next
 * occurrence (in the schedule's time zone) with an update that only matches while the row is still
 * active and due, and records last_run_at / last_run_id. Exactly one of any number of overlapping
 * dispatchers gets `claimed`; the run happens after the claim, outside the lease, so a crash mid-run
 * never makes the same occurrence run twice (at most once per occurrence).
 */
async function claimSchedule(
  ctx: ServiceContext,
  schedule: ScheduleRow,
  runId: string,
): Promise<{ claimed: true; nextRunAt: Date | null } | { claimed: false; reason: string }> {
  try {
    return await withLease(
      ctx,
      `schedule/${schedule.scheduleId}`,
      { waitMs: 0, what: `schedule ${schedule.scheduleId}`, ttlMs: 60_000 },
      async () => {
        const now = ctx.now();
        const warehouse = await ctx.backends.warehouse();
        const [fresh] = await warehouse.select(METADATA_DATASET, T.schedules, { where: { schedule_id: schedule.scheduleId }, limit: 1 });
        const current = fresh ? toSchedule(fresh) : undefined;
        if (!current?.isActive || !current.nextRunAt || current.nextRunAt.getTime() > now.getTime()) {
          return { claimed: false as const, reason: 'no longer due (run by another dispatcher, or changed)' };
        }
        const nextRunAt = nextOccurrence(current.cron, current.timezone, now);
        const changed = await warehouse.update(
          METADATA_DATASET,
          T.schedules,
          { next_run_at: nextRunAt, last_run_at: now, last_run_id: runId, updated_at: now },
          { schedule_id: schedule.scheduleId, is_active: true, next_run_at: { op: '<=', value: now } },
        );
        return changed === 1 ? { claimed: true as const, nextRunAt } : { claimed: false as const, reason: 'claimed by another dispatcher' };
      },
    );
  } catch (err) {
    if (isConvergenceError(err) && err.exitCode === ExitCode.alreadyRunning)
      return { claimed: false, reason: 'being claimed by another dispatcher' };
    throw err;
  }
}

/**
 * Runs the due schedules of one shard, one after another, each with the tenant's pushed config
 * and trigger 'scheduled'. A failing schedule (nothing pushed, lock held, quota, a failed step) is
 * recorded in the result and the others still run.
 */
export async function dispatchDueSchedules(ctx: ServiceContext, options: DispatchOptions): Promise<DispatchResult> {
  const taskCount = Math.max(1, options.taskCount);
  const due = await dueSchedules(ctx);
  const mine = due.filter((s) => shardOf(s.scheduleId, taskCount) === options.taskIndex);
  const result: DispatchResult = {
    taskIndex: options.taskIndex,
    taskCount,
    due: due.length,
    assigned: mine.length,
    skipped: 0,
    succeeded: 0,
    failed: 0,
    outcomes: [],
  };
  for (const schedule of mine) {
    if (options.signal?.aborted) break;
    const runId = randomUUID();
    let outcome: ScheduleOutcome;
    try {
      const claim = await claimSchedule(ctx, schedule, runId);
      if (!claim.claimed) {
        result.skipped++;
        options.onEvent?.({ kind: 'skipped', schedule, reason: claim.reason });
        continue;
      }
      options.onEvent?.({ kind: 'claimed', schedule, runId, nextRunAt: claim.nextRunAt });
      const bundle = await loadActiveBundle(ctx, schedule.tenantId, schedule.pipelineId);
      const summary = await runPipeline(ctx, {
        tenantId: schedule.tenantId,
        pipelineId: schedule.pipelineId,
        bundle,
        trigger: 'scheduled',
        triggeredBy: `schedule:${schedule.scheduleId}`,
        runId,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      outcome = {
        scheduleId: schedule.scheduleId,
        tenantId: schedule.tenantId,
        pipelineId: schedule.pipelineId,
        runId,
        status: summary.status,
        exitCode: summary.exitCode,
        ...(summary.error ? { error: { code: summary.error.code, message: summary.error.message } } : {}),
      };
    } catch (err) {
      outcome = {
        scheduleId: schedule.scheduleId,
        tenantId: schedule.tenantId,
        pipelineId: schedule.pipelineId,
        runId,
        status: 'NOT_STARTED',
        exitCode: isConvergenceError(err) ? err.exitCode : ExitCode.unexpected,
        error: { code: isConvergenceError(err) ? err.code : 'UNEXPECTED', message: err instanceof Error ? err.message : String(err) },
      };
      notifyOperatorEvent(ctx, 'dispatch_failed', {
        summary: `Schedule ${schedule.scheduleId} of ${schedule.pipelineId} (tenant ${schedule.tenantId}) could not start its run: ${outcome.error!.message}`,
        tenant_id: schedule.tenantId,
        pipeline_id: schedule.pipelineId,
        run_id: runId,
        status: outcome.status,
        exit_code: outcome.exitCode,
        error: outcome.error!.message,
      });
    }
    if (outcome.exitCode === 0) result.succeeded++;
    else result.failed++;
    result.outcomes.push(outcome);
    options.onEvent?.({ kind: 'finished', schedule, outcome });
  }
  return result;
}
