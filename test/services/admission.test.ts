import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { FileLock } from '../../src/backends/lock/files.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { showQuota } from '../../src/services/quotas.ts';
import { admitRun, checkRemoteAdmission, runLockKey, type Admission } from '../../src/services/runs/admission.ts';
import { createRun, finishRun, getRun, markRunning } from '../../src/services/runs/store.ts';
import { deleteTenant } from '../../src/services/tenant-delete.ts';
import { createTenant, setTenantStatus } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { manualClock, newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const HOUR = 3_600_000;
const clock = manualClock('2030-04-01T10:00:00.000Z');
let root: string;
let ctx: TestContext;
let lockDir: string;
const open: Admission[] = [];

async function tenant(id: string, plan = 'starter') {
  await createTenant(ctx, { tenantId: id, name: `Tenant ${id}`, plan });
}

async function admit(tenantId: string, pipelineId = 'p_main', runId = randomUUID(), extra: { lockTtlMs?: number } = {}) {
  const admission = await admitRun(ctx, { tenantId, pipelineId, runId, timeoutMs: HOUR, ...extra });
  open.push(admission);
  return { admission, runId };
}

/** What the engine does once admitted: a run record moving to RUNNING. */
async function record(tenantId: string, runId: string, pipelineId = 'p_main') {
  await createRun(ctx, {
    runId,
    tenantId,
    pipelineId,
    trigger: 'manual',
    runDate: '2030-04-01',
    parameters: {},
    timeoutAt: new Date(clock.now().getTime() + HOUR),
  });
  await markRunning(ctx, runId);
}

async function quotaRow(tenantId: string) {
  const warehouse = await ctx.backends.warehouse();
  const [row] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: tenantId } });
  assert.ok(row);
  return row;
}

before(async () => {
  root = await newBootstrappedWorkspace('admission');
  ctx = await openContext(root, { clock });
  lockDir = path.join(root, '.convergence', 'locks');
});
after(async () => {
  for (const a of open) await a.release('failed');
  await ctx?.close();
  await cleanupAll();
});

describe('admitRun', () => {
  it('takes the run lock and a quota slot, and gives both back on release', async () => {
    await tenant('life_co');
    const { admission, runId } = await admit('life_co');
    assert.equal(admission.key, runLockKey('life_co', 'p_main'));
    const holder = await new FileLock({ dir: lockDir }).inspect(admission.key);
    assert.deepEqual(holder?.info, { run_id: runId, pid: String(process.pid), host: os.hostname() });
    await record('life_co', runId);
    await admission.checkpoint();

    let row = await quotaRow('life_co');
    assert.deepEqual([row.pipelines_run_today, row.concurrent_pipelines_running], [1, 1]);
    await finishRun(ctx, runId, { status: 'COMPLETE', exitCode: 0, rowsProcessed: 1 });
    await admission.release('succeeded');
    await admission.release('succeeded'); // a second release changes nothing

    row = await quotaRow('life_co');
    assert.deepEqual(
      [row.pipelines_run_today, row.concurrent_pipelines_running, row.pipelines_succeeded_today, row.pipelines_failed_today],
      [1, 0, 1, 0],
    );
    assert.equal(await new FileLock({ dir: lockDir }).inspect(admission.key), undefined);
    assert.deepEqual(ctx.warnings, []);
  });

  it('a second admission of the same pipeline exits 5 naming the running run', async () => {
    await tenant('busy_co', 'scale');
    const { admission, runId } = await admit('busy_co');
    const err = await rejectsWith(admit('busy_co'), ExitCode.alreadyRunning);
    assert.equal(err.code, 'LOCK_HELD');
    assert.ok(err.message.includes(`run ${runId}`), err.message);
    assert.equal((err.data as { holderRunId: string }).holderRunId, runId);
    assert.match(err.suggestion ?? '', new RegExp(`pipeline cancel ${runId}`));
    // The refused admission took no quota slot; another pipeline of the tenant runs fine.
    assert.equal((await quotaRow('busy_co')).pipelines_run_today, 1);
    const other = await admit('busy_co', 'p_other');
    await other.admission.release('succeeded');
    await admission.release('succeeded');
    await admit('busy_co'); // free again
  });

  it('takes over at once from a holder whose process died, and marks its run FAILED', async () => {
    await tenant('crash_co');
    const child = spawn(process.execPath, ['-e', '']);
    const deadPid = child.pid!;
    await once(child, 'exit');
    const deadRunId = randomUUID();
    await record('crash_co', deadRunId);
    const lock = new FileLock({ dir: lockDir });
    const taken = await lock.acquire(runLockKey('crash_co', 'p_main'), {
      owner: 'crashed',
      ttlMs: HOUR,
      info: { run_id: deadRunId, pid: String(deadPid), host: os.hostname() },
    });
    assert.ok(taken.acquired);
    // Its quota slot, as its admission would have taken it.
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(
      METADATA_DATASET,
      T.quotas,
      { pipelines_run_today: 1, concurrent_pipelines_running: 1 },
      { tenant_id: 'crash_co' },
    );

    ctx.warnings.length = 0;
    const { runId } = await admit('crash_co');
    const holder = await lock.inspect(runLockKey('crash_co', 'p_main'));
    assert.equal(holder?.info?.run_id, runId);
    const dead = await getRun(ctx, deadRunId);
    assert.equal(dead.status, 'FAILED');
    assert.equal(dead.errorMessage, `process ${deadPid} died`);
    assert.ok(
      ctx.warnings.some((w) => w.includes(deadRunId)),
      ctx.warnings.join('\n'),
    );
    const row = await quotaRow('crash_co');
    assert.deepEqual([row.pipelines_run_today, row.concurrent_pipelines_running, row.pipelines_failed_today], [2, 1, 1]);
  });

  it('does not take over from a live holder on this host', async () => {
    await tenant('alive_co');
    const lock = new FileLock({ dir: lockDir });
    const otherRun = randomUUID();
    await lock.acquire(runLockKey('alive_co', 'p_main'), {
      owner: 'alive',
      ttlMs: HOUR,
      info: { run_id: otherRun, pid: String(process.pid), host: os.hostname() },
    });
    const err = await rejectsWith(admit('alive_co'), ExitCode.alreadyRunning);
    assert.equal((err.data as { holderRunId: string }).holderRunId, otherRun);
  });

  it('takes over an expired lease', async () => {
    await tenant('expiry_co');
    const lock = new FileLock({ dir: lockDir });
    const stale = await lock.acquire(runLockKey('expiry_co', 'p_main'), {
      owner: 'stale',
      ttlMs: 1,
      info: { run_id: randomUUID(), pid: String(process.pid), host: os.hostname() },
    });
    assert.ok(stale.acquired);
    while ((await lock.inspect(runLockKey('expiry_co', 'p_main'))) !== undefined) await sleep(5);
    const { admission } = await admit('expiry_co');
    assert.ok(admission.lease.token > stale.lease.token, 'fencing token increases');
  });

  it('checkpoint throws LOCK_LOST once another run took the lock over, and release only warns', async () => {
    await tenant('lost_co');
    const { admission, runId } = await admit('lost_co', 'p_main', randomUUID(), { lockTtlMs: 300 });
    const lock = new FileLock({ dir: lockDir });
    await lock.forceRelease(admission.key);
    const thief = await lock.acquire(admission.key, { owner: 'thief', ttlMs: HOUR, info: { run_id: 'other' } });
    assert.ok(thief.acquired);
    await sleep(150); // past a third of the ttl: the next checkpoint must re-confirm the lease
    const err = await rejectsWith(admission.checkpoint(), ExitCode.alreadyRunning, new RegExp(`run ${runId} lost its lock`));
    assert.equal(err.code, 'LOCK_LOST');
    ctx.warnings.length = 0;
    await admission.release('failed');
    assert.ok(
      ctx.warnings.some((w) => /taken over/.test(w)),
      ctx.warnings.join('\n'),
    );
    assert.equal((await lock.inspect(admission.key))?.owner, 'thief', "the thief's lease stays");
  });

  it('keeps the lease alive past its ttl while the run goes on', async () => {
    await tenant('renew_co');
    // Renewed every third of the ttl: a busy machine may stall the timer for a while without losing it.
    const { admission } = await admit('renew_co', 'p_main', randomUUID(), { lockTtlMs: 900 });
    const first = admission.lease.expiresAt.getTime();
    await sleep(1_300);
    await admission.checkpoint();
    assert.ok(admission.lease.expiresAt.getTime() > first, 'renewed');
    assert.ok(await new FileLock({ dir: lockDir }).inspect(admission.key));
    await admission.release('succeeded');
  });
});

describe('tenant state', () => {
  it('refuses a suspended tenant (7), and a missing or deleted one (8)', async () => {
    await tenant('paused_co');
    await setTenantStatus(ctx, 'paused_co', 'SUSPENDED', 'unpaid invoice');
    const err = await rejectsWith(admit('paused_co'), ExitCode.auth, /suspended \(unpaid invoice\)/);
    assert.equal(err.code, 'TENANT_SUSPENDED');
    assert.match(err.suggestion ?? '', /convergence tenant resume paused_co/);
    await rejectsWith(admit('ghost_co'), ExitCode.notFound);
    await tenant('removed_co');
    await deleteTenant(ctx, 'removed_co');
    await rejectsWith(admit('removed_co'), ExitCode.notFound);
    await rejectsWith(admit('Bad Id'), ExitCode.usage);
    await rejectsWith(admitRun(ctx, { tenantId: 'paused_co', pipelineId: 'p', runId: 'nope', timeoutMs: HOUR }), ExitCode.usage);
    assert.equal(await new FileLock({ dir: lockDir }).inspect(runLockKey('paused_co', 'p_main')), undefined);
  });
});

describe('quota', () => {
  it('exits 6 at the daily limit, names the reset time, releases the lock; a new UTC day starts fresh', async () => {
    clock.set('2030-04-01T22:00:00.000Z');
    await tenant('daily_co');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { daily_limit: 2 }, { tenant_id: 'daily_co' });
    for (let i = 0; i < 2; i++) await (await admit('daily_co')).admission.release('succeeded');
    const err = await rejectsWith(admit('daily_co'), ExitCode.quotaExceeded, /daily limit of 2/);
    assert.equal(err.code, 'QUOTA_EXCEEDED');
    assert.match(err.message, /resets at 2030-04-02T00:00:00\.000Z/);
    assert.equal(await new FileLock({ dir: lockDir }).inspect(runLockKey('daily_co', 'p_main')), undefined, 'lock released');
    assert.equal((await showQuota(ctx, 'daily_co')).remainingToday, 0);

    clock.set('2030-04-02T00:00:01.000Z');
    assert.equal((await showQuota(ctx, 'daily_co')).runsToday, 0, 'the view starts the new day');
    const { admission } = await admit('daily_co');
    const row = await quotaRow('daily_co');
    assert.deepEqual([row.usage_date, row.pipelines_run_today, row.pipelines_succeeded_today], ['2030-04-02', 1, 0]);
    await admission.release('failed');
    assert.equal((await quotaRow('daily_co')).pipelines_failed_today, 1);
    clock.set('2030-04-01T10:00:00.000Z');
  });

  it('exits 6 at the concurrent limit, counting recorded runs and admissions not yet recorded', async () => {
    await tenant('conc_co'); // starter: 2 concurrent
    const a = await admit('conc_co', 'p_a');
    await record('conc_co', a.runId, 'p_a');
    const b = await admit('conc_co', 'p_b'); // admitted, record not written yet
    const err = await rejectsWith(
      admit('conc_co', 'p_c'),
      ExitCode.quotaExceeded,
      /2 pipeline run\(s\) in progress; its concurrent limit is 2/,
    );
    assert.equal((err.data as { limit: string }).limit, 'concurrent');
    assert.equal(await new FileLock({ dir: lockDir }).inspect(runLockKey('conc_co', 'p_c')), undefined);
    assert.equal((await showQuota(ctx, 'conc_co')).running, 2);

    await finishRun(ctx, a.runId, { status: 'COMPLETE', exitCode: 0 });
    await a.admission.release('succeeded');
    const c = await admit('conc_co', 'p_c');
    await c.admission.release('succeeded');
    await b.admission.release('succeeded');
    assert.equal((await quotaRow('conc_co')).concurrent_pipelines_running, 0);
  });

  it('a run recorded before admission does not count against itself', async () => {
    await tenant('self_co');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { concurrent_limit: 1 }, { tenant_id: 'self_co' });
    const runId = randomUUID();
    await record('self_co', runId);
    const { admission } = await admit('self_co', 'p_main', runId);
    await admission.release('succeeded');
  });

  it('two admissions racing for the last slot: exactly one wins', async () => {
    await tenant('race_co');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { daily_limit: 1 }, { tenant_id: 'race_co' });
    const results = await Promise.allSettled([admit('race_co', 'p_one'), admit('race_co', 'p_two')]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.find((r) => r.status === 'rejected');
    assert.equal((lost as PromiseRejectedResult).reason.exitCode, ExitCode.quotaExceeded);
    assert.equal((await quotaRow('race_co')).pipelines_run_today, 1);
  });
});

describe('checkRemoteAdmission', () => {
  it('answers as admission would, taking nothing: suspended 7, lock held 5, daily and concurrent quota 6', async () => {
    await tenant('ahead_co');
    await checkRemoteAdmission(ctx, 'ahead_co', 'p_main');
    assert.equal(await new FileLock({ dir: lockDir }).inspect(runLockKey('ahead_co', 'p_main')), undefined, 'no lock taken');
    assert.equal((await quotaRow('ahead_co')).pipelines_run_today, 0, 'no quota slot taken');

    const { admission } = await admit('ahead_co');
    await rejectsWith(checkRemoteAdmission(ctx, 'ahead_co', 'p_main'), ExitCode.alreadyRunning, /already running/);
    await admission.release('succeeded');

    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { concurrent_pipelines_running: 1, concurrent_limit: 1 }, { tenant_id: 'ahead_co' });
    await rejectsWith(checkRemoteAdmission(ctx, 'ahead_co', 'p_main'), ExitCode.quotaExceeded, /concurrent limit is 1/);
    await warehouse.update(METADATA_DATASET, T.quotas, { daily_limit: 1 }, { tenant_id: 'ahead_co' });
    await rejectsWith(checkRemoteAdmission(ctx, 'ahead_co', 'p_main'), ExitCode.quotaExceeded, /daily limit of 1/);

    await setTenantStatus(ctx, 'ahead_co', 'SUSPENDED', 'audit');
    await rejectsWith(checkRemoteAdmission(ctx, 'ahead_co', 'p_main'), ExitCode.auth, /suspended \(audit\)/);
    await rejectsWith(checkRemoteAdmission(ctx, 'nobody_co', 'p_main'), ExitCode.notFound);
  });
});
