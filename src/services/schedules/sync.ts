import { Cron } from 'croner';
import type { Row } from '../../backends/warehouse/port.ts';
import { validationError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { activePushedConfigs, loadActiveBundle } from '../pipelines/push.ts';
import { requireTenant } from '../tenants.ts';

export interface ScheduleRow {
  scheduleId: string;
  tenantId: string;
  pipelineId: string;
  cron: string;
  timezone: string;
  isActive: boolean;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastRunId: string | null;
}

const scheduleIdOf = (tenantId: string, pipelineId: string) => `${tenantId}.${pipelineId}`;

export function toSchedule(row: Row): ScheduleRow {
  const date = (v: unknown) => (v instanceof Date ? v : v === null || v === undefined ? null : new Date(String(v)));
  return {
    scheduleId: String(row['schedule_id']),
    tenantId: String(row['tenant_id']),
    pipelineId: String(row['pipeline_id']),
    cron: String(row['cron_expression']),
    timezone: String(row['timezone']),
    isActive: row['is_active'] === true,
    nextRunAt: date(row['next_run_at']),
    lastRunAt: date(row['last_run_at']),
    lastRunId: row['last_run_id'] === null || row['last_run_id'] === undefined ? null : String(row['last_run_id']),
  };
}

/** The first occurrence of `cron` strictly after `after`, evaluated in `timezone` (an IANA name). */
export function nextOccurrence(cron: string, timezone: string, after: Date): Date | null {
  let job: Cron;
  try {
    job = new Cron(cron, { timezone, paused: true });
  } catch (err) {
    throw validationError(`schedule ${JSON.stringify(cron)} (${timezone}) is not a valid cron expression: ${(err as Error).message}`, {
      suggestion: "use five fields, e.g. '0 6 * * *', and an IANA time zone such as Europe/Berlin",
    });
  }
  return job.nextRun(after);
}

export interface SyncedSchedule {
  scheduleId: string;
  pipelineId: string;
  cron: string | null;
  timezone: string | null;
  nextRunAt: Date | null;
  action: 'created' | 'updated' | 'unchanged' | 'deactivated';
}

/**
 * Makes tenant_scheduled_pipeline_runs match the `schedule:` key of the tenant's pushed (active)
 * pipelines: new schedules are created with their next occurrence, changed ones are updated,
 * schedules of pipelines that no longer have one are deactivated. Run it again: nothing changes.
 */
export async function syncSchedules(ctx: ServiceContext, tenantId: string): Promise<SyncedSchedule[]> {
  await requireTenant(ctx, tenantId);
  const warehouse = await ctx.backends.warehouse();
  const pushed = await activePushedConfigs(ctx, tenantId);
  const existing = new Map(
    (await warehouse.select(METADATA_DATASET, T.schedules, { where: { tenant_id: tenantId } })).map((r) => [
      String(r['pipeline_id']),
      toSchedule(r),
    ]),
  );
  const now = ctx.now();
  const out: SyncedSchedule[] = [];
  for (const pipelineId of [...pushed.keys()].sort()) {
    const bundle = await loadActiveBundle(ctx, tenantId, pipelineId);
    const schedule = bundle.pipeline.schedule;
    const row = existing.get(pipelineId);
    existing.delete(pipelineId);
    if (!schedule) {
      if (row?.isActive) {
        await warehouse.update(METADATA_DATASET, T.schedules, { is_active: false, updated_at: now }, { schedule_id: row.scheduleId });
        out.push({ scheduleId: row.scheduleId, pipelineId, cron: null, timezone: null, nextRunAt: null, action: 'deactivated' });
      }
      continue;
    }
    const timezone = schedule.timezone ?? 'UTC';
    if (row && row.isActive && row.cron === schedule.cron && row.timezone === timezone) {
      out.push({ scheduleId: row.scheduleId, pipelineId, cron: row.cron, timezone, nextRunAt: row.nextRunAt, action: 'unchanged' });
      continue;
    }
    const nextRunAt = nextOccurrence(schedule.cron, timezone, now);
    if (row) {
      await warehouse.update(
        METADATA_DATASET,
        T.schedules,
        { cron_expression: schedule.cron, timezone, is_active: true, next_run_at: nextRunAt, updated_at: now },
        { schedule_id: row.scheduleId },
      );
      out.push({ scheduleId: row.scheduleId, pipelineId, cron: schedule.cron, timezone, nextRunAt, action: 'updated' });
    } else {
      const scheduleId = scheduleIdOf(tenantId, pipelineId);
      await warehouse.insert(METADATA_DATASET, T.schedules, [
        {
          schedule_id: scheduleId,
          tenant_id: tenantId,
          pipeline_id: pipelineId,
          cron_expression: schedule.cron,
          timezone,
          is_active: true,
          next_run_at: nextRunAt,
          last_run_at: null,
          last_run_id: null,
          created_at: now,
          updated_at: now,
        },
      ]);
      out.push({ scheduleId, pipelineId, cron: schedule.cron, timezone, nextRunAt, action: 'created' });
    }
  }
  // Schedules of pipelines that are no longer pushed.
  for (const row of existing.values()) {
    if (!row.isActive) continue;
    await warehouse.update(METADATA_DATASET, T.schedules, { is_active: false, updated_at: now }, { schedule_id: row.scheduleId });
    out.push({
      scheduleId: row.scheduleId,
      pipelineId: row.pipelineId,
      cron: null,
      timezone: null,
      nextRunAt: null,
      action: 'deactivated',
    });
  }
  return out;
}
