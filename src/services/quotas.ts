import type { Row, Warehouse } from '../backends/warehouse/port.ts';
import { assertTenantId } from '../domain/ids.ts';
import { PLANS, type PlanName } from '../domain/plans.ts';
import { quotaExceededError } from '../lib/errors.ts';
import { envFlag, type ServiceContext } from './context.ts';
import { withLease } from './leases.ts';
import { requireBootstrapped } from './metadata/guard.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';
import { countLiveRuns } from './runs/store.ts';
import { requireTenant } from './tenants.ts';

/**
 * Daily run quotas (tenant_usage_quotas). A row whose usage_date is before today (UTC) is a fresh
 * day: readers treat its daily counters as zero and the next write resets them, so a missed
 * reset-daily-quotas job never blocks a tenant. Every write happens under the `quota/<tenant>`
 * lease, so two admissions cannot both take the last slot.
 */
export interface QuotaView {
  tenantId: string;
  usageDate: string;
  dailyLimit: number;
  concurrentLimit: number;
  runsToday: number;
  succeededToday: number;
  failedToday: number;
  running: number;
  remainingToday: number;
  resetsAt: Date;
  lastResetAt: Date | null;
}

export interface ResetResult {
  usageDate: string;
  count: number;
  tenants: string[];
}

interface Usage {
  usageDate: string;
  runsToday: number;
  succeededToday: number;
  failedToday: number;
  running: number;
  dailyLimit: number;
  concurrentLimit: number;
  lastResetAt: Date | null;
}

const QUOTA_LEASE = { waitMs: 15_000, ttlMs: 30_000 };

export const utcDay = (at: Date) => at.toISOString().slice(0, 10);
export const nextUtcMidnight = (at: Date) => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate() + 1));

function usageOf(row: Row, today: string): Usage {
  const fresh = String(row.usage_date) < today;
  return {
    usageDate: fresh ? today : String(row.usage_date),
    runsToday: fresh ? 0 : Number(row.pipelines_run_today),
    succeededToday: fresh ? 0 : Number(row.pipelines_succeeded_today),
    failedToday: fresh ? 0 : Number(row.pipelines_failed_today),
    running: Number(row.concurrent_pipelines_running),
    dailyLimit: Number(row.daily_limit),
    concurrentLimit: Number(row.concurrent_limit),
    lastResetAt: (row.last_reset_at as Date | null) ?? null,
  };
}

const usageRow = (u: Usage): Row => ({
  usage_date: u.usageDate,
  pipelines_run_today: u.runsToday,
  pipelines_succeeded_today: u.succeededToday,
  pipelines_failed_today: u.failedToday,
  concurrent_pipelines_running: Math.max(0, u.running),
});

/** The tenant's quota row; one missing (hand-edited metadata) is recreated from the subscription. */
async function loadUsage(ctx: ServiceContext, warehouse: Warehouse, tenantId: string): Promise<Usage> {
  const today = utcDay(ctx.now());
  const [row] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: tenantId }, limit: 1 });
  if (row) return usageOf(row, today);
  const [subscription] = await warehouse.select(METADATA_DATASET, T.subscriptions, {
    where: { tenant_id: tenantId, status: 'ACTIVE' },
    limit: 1,
  });
  const plan = PLANS[(subscription?.plan_name as PlanName) ?? 'starter'] ?? PLANS.starter;
  const now = ctx.now();
  const created: Row = {
    tenant_id: tenantId,
    usage_date: today,
    pipelines_run_today: 0,
    pipelines_succeeded_today: 0,
    pipelines_failed_today: 0,
    concurrent_pipelines_running: 0,
    daily_limit: Number(subscription?.max_pipelines_per_day ?? plan.max_pipelines_per_day),
    concurrent_limit: Number(subscription?.max_concurrent_pipelines ?? plan.max_concurrent_pipelines),
    last_reset_at: now,
    created_at: now,
    updated_at: now,
  };
  await warehouse.insert(METADATA_DATASET, T.quotas, [created]);
  ctx.warn(`tenant "${tenantId}" had no quota row; created one from its subscription`);
  return usageOf(created, today);
}

async function saveUsage(ctx: ServiceContext, warehouse: Warehouse, tenantId: string, usage: Usage, extra: Row = {}): Promise<void> {
  await warehouse.update(METADATA_DATASET, T.quotas, { ...usageRow(usage), ...extra, updated_at: ctx.now() }, { tenant_id: tenantId });
}

function withQuotaLease<R>(ctx: ServiceContext, tenantId: string, work: () => Promise<R>): Promise<R> {
  return withLease(ctx, `quota/${tenantId}`, { ...QUOTA_LEASE, what: `the quota of tenant "${tenantId}"` }, work);
}

/**
 * Runs in flight: the live run records, or the counter when it is higher — the counter also
 * holds admissions whose run record is not written yet.
 */
const inFlight = (usage: Usage, liveRuns: number) => Math.max(usage.running, liveRuns);

export async function showQuota(ctx: ServiceContext, tenantId: string): Promise<QuotaView> {
  await requireTenant(ctx, tenantId);
  return readQuota(ctx, tenantId);
}

/** showQuota of a tenant the caller has already found. */
export async function readQuota(ctx: ServiceContext, tenantId: string): Promise<QuotaView> {
  const warehouse = await ctx.backends.warehouse();
  const [row] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: tenantId }, limit: 1 });
  const usage = row ? usageOf(row, utcDay(ctx.now())) : await withQuotaLease(ctx, tenantId, () => loadUsage(ctx, warehouse, tenantId));
  return {
    tenantId,
    usageDate: usage.usageDate,
    dailyLimit: usage.dailyLimit,
    concurrentLimit: usage.concurrentLimit,
    runsToday: usage.runsToday,
    succeededToday: usage.succeededToday,
    failedToday: usage.failedToday,
    running: inFlight(usage, await countLiveRuns(ctx, tenantId)),
    remainingToday: Math.max(0, usage.dailyLimit - usage.runsToday),
    resetsAt: nextUtcMidnight(ctx.now()),
    lastResetAt: usage.lastResetAt,
  };
}

/**
 * The reset-daily-quotas job: zeroes the daily counters of one tenant or of all, dates them
 * today, and recounts the runs in flight from the run records (which also repairs a counter
 * left high by a crashed run).
 */
export async function resetQuotas(ctx: ServiceContext, options: { tenantId?: string } = {}): Promise<ResetResult> {
  const warehouse = await ctx.backends.warehouse();
  let tenants: string[];
  if (options.tenantId !== undefined) {
    await requireTenant(ctx, options.tenantId);
    tenants = [options.tenantId];
  } else {
    await requireBootstrapped(warehouse, ctx.env.name);
    const rows = await warehouse.select(METADATA_DATASET, T.quotas, { columns: ['tenant_id'], orderBy: [['tenant_id', 'asc']] });
    tenants = rows.map((r) => String(r.tenant_id));
  }
  const today = utcDay(ctx.now());
  for (const tenantId of tenants) {
    await withQuotaLease(ctx, tenantId, async () => {
      const usage = await loadUsage(ctx, warehouse, tenantId);
      const running = await countLiveRuns(ctx, tenantId);
      await saveUsage(
        ctx,
        warehouse,
        tenantId,
        { ...usage, usageDate: today, runsToday: 0, succeededToday: 0, failedToday: 0, running },
        { last_reset_at: ctx.now() },
      );
    });
  }
  return { usageDate: today, count: tenants.length, tenants };
}

/** Exit 6: the tenant ran all of today's runs; data.resetsAt feeds Retry-After. */
function dailyLimitError(
  ctx: ServiceContext,
  tenantId: string,
  usage: { dailyLimit: number; runsToday: number; usageDate: string; resetsAt: Date },
) {
  return quotaExceededError(
    `tenant "${tenantId}" reached its daily limit of ${usage.dailyLimit} pipeline runs (${usage.runsToday} run on ${usage.usageDate}); the quota resets at ${usage.resetsAt.toISOString()}`,
    {
      suggestion: `wait for the reset, or reset it now with \`convergence quota reset --tenant ${tenantId}${envFlag(ctx.env.name)} --yes\``,
      data: { limit: 'daily', dailyLimit: usage.dailyLimit, runsToday: usage.runsToday, resetsAt: usage.resetsAt.toISOString() },
    },
  );
}

/** Exit 6: every concurrent run slot of the tenant is taken. */
function concurrentLimitError(ctx: ServiceContext, tenantId: string, usage: { running: number; concurrentLimit: number }) {
  return quotaExceededError(
    `tenant "${tenantId}" already has ${usage.running} pipeline run(s) in progress; its concurrent limit is ${usage.concurrentLimit}`,
    {
      suggestion: `wait for a run to end (\`convergence pipeline runs --tenant ${tenantId} --status RUNNING${envFlag(ctx.env.name)}\`); stuck runs are cleared by \`convergence maintenance cleanup-orphans${envFlag(ctx.env.name)}\``,
      data: { limit: 'concurrent', concurrentLimit: usage.concurrentLimit, running: usage.running },
    },
  );
}

/**
 * The one quota rule of admission, for the run taking its slot and for a remote start looking
 * ahead: exit 6 when today's runs are used up, or every concurrent slot is taken.
 */
export function assertRunSlot(
  ctx: ServiceContext,
  tenantId: string,
  usage: { dailyLimit: number; runsToday: number; usageDate: string; resetsAt: Date; running: number; concurrentLimit: number },
): void {
  if (usage.runsToday >= usage.dailyLimit) throw dailyLimitError(ctx, tenantId, usage);
  if (usage.running >= usage.concurrentLimit) throw concurrentLimitError(ctx, tenantId, usage);
}

/**
 * Takes one run slot of today's quota for `runId`, or fails with exit 6 naming the limit. Lazily
 * starts a fresh day when the row is from an earlier date.
 */
export async function reserveRun(ctx: ServiceContext, tenantId: string, runId: string): Promise<void> {
  assertTenantId(tenantId);
  const warehouse = await ctx.backends.warehouse();
  await withQuotaLease(ctx, tenantId, async () => {
    const usage = await loadUsage(ctx, warehouse, tenantId);
    const running = inFlight(usage, await countLiveRuns(ctx, tenantId, { excludeRunId: runId }));
    assertRunSlot(ctx, tenantId, { ...usage, running, resetsAt: nextUtcMidnight(ctx.now()) });
    await saveUsage(ctx, warehouse, tenantId, { ...usage, runsToday: usage.runsToday + 1, running: running + 1 });
  });
}

/** Gives a run slot back and counts the outcome against today (the day the run ended). */
export async function settleRun(ctx: ServiceContext, tenantId: string, outcome: 'succeeded' | 'failed'): Promise<void> {
  const warehouse = await ctx.backends.warehouse();
  await withQuotaLease(ctx, tenantId, async () => {
    const usage = await loadUsage(ctx, warehouse, tenantId);
    await saveUsage(ctx, warehouse, tenantId, {
      ...usage,
      running: usage.running - 1,
      succeededToday: usage.succeededToday + (outcome === 'succeeded' ? 1 : 0),
      failedToday: usage.failedToday + (outcome === 'failed' ? 1 : 0),
    });
  });
}

/** Sets the in-flight counter to the live run records (cleanup-orphans); returns [before, after]. */
export async function recountRunning(ctx: ServiceContext, tenantId: string): Promise<[number, number]> {
  const warehouse = await ctx.backends.warehouse();
  return withQuotaLease(ctx, tenantId, async () => {
    const usage = await loadUsage(ctx, warehouse, tenantId);
    const running = await countLiveRuns(ctx, tenantId);
    if (running !== usage.running) await saveUsage(ctx, warehouse, tenantId, { ...usage, running });
    return [usage.running, running];
  });
}
