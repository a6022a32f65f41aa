import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileLock } from '../../src/backends/lock/files.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import { cleanupOrphans } from '../../src/services/maintenance.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { admitRun, runLockKey } from '../../src/services/runs/admission.ts';
import { createRun, finishRun, getRun, getStepLogs, markRunning, startStep } from '../../src/services/runs/store.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { manualClock, newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const T0 = '2030-06-01T08:00:00.000Z';
const HOUR = 3_600_000;
const clock = manualClock(T0);
let root: string;
let ctx: TestContext;
let lock: FileLock;

async function liveRun(tenantId: string, pipelineId: string, timeoutMs = HOUR): Promise<string> {
  const runId = randomUUID();
  await createRun(ctx, {
    runId,
    tenantId,
    pipelineId,
    trigger: 'scheduled',
    runDate: '2030-06-01',
    parameters: {},
    timeoutAt: new Date(clock.now().getTime() + timeoutMs),
  });
  await markRunning(ctx, runId);
  return runId;
}

const stagingDir = (runId: string) => path.join(root, '.convergence', 'staging', runId);

async function stage(runId: string) {
  await mkdir(path.join(stagingDir(runId), 'ingest'), { recursive: true });
  await writeFile(path.join(stagingDir(runId), 'ingest', 'part-0.parquet'), 'x');
}

before(async () => {
  root = await newBootstrappedWorkspace('maintenance');
  ctx = await openContext(root, { clock });
  lock = new FileLock({ dir: path.join(root, '.convergence', 'locks') });
  await createTenant(ctx, { tenantId: 'orphan_co', name: 'Orphan Co', plan: 'starter' });
});
after(async () => {
  await ctx?.close();
  await cleanupAll();
});

describe('cleanupOrphans', () => {
  it('ends runs past their timeout as TIMEOUT, closes their steps, frees their lock and slot; idempotent', async () => {
    clock.set(T0);
    // A crashed run: admitted (lock + slot), recorded, one step running, then nothing more.
    const crashed = randomUUID();
    const admission = await admitRun(ctx, { tenantId: 'orphan_co', pipelineId: 'p_crash', runId: crashed, timeoutMs: HOUR });
    await createRun(ctx, {
      runId: crashed,
      tenantId: 'orphan_co',
      pipelineId: 'p_crash',
      trigger: 'manual',
      runDate: '2030-06-01',
      parameters: {},
      timeoutAt: new Date(Date.parse(T0) + HOUR),
    });
    await markRunning(ctx, crashed);
    await startStep(ctx, {
      runId: crashed,
      tenantId: 'orphan_co',
      pipelineId: 'p_crash',
      stepName: 'ingest',
      stepType: 'ingest',
      stepIndex: 0,
    });
    await stage(crashed);
    const healthy = await liveRun('orphan_co', 'p_healthy', 3 * HOUR);

    clock.set(new Date(Date.parse(T0) + HOUR + 1));
    const dry = await cleanupOrphans(ctx, { dryRun: true });
    assert.deepEqual(
      dry.timedOut.map((o) => o.runId),
      [crashed],
    );
    assert.deepEqual([dry.locksReleased, dry.stagingRemoved], [[crashed], [crashed]]);
    assert.equal((await getRun(ctx, crashed)).status, 'RUNNING', 'dry run changes nothing');
    assert.ok(existsSync(stagingDir(crashed)));

    const result = await cleanupOrphans(ctx);
    assert.deepEqual(
      result.timedOut.map((o) => [o.runId, o.status]),
      [[crashed, 'RUNNING']],
    );
    assert.deepEqual(result.locksReleased, [crashed]);
    // The crashed run's slot now belongs to the healthy run, which was never admitted: still 1.
    assert.deepEqual(result.countersCorrected, []);
    assert.deepEqual(result.stagingRemoved, [crashed]);
    const run = await getRun(ctx, crashed);
    assert.equal(run.status, 'TIMEOUT');
    assert.match(run.errorMessage ?? '', /orphaned/);
    assert.equal(run.exitCode, ExitCode.pipelineFailed);
    assert.deepEqual(
      (await getStepLogs(ctx, crashed)).map((s) => s.status),
      ['TIMEOUT'],
    );
    assert.equal(await lock.inspect(runLockKey('orphan_co', 'p_crash')), undefined, 'lock freed');
    assert.equal(existsSync(stagingDir(crashed)), false);
    assert.equal((await getRun(ctx, healthy)).status, 'RUNNING', 'a run within its timeout is untouched');

    const again = await cleanupOrphans(ctx);
    assert.deepEqual([again.timedOut, again.locksReleased, again.stagingRemoved, again.countersCorrected], [[], [], [], []]);

    // The crashed process's own late end is ignored, and its release only warns.
    assert.equal(await finishRun(ctx, crashed, { status: 'COMPLETE', exitCode: 0 }), false);
    ctx.warnings.length = 0;
    await admission.release('failed');
    assert.ok(ctx.warnings.some((w) => /taken over/.test(w)));
    await finishRun(ctx, healthy, { status: 'COMPLETE', exitCode: 0 });
  });

  it('corrects the in-flight counter left high by crashed runs', async () => {
    clock.set(T0);
    const a = await liveRun('orphan_co', 'p_a');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { concurrent_pipelines_running: 2 }, { tenant_id: 'orphan_co' });
    clock.set(new Date(Date.parse(T0) + 2 * HOUR));
    const result = await cleanupOrphans(ctx);
    assert.deepEqual(
      result.timedOut.map((o) => o.runId),
      [a],
    );
    assert.deepEqual(result.countersCorrected, [{ tenantId: 'orphan_co', from: 2, to: 0 }]);
  });

  it('leaves a lock alone when a newer run of the pipeline holds it', async () => {
    clock.set(T0);
    const old = await liveRun('orphan_co', 'p_shared');
    const newer = randomUUID();
    const taken = await lock.acquire(runLockKey('orphan_co', 'p_shared'), {
      owner: 'newer',
      ttlMs: HOUR,
      info: { run_id: newer, pid: String(process.pid), host: os.hostname() },
    });
    assert.ok(taken.acquired);
    clock.set(new Date(Date.parse(T0) + 2 * HOUR));
    const result = await cleanupOrphans(ctx);
    assert.deepEqual(
      result.timedOut.map((o) => o.runId),
      [old],
    );
    assert.deepEqual(result.locksReleased, []);
    assert.equal((await lock.inspect(runLockKey('orphan_co', 'p_shared')))?.info?.run_id, newer);
    await lock.release(taken.lease);
  });

  it('--older-than also ends live runs that started before the cutoff', async () => {
    clock.set(T0);
    const slow = await liveRun('orphan_co', 'p_slow', 24 * HOUR);
    clock.set(new Date(Date.parse(T0) + 3 * HOUR));
    assert.deepEqual((await cleanupOrphans(ctx)).timedOut, []);
    const result = await cleanupOrphans(ctx, { olderThanMs: 2 * HOUR });
    assert.deepEqual(
      result.timedOut.map((o) => o.runId),
      [slow],
    );
    assert.match(result.timedOut[0]!.reason, /starting before/);
    await rejectsWith(cleanupOrphans(ctx, { olderThanMs: 0 }), ExitCode.usage);
  });

  it('removes staging folders of ended runs only, never of live or unknown ones', async () => {
    clock.set(T0);
    const live = await liveRun('orphan_co', 'p_stage_live');
    const ended = await liveRun('orphan_co', 'p_stage_done');
    await finishRun(ctx, ended, { status: 'FAILED', exitCode: 3 });
    const unknown = randomUUID();
    for (const id of [live, ended, unknown]) await stage(id);
    await mkdir(path.join(root, '.convergence', 'staging', 'not-a-run'), { recursive: true });
    const result = await cleanupOrphans(ctx);
    assert.deepEqual(result.stagingRemoved, [ended]);
    assert.deepEqual(
      [live, ended, unknown].map((id) => existsSync(stagingDir(id))),
      [true, false, true],
    );
    await finishRun(ctx, live, { status: 'COMPLETE', exitCode: 0 });
  });
});
