import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PLANS } from '../../src/domain/plans.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { reserveRun, resetQuotas, settleRun, showQuota } from '../../src/services/quotas.ts';
import { createRun, markRunning } from '../../src/services/runs/store.ts';
import { deleteTenant } from '../../src/services/tenant-delete.ts';
import { createTenant, setTenantStatus } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { manualClock, newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const T0 = '2030-05-20T15:30:00.000Z';
const clock = manualClock(T0);
let ctx: TestContext;

async function tenant(id: string, plan = 'starter') {
  await createTenant(ctx, { tenantId: id, name: `Tenant ${id}`, plan });
}

async function quotaRow(tenantId: string) {
  const warehouse = await ctx.backends.warehouse();
  const [row] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: tenantId } });
  return row;
}

before(async () => {
  const root = await newBootstrappedWorkspace('quotas');
  ctx = await openContext(root, { clock });
});
after(async () => {
  await ctx?.close();
  await cleanupAll();
});

describe('showQuota', () => {
  it('shows the plan limits, use today, what is left and the next UTC midnight', async () => {
    clock.set(T0);
    await tenant('show_co', 'professional');
    await reserveRun(ctx, 'show_co', randomUUID());
    await reserveRun(ctx, 'show_co', randomUUID());
    await settleRun(ctx, 'show_co', 'succeeded');
    const q = await showQuota(ctx, 'show_co');
    assert.deepEqual(
      {
        usageDate: q.usageDate,
        dailyLimit: q.dailyLimit,
        concurrentLimit: q.concurrentLimit,
        runsToday: q.runsToday,
        succeededToday: q.succeededToday,
        failedToday: q.failedToday,
        running: q.running,
        remainingToday: q.remainingToday,
        resetsAt: q.resetsAt.toISOString(),
      },
      {
        usageDate: '2030-05-20',
        dailyLimit: PLANS.professional.max_pipelines_per_day,
        concurrentLimit: PLANS.professional.max_concurrent_pipelines,
        runsToday: 2,
        succeededToday: 1,
        failedToday: 0,
        running: 1,
        remainingToday: PLANS.professional.max_pipelines_per_day - 2,
        resetsAt: '2030-05-21T00:00:00.000Z',
      },
    );
  });

  it('reads an old usage_date as a fresh day without writing', async () => {
    clock.set(T0);
    await tenant('stale_co');
    await reserveRun(ctx, 'stale_co', randomUUID());
    clock.set('2030-05-21T00:00:00.000Z');
    const q = await showQuota(ctx, 'stale_co');
    assert.deepEqual([q.usageDate, q.runsToday, q.remainingToday], ['2030-05-21', 0, PLANS.starter.max_pipelines_per_day]);
    assert.equal((await quotaRow('stale_co'))?.usage_date, '2030-05-20', 'the row itself waits for the next write');
  });

  it('refuses an unknown or deleted tenant (8) and a bad id (2)', async () => {
    await rejectsWith(showQuota(ctx, 'ghost_co'), ExitCode.notFound);
    await tenant('deleted_co');
    await deleteTenant(ctx, 'deleted_co');
    await rejectsWith(showQuota(ctx, 'deleted_co'), ExitCode.notFound);
    await rejectsWith(showQuota(ctx, 'NO'), ExitCode.usage);
  });

  it('recreates a missing quota row from the subscription, with a warning', async () => {
    clock.set(T0);
    await tenant('norow_co', 'scale');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.delete(METADATA_DATASET, T.quotas, { tenant_id: 'norow_co' });
    ctx.warnings.length = 0;
    const q = await showQuota(ctx, 'norow_co');
    assert.equal(q.dailyLimit, PLANS.scale.max_pipelines_per_day);
    assert.ok(ctx.warnings.some((w) => w.includes('norow_co')));
    assert.ok(await quotaRow('norow_co'));
  });
});

describe('resetQuotas', () => {
  it('resets one tenant: daily counters zero, dated today, in-flight recounted from run records', async () => {
    clock.set(T0);
    await tenant('reset_co');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(
      METADATA_DATASET,
      T.quotas,
      {
        pipelines_run_today: 7,
        pipelines_succeeded_today: 5,
        pipelines_failed_today: 2,
        concurrent_pipelines_running: 2,
        usage_date: '2030-05-19',
      },
      { tenant_id: 'reset_co' },
    );
    const live = randomUUID();
    await createRun(ctx, {
      runId: live,
      tenantId: 'reset_co',
      pipelineId: 'p_live',
      trigger: 'scheduled',
      runDate: '2030-05-20',
      parameters: {},
      timeoutAt: new Date(Date.parse(T0) + 3_600_000),
    });
    await markRunning(ctx, live);
    clock.advance(60_000);
    const result = await resetQuotas(ctx, { tenantId: 'reset_co' });
    assert.deepEqual(result, { usageDate: '2030-05-20', count: 1, tenants: ['reset_co'] });
    const row = await quotaRow('reset_co');
    assert.deepEqual(
      [
        row?.usage_date,
        row?.pipelines_run_today,
        row?.pipelines_succeeded_today,
        row?.pipelines_failed_today,
        row?.concurrent_pipelines_running,
      ],
      ['2030-05-20', 0, 0, 0, 1],
    );
    assert.equal((row?.last_reset_at as Date).toISOString(), '2030-05-20T15:31:00.000Z');
  });

  it('resets every tenant with --all semantics and is idempotent', async () => {
    clock.set(T0);
    await tenant('all_a_co');
    await tenant('all_b_co');
    await setTenantStatus(ctx, 'all_b_co', 'SUSPENDED');
    await reserveRun(ctx, 'all_a_co', randomUUID());
    const first = await resetQuotas(ctx);
    assert.ok(first.tenants.includes('all_a_co') && first.tenants.includes('all_b_co'));
    assert.equal(first.count, first.tenants.length);
    assert.equal((await quotaRow('all_a_co'))?.pipelines_run_today, 0);
    const second = await resetQuotas(ctx);
    assert.deepEqual(second.tenants, first.tenants);
  });

  it('a reset frees a tenant stopped by its daily limit', async () => {
    clock.set(T0);
    await tenant('limit_co');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { daily_limit: 1 }, { tenant_id: 'limit_co' });
    await reserveRun(ctx, 'limit_co', randomUUID());
    await settleRun(ctx, 'limit_co', 'succeeded');
    await rejectsWith(reserveRun(ctx, 'limit_co', randomUUID()), ExitCode.quotaExceeded);
    await resetQuotas(ctx, { tenantId: 'limit_co' });
    await reserveRun(ctx, 'limit_co', randomUUID());
  });

  it('refuses an unknown tenant (8)', async () => {
    await rejectsWith(resetQuotas(ctx, { tenantId: 'ghost_co' }), ExitCode.notFound);
  });
});
