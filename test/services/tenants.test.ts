import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { PLANS } from '../../src/domain/plans.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import { setTenantCredential } from '../../src/services/credentials.ts';
import { createKey, listKeys } from '../../src/services/keys.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runLockKey } from '../../src/services/runs/admission.ts';
import { createRun, finishRun, getRun, isCancelRequested, markRunning } from '../../src/services/runs/store.ts';
import { deleteTenant } from '../../src/services/tenant-delete.ts';
import { createTenant, listTenants, setTenantStatus, showTenant, TENANT_CONFIG_DIRS } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import {
  listDatasets,
  manualClock,
  newBootstrappedWorkspace,
  newWorkspace,
  openContext,
  snapshotState,
  withContext,
  type TestContext,
} from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const T0 = '2030-02-01T08:00:00.000Z';
let root: string;
let ctx: TestContext;
const clock = manualClock(T0);

before(async () => {
  root = await newBootstrappedWorkspace('tenants');
  ctx = await openContext(root, { clock });
});

after(async () => {
  await ctx?.close();
  await cleanupAll();
});

const warehouse = () => ctx.backends.warehouse();

describe('createTenant', () => {
  it('writes profile, subscription and quota rows, the dataset and the config folders', async () => {
    clock.set(T0);
    const result = await createTenant(ctx, {
      tenantId: 'acme_corp',
      name: '  ACME Corp ',
      plan: 'professional',
      contactEmail: 'ops@acme.example',
    });
    assert.equal(result.name, 'ACME Corp');
    assert.equal(result.configDir, path.join('configs', 'acme_corp'));
    assert.deepEqual(result.limits, PLANS.professional);

    const w = await warehouse();
    const [profile] = await w.select(METADATA_DATASET, T.profiles, { where: { tenant_id: 'acme_corp' } });
    assert.ok(profile);
    assert.equal(profile.company_name, 'ACME Corp');
    assert.equal(profile.contact_email, 'ops@acme.example');
    assert.equal(profile.status, 'ACTIVE');
    assert.equal(profile.plan_name, 'professional');
    assert.equal(profile.dataset_id, 'acme_corp');
    assert.equal(profile.created_by, 'test:runner');
    assert.equal((profile.created_at as Date).toISOString(), T0);

    const [sub] = await w.select(METADATA_DATASET, T.subscriptions, { where: { tenant_id: 'acme_corp' } });
    assert.equal(sub?.status, 'ACTIVE');
    assert.equal(sub?.max_api_keys, PLANS.professional.max_api_keys);
    assert.equal(sub?.max_pipelines_per_day, PLANS.professional.max_pipelines_per_day);
    const [quota] = await w.select(METADATA_DATASET, T.quotas, { where: { tenant_id: 'acme_corp' } });
    assert.equal(quota?.usage_date, '2030-02-01');
    assert.equal(quota?.daily_limit, PLANS.professional.max_pipelines_per_day);
    assert.equal(quota?.concurrent_limit, PLANS.professional.max_concurrent_pipelines);
    assert.equal(quota?.pipelines_run_today, 0);

    assert.ok((await listDatasets(w)).includes('acme_corp'));
    const dirs = (await readdir(path.join(root, 'configs', 'acme_corp'))).sort();
    assert.deepEqual(dirs, [...TENANT_CONFIG_DIRS].sort());
    assert.equal((await stat(path.join(root, 'configs', 'acme_corp', 'secrets'))).mode & 0o777, 0o700);
  });

  it('a duplicate id is a conflict (2) and changes nothing', async () => {
    const before = await snapshotState(root);
    const err = await rejectsWith(
      createTenant(ctx, { tenantId: 'acme_corp', name: 'Again', plan: 'starter' }),
      ExitCode.usage,
      /already exists/,
    );
    assert.equal(err.code, 'CONFLICT');
    assert.deepEqual(await snapshotState(root), before);
  });

  it('validates id, plan, name and email before writing anything', async () => {
    const before = await snapshotState(root);
    await rejectsWith(createTenant(ctx, { tenantId: 'Bad', name: 'x', plan: 'starter' }), ExitCode.usage, /invalid tenant id/);
    await rejectsWith(createTenant(ctx, { tenantId: 'tenants', name: 'x', plan: 'starter' }), ExitCode.usage, /reserved/);
    await rejectsWith(createTenant(ctx, { tenantId: 'gold_co', name: 'x', plan: 'gold' }), ExitCode.usage, /unknown plan "gold"/);
    await rejectsWith(createTenant(ctx, { tenantId: 'gold_co', name: '   ', plan: 'starter' }), ExitCode.usage, /--name/);
    await rejectsWith(createTenant(ctx, { tenantId: 'gold_co', name: 'x'.repeat(201), plan: 'starter' }), ExitCode.usage, /--name/);
    await rejectsWith(
      createTenant(ctx, { tenantId: 'gold_co', name: 'Gold', plan: 'starter', contactEmail: 'not-an-email' }),
      ExitCode.usage,
      /contact email/,
    );
    assert.deepEqual(await snapshotState(root), before);
  });

  it('a stray dataset with tables blocks the id; an empty one is adopted', async () => {
    const w = await warehouse();
    await w.createDataset('stray_co');
    await w.createTable('stray_co', { name: 'leftover', fields: [{ name: 'x', type: 'STRING' }] });
    await rejectsWith(
      createTenant(ctx, { tenantId: 'stray_co', name: 'Stray', plan: 'starter' }),
      ExitCode.usage,
      /already exists with tables/,
    );
    assert.equal(await w.count(METADATA_DATASET, T.profiles, { tenant_id: 'stray_co' }), 0);
    assert.deepEqual(await w.listTables('stray_co'), ['leftover'], 'the stray dataset is left alone');

    await w.createDataset('empty_co');
    const created = await createTenant(ctx, { tenantId: 'empty_co', name: 'Empty', plan: 'starter' });
    assert.equal(created.status, 'ACTIVE');
  });

  it('a held tenant lock is "already running" (5) and writes nothing', async () => {
    const lock = await ctx.backends.lock();
    const taken = await lock.acquire('tenant/locked_co', { owner: 'someone-else', ttlMs: 60_000 });
    assert.ok(taken.acquired);
    try {
      const err = await rejectsWith(
        createTenant(ctx, { tenantId: 'locked_co', name: 'Locked', plan: 'starter' }),
        ExitCode.alreadyRunning,
        /someone-else/,
      );
      assert.equal(err.code, 'LOCK_HELD');
    } finally {
      await lock.release(taken.lease);
    }
    assert.equal(await (await warehouse()).count(METADATA_DATASET, T.profiles, { tenant_id: 'locked_co' }), 0);
    assert.ok(!(await listDatasets(await warehouse())).includes('locked_co'));
    await createTenant(ctx, { tenantId: 'locked_co', name: 'Locked', plan: 'starter' });
  });

  it('a tenant lease whose holder was killed (kill -9) is taken over at once', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const deadPid = child.pid!;
    await once(child, 'exit');
    const lock = await ctx.backends.lock();
    const taken = await lock.acquire('tenant/orphan_co', {
      owner: 'crashed',
      ttlMs: 3_600_000,
      info: { pid: String(deadPid), host: os.hostname() },
    });
    assert.ok(taken.acquired);
    const created = await createTenant(ctx, { tenantId: 'orphan_co', name: 'Orphan', plan: 'starter' });
    assert.equal(created.status, 'ACTIVE');
    assert.ok(
      ctx.warnings.some((w) => w.includes('tenant/orphan_co') && w.includes(String(deadPid))),
      ctx.warnings.join('\n'),
    );
    assert.equal(await lock.inspect('tenant/orphan_co'), undefined);
  });

  it('a tenant lease held by a live process on this host is still respected (5)', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const lock = await ctx.backends.lock();
      const taken = await lock.acquire('tenant/alive_co', {
        owner: 'alive',
        ttlMs: 60_000,
        info: { pid: String(child.pid), host: os.hostname() },
      });
      assert.ok(taken.acquired);
      await rejectsWith(createTenant(ctx, { tenantId: 'alive_co', name: 'Alive', plan: 'starter' }), ExitCode.alreadyRunning, /alive/);
      await lock.release(taken.lease);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('an interrupted bootstrap (a metadata table missing): refused naming it, with `convergence bootstrap` (2)', async () => {
    const partial = await newBootstrappedWorkspace('tenants-partial');
    await withContext(partial, (c) => c.backends.warehouse().then((w) => w.dropTable(METADATA_DATASET, T.quotas)));
    await withContext(partial, async (c) => {
      const err = await rejectsWith(
        createTenant(c, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' }),
        ExitCode.usage,
        /incompletely bootstrapped: tenant_usage_quotas is missing/,
      );
      assert.equal(err.code, 'NOT_BOOTSTRAPPED');
      assert.match(err.suggestion ?? '', /`convergence bootstrap`/);
      assert.ok(!(await listDatasets(await c.backends.warehouse())).includes('acme_corp'));
    });
  });

  it('before bootstrap: refused with a pointer to `convergence bootstrap` (2)', async () => {
    const fresh = await newWorkspace('tenants-fresh');
    await withContext(fresh, async (c) => {
      const err = await rejectsWith(
        createTenant(c, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' }),
        ExitCode.usage,
        /not bootstrapped/,
      );
      assert.match(err.suggestion ?? '', /`convergence bootstrap`/);
      assert.deepEqual(await listDatasets(await c.backends.warehouse()), []);
    });
  });
});

describe('list, show, suspend, resume', () => {
  before(async () => {
    clock.set(T0);
    await createTenant(ctx, { tenantId: 'zeta_co', name: 'Zeta', plan: 'starter' });
  });

  it('showTenant reports plan limits, quota, keys, credentials and pipeline files', async () => {
    await createKey(ctx, { tenantId: 'zeta_co' });
    await createKey(ctx, { tenantId: 'zeta_co' });
    await setTenantCredential(ctx, 'zeta_co', 'usage_api_token', 'tok');
    await mkdir(path.join(root, 'configs', 'zeta_co', 'pipelines'), { recursive: true });
    await writeFile(path.join(root, 'configs', 'zeta_co', 'pipelines', 'p_usage_daily.yml'), 'pipeline_id: p_usage_daily\n');
    await writeFile(path.join(root, 'configs', 'zeta_co', 'pipelines', 'notes.txt'), 'not a pipeline');
    const t = await showTenant(ctx, 'zeta_co');
    assert.equal(t.tenantId, 'zeta_co');
    assert.equal(t.activeKeys, 2);
    assert.equal(t.subscription?.maxApiKeys, PLANS.starter.max_api_keys);
    assert.equal(t.quota?.dailyLimit, PLANS.starter.max_pipelines_per_day);
    assert.deepEqual(t.credentials, ['usage_api_token']);
    assert.deepEqual(t.pipelines, ['p_usage_daily']);
    assert.equal(t.datasetExists, true);
  });

  it('suspend and resume change the status once and report no change when repeated', async () => {
    const s1 = await setTenantStatus(ctx, 'zeta_co', 'SUSPENDED', 'unpaid invoice');
    assert.deepEqual(s1, { tenantId: 'zeta_co', previous: 'ACTIVE', status: 'SUSPENDED', changed: true });
    const shown = await showTenant(ctx, 'zeta_co');
    assert.equal(shown.status, 'SUSPENDED');
    assert.equal(shown.statusReason, 'unpaid invoice');
    const s2 = await setTenantStatus(ctx, 'zeta_co', 'SUSPENDED');
    assert.equal(s2.changed, false);
    assert.deepEqual(
      (await listTenants(ctx, { status: 'SUSPENDED' })).map((t) => t.tenantId),
      ['zeta_co'],
    );
    const r = await setTenantStatus(ctx, 'zeta_co', 'ACTIVE');
    assert.deepEqual(r, { tenantId: 'zeta_co', previous: 'SUSPENDED', status: 'ACTIVE', changed: true });
    assert.equal((await showTenant(ctx, 'zeta_co')).statusReason, null);
  });

  it('unknown tenants are not found (8)', async () => {
    await rejectsWith(showTenant(ctx, 'nobody_co'), ExitCode.notFound, /"nobody_co" not found/);
    await rejectsWith(setTenantStatus(ctx, 'nobody_co', 'SUSPENDED'), ExitCode.notFound);
    await rejectsWith(deleteTenant(ctx, 'nobody_co'), ExitCode.notFound);
  });

  it('listTenants is ordered by id and hides deleted tenants unless asked', async () => {
    const ids = (await listTenants(ctx)).map((t) => t.tenantId);
    assert.deepEqual(ids, [...ids].sort());
    assert.ok(ids.includes('zeta_co'));
  });
});

/** A RUNNING run record of p_main, as admission writes it; returns its id. */
async function runningRun(tenantId: string): Promise<string> {
  const runId = randomUUID();
  await createRun(ctx, {
    runId,
    tenantId,
    pipelineId: 'p_main',
    trigger: 'manual',
    runDate: '2030-02-01',
    parameters: {},
    timeoutAt: new Date(clock.now().getTime() + 3_600_000),
  });
  await markRunning(ctx, runId);
  return runId;
}

describe('deleteTenant', () => {
  it('keeps the profile as DELETED, revokes keys, cancels the subscription and drops the dataset', async () => {
    clock.set(T0);
    await createTenant(ctx, { tenantId: 'doomed_co', name: 'Doomed', plan: 'starter' });
    await createKey(ctx, { tenantId: 'doomed_co' });
    await createKey(ctx, { tenantId: 'doomed_co' });
    await setTenantCredential(ctx, 'doomed_co', 'token', 'secret-value');
    const w = await warehouse();
    await w.createTable('doomed_co', { name: 'raw_usage', fields: [{ name: 'date', type: 'DATE' }] });
    await w.insert('doomed_co', 'raw_usage', [{ date: '2030-01-01' }]);

    clock.set('2030-02-02T00:00:00.000Z');
    const result = await deleteTenant(ctx, 'doomed_co');
    assert.deepEqual(result, {
      tenantId: 'doomed_co',
      keysRevoked: 2,
      datasetDropped: true,
      configDirKept: path.join('configs', 'doomed_co'),
      runsCancelled: [],
    });

    const [profile] = await w.select(METADATA_DATASET, T.profiles, { where: { tenant_id: 'doomed_co' } });
    assert.equal(profile?.status, 'DELETED');
    assert.equal((profile?.deleted_at as Date).toISOString(), '2030-02-02T00:00:00.000Z');
    const keys = await listKeys(ctx, 'doomed_co', { all: true });
    assert.equal(keys.length, 2);
    assert.ok(keys.every((k) => k.status === 'REVOKED'));
    const reasons = await w.select(METADATA_DATASET, T.apiKeys, { where: { tenant_id: 'doomed_co' }, columns: ['revoked_reason'] });
    assert.deepEqual(
      reasons.map((r) => r.revoked_reason),
      ['tenant deleted', 'tenant deleted'],
    );
    const [sub] = await w.select(METADATA_DATASET, T.subscriptions, { where: { tenant_id: 'doomed_co' } });
    assert.equal(sub?.status, 'CANCELLED');
    assert.equal(await w.count(METADATA_DATASET, T.credentials, { tenant_id: 'doomed_co', status: 'ACTIVE' }), 0);
    assert.equal(await w.datasetExists('doomed_co'), false);
    assert.ok((await stat(path.join(root, 'configs', 'doomed_co'))).isDirectory(), 'config folder kept');

    assert.ok(!(await listTenants(ctx)).some((t) => t.tenantId === 'doomed_co'));
    assert.equal((await listTenants(ctx, { includeDeleted: true })).find((t) => t.tenantId === 'doomed_co')?.status, 'DELETED');
    assert.equal((await showTenant(ctx, 'doomed_co')).status, 'DELETED');
  });

  it('a deleted id cannot be created again, suspended, or deleted twice', async () => {
    const err = await rejectsWith(
      createTenant(ctx, { tenantId: 'doomed_co', name: 'Again', plan: 'starter' }),
      ExitCode.usage,
      /not reused/,
    );
    assert.equal(err.code, 'CONFLICT');
    assert.equal(await (await warehouse()).datasetExists('doomed_co'), false);
    await rejectsWith(setTenantStatus(ctx, 'doomed_co', 'ACTIVE'), ExitCode.notFound, /deleted/);
    await rejectsWith(deleteTenant(ctx, 'doomed_co'), ExitCode.notFound, /already deleted/);
  });

  it('a run in progress blocks deletion (5, naming the run) and nothing changes; --force cancels it first', async () => {
    clock.set(T0);
    await createTenant(ctx, { tenantId: 'busy_co', name: 'Busy', plan: 'starter' });
    const w = await warehouse();
    await w.createTable('busy_co', { name: 'raw_usage', fields: [{ name: 'date', type: 'DATE' }] });
    const runId = await runningRun('busy_co');

    const err = await rejectsWith(
      deleteTenant(ctx, 'busy_co'),
      ExitCode.alreadyRunning,
      new RegExp(`run in progress: ${runId} \\(p_main, RUNNING\\)`),
    );
    assert.match(err.suggestion ?? '', new RegExp(`pipeline cancel ${runId}`));
    assert.match(err.suggestion ?? '', /--force/);
    assert.equal((await showTenant(ctx, 'busy_co')).status, 'ACTIVE');
    assert.equal(await w.datasetExists('busy_co'), true);

    // Nobody runs this record (no process holds its lock), so it is ended here at once.
    const result = await deleteTenant(ctx, 'busy_co', { force: true, cancelWaitMs: 60_000 });
    assert.deepEqual(result.runsCancelled, [runId]);
    assert.equal(result.datasetDropped, true);
    const run = await getRun(ctx, runId);
    assert.equal(run.status, 'CANCELLED');
    assert.equal(run.cancelRequested, true);
    assert.match(run.errorMessage ?? '', /tenant was deleted/);
  });

  it('--force waits for a run a live process holds to stop at its checkpoint', async () => {
    await createTenant(ctx, { tenantId: 'live_co', name: 'Live', plan: 'starter' });
    const runId = await runningRun('live_co');
    const lock = await ctx.backends.lock();
    const taken = await lock.acquire(runLockKey('live_co', 'p_main'), {
      owner: 'this process',
      ttlMs: 60_000,
      info: { run_id: runId, pid: String(process.pid), host: os.hostname() },
    });
    assert.ok(taken.acquired);
    // The engine's side: it notices the cancel request at a checkpoint and ends its run itself.
    const engine = (async () => {
      while (!(await isCancelRequested(ctx, runId))) await sleep(20);
      await finishRun(ctx, runId, { status: 'CANCELLED', exitCode: 3, errorMessage: 'the run was cancelled (pipeline cancel)' });
      await lock.release(taken.lease);
    })();
    const result = await deleteTenant(ctx, 'live_co', { force: true, cancelWaitMs: 60_000 });
    await engine;
    assert.deepEqual(result.runsCancelled, [runId]);
    assert.equal((await getRun(ctx, runId)).errorMessage, 'the run was cancelled (pipeline cancel)');
  });

  it('a rerun finishes a drop that failed half way', async () => {
    await createTenant(ctx, { tenantId: 'half_co', name: 'Half', plan: 'starter' });
    await deleteTenant(ctx, 'half_co');
    const w = await warehouse();
    await w.createDataset('half_co'); // as if the drop had not happened
    const again = await deleteTenant(ctx, 'half_co');
    assert.equal(again.datasetDropped, true);
    assert.equal(again.keysRevoked, 0);
    assert.equal(await w.datasetExists('half_co'), false);
  });
});

describe('setTenantCredential', () => {
  before(async () => {
    await createTenant(ctx, { tenantId: 'cred_co', name: 'Cred', plan: 'starter' });
  });

  it('stores the value KeyRing-encrypted; a second set replaces the first', async () => {
    const first = await setTenantCredential(ctx, 'cred_co', 'usage_api_token', 'first-secret-value');
    assert.equal(first.replaced, false);
    const second = await setTenantCredential(ctx, 'cred_co', 'usage_api_token', 'second-secret-value');
    assert.equal(second.replaced, true);
    const w = await warehouse();
    const rows = await w.select(METADATA_DATASET, T.credentials, { where: { tenant_id: 'cred_co' } });
    const byId = new Map(rows.map((r) => [String(r.credential_id), r]));
    assert.equal(byId.get(first.credentialId)?.status, 'REPLACED');
    assert.equal(byId.get(second.credentialId)?.status, 'ACTIVE');
    const keyring = await ctx.backends.keyring();
    for (const [id, plain] of [
      [first.credentialId, 'first-secret-value'],
      [second.credentialId, 'second-secret-value'],
    ] as const) {
      const stored = String(byId.get(id)?.encrypted_value);
      assert.ok(!stored.includes(plain));
      assert.equal((await keyring.decrypt(Buffer.from(stored, 'base64'))).toString('utf8'), plain);
    }
  });

  it('refuses an empty value, a bad name and an unknown tenant', async () => {
    const before = await snapshotState(root);
    await rejectsWith(setTenantCredential(ctx, 'cred_co', 'token', ''), ExitCode.usage, /empty/);
    await rejectsWith(setTenantCredential(ctx, 'cred_co', '../token', 'x'), ExitCode.usage, /invalid credential name/);
    await rejectsWith(setTenantCredential(ctx, 'nobody_co', 'token', 'x'), ExitCode.notFound);
    assert.deepEqual(await snapshotState(root), before);
  });
});
