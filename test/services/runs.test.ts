import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ExitCode } from '../../src/lib/errors.ts';
import {
  createRun,
  finishRun,
  finishStep,
  getRun,
  getRunDetails,
  getStepLogs,
  isCancelRequested,
  listRuns,
  markRunning,
  requestCancel,
  skipStep,
  startStep,
  type CreateRunInput,
} from '../../src/services/runs/store.ts';
import { deleteTenant } from '../../src/services/tenant-delete.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { manualClock, newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const T0 = '2030-03-10T09:00:00.000Z';
const HOUR = 3_600_000;
const clock = manualClock(T0);
let ctx: TestContext;

const runInput = (overrides: Partial<CreateRunInput> = {}): CreateRunInput => ({
  runId: randomUUID(),
  tenantId: 'runs_co',
  pipelineId: 'p_usage',
  trigger: 'manual',
  runDate: '2030-03-10',
  parameters: {},
  timeoutAt: new Date(clock.now().getTime() + HOUR),
  ...overrides,
});

before(async () => {
  const root = await newBootstrappedWorkspace('runs');
  ctx = await openContext(root, { clock });
  await createTenant(ctx, { tenantId: 'runs_co', name: 'Runs Co', plan: 'starter' });
});
after(async () => {
  await ctx?.close();
  await cleanupAll();
});

describe('run lifecycle', () => {
  it('PENDING → RUNNING → COMPLETE with steps, durations and rows', async () => {
    clock.set(T0);
    const created = await createRun(
      ctx,
      runInput({ parameters: { region: 'eu' }, triggeredBy: 'ops@example.com', configVersion: 'abc123' }),
    );
    assert.equal(created.status, 'PENDING');
    assert.deepEqual(created.parameters, { region: 'eu' });
    assert.equal(created.startTime?.toISOString(), T0);
    assert.equal(await markRunning(ctx, created.runId), true);
    assert.equal(await markRunning(ctx, created.runId), false, 'only a PENDING run starts');

    const base = { runId: created.runId, tenantId: 'runs_co', pipelineId: 'p_usage' };
    const ingest = await startStep(ctx, { ...base, stepName: 'ingest', stepType: 'ingest', stepIndex: 0 });
    clock.advance(1500);
    assert.equal(
      await finishStep(ctx, ingest, { status: 'COMPLETE', rowsIn: 10, rowsOut: 9, bytesProcessed: 2048, details: { pages: 2 } }),
      true,
    );
    const dq = await startStep(ctx, { ...base, stepName: 'check', stepType: 'dq', stepIndex: 1 });
    clock.advance(500);
    await finishStep(ctx, dq, { status: 'FAILED', rowsIn: 9, rowsOut: 9, bytesProcessed: 0, errorMessage: 'not_null failed on date' });
    await skipStep(ctx, { ...base, stepName: 'build', stepType: 'transform', stepIndex: 2, reason: 'an earlier step failed' });
    assert.equal(await finishRun(ctx, created.runId, { status: 'FAILED', exitCode: 4, errorMessage: 'dq failed', rowsProcessed: 9 }), true);

    const run = await getRun(ctx, created.runId);
    assert.equal(run.status, 'FAILED');
    assert.equal(run.durationMs, 2000);
    assert.equal(run.endTime?.toISOString(), new Date(Date.parse(T0) + 2000).toISOString());
    assert.deepEqual([run.exitCode, run.rowsProcessed, run.errorMessage], [4, 9, 'dq failed']);
    assert.deepEqual([run.trigger, run.triggeredBy, run.configVersion, run.runDate], ['manual', 'ops@example.com', 'abc123', '2030-03-10']);

    const steps = await getStepLogs(ctx, created.runId);
    assert.deepEqual(
      steps.map((s) => [s.stepIndex, s.stepName, s.status, s.durationMs, s.rowsIn, s.rowsOut]),
      [
        [0, 'ingest', 'COMPLETE', 1500, 10, 9],
        [1, 'check', 'FAILED', 500, 9, 9],
        [2, 'build', 'SKIPPED', 0, 0, 0],
      ],
    );
    assert.deepEqual(steps[0]!.details, { pages: 2 });
    assert.equal(steps[0]!.bytesProcessed, 2048);
    assert.equal(steps[1]!.errorMessage, 'not_null failed on date');
    assert.deepEqual(steps[2]!.details, { reason: 'an earlier step failed' });
  });

  it('a terminal run is left alone: finishRun returns false and changes nothing', async () => {
    clock.set(T0);
    const { runId } = await createRun(ctx, runInput());
    await markRunning(ctx, runId);
    assert.equal(await finishRun(ctx, runId, { status: 'TIMEOUT', exitCode: 3, errorMessage: 'orphaned' }), true);
    clock.advance(60_000);
    assert.equal(await finishRun(ctx, runId, { status: 'COMPLETE', exitCode: 0, rowsProcessed: 100 }), false);
    const run = await getRun(ctx, runId);
    assert.deepEqual([run.status, run.errorMessage, run.rowsProcessed], ['TIMEOUT', 'orphaned', null]);
    assert.equal(await finishRun(ctx, randomUUID(), { status: 'FAILED', exitCode: 1 }), false, 'unknown run');
  });

  it('ending a run closes the steps it left RUNNING', async () => {
    clock.set(T0);
    const { runId } = await createRun(ctx, runInput());
    await markRunning(ctx, runId);
    const step = await startStep(ctx, {
      runId,
      tenantId: 'runs_co',
      pipelineId: 'p_usage',
      stepName: 'ingest',
      stepType: 'ingest',
      stepIndex: 0,
    });
    clock.advance(1000);
    await finishRun(ctx, runId, { status: 'CANCELLED', exitCode: 3, errorMessage: 'cancelled' });
    const [log] = await getStepLogs(ctx, runId);
    assert.deepEqual([log!.status, log!.durationMs], ['CANCELLED', 1000]);
    assert.equal(await finishStep(ctx, step, { status: 'COMPLETE', rowsIn: 1, rowsOut: 1, bytesProcessed: 1 }), false);
  });

  it('refuses bad input before any SQL: bad uuid (2), unknown run (8), duplicate run id (2)', async () => {
    await rejectsWith(getRun(ctx, 'not-a-uuid'), ExitCode.usage, /invalid run id "not-a-uuid"/);
    const missing = await rejectsWith(getRun(ctx, randomUUID()), ExitCode.notFound, /not found/);
    assert.match(missing.suggestion ?? '', /pipeline runs --tenant/);
    await rejectsWith(getRunDetails(ctx, randomUUID()), ExitCode.notFound);
    await rejectsWith(createRun(ctx, runInput({ runDate: '2030-13-45' })), ExitCode.usage, /YYYY-MM-DD/);
    await rejectsWith(createRun(ctx, runInput({ tenantId: 'Bad Tenant' })), ExitCode.usage, /invalid tenant id/);
    const first = await createRun(ctx, runInput());
    await rejectsWith(createRun(ctx, runInput({ runId: first.runId })), ExitCode.usage, /already exists/);
  });

  it('accepts a run id pasted in upper case', async () => {
    const { runId } = await createRun(ctx, runInput());
    assert.equal((await getRun(ctx, runId.toUpperCase())).runId, runId);
  });
});

describe('listRuns', () => {
  before(async () => {
    await createTenant(ctx, { tenantId: 'list_co', name: 'List Co', plan: 'starter' });
    for (let i = 0; i < 5; i++) {
      clock.set(new Date(Date.parse(T0) + i * HOUR));
      const { runId } = await createRun(ctx, runInput({ tenantId: 'list_co', pipelineId: i % 2 ? 'p_odd' : 'p_even' }));
      if (i < 4) await finishRun(ctx, runId, { status: i === 1 ? 'FAILED' : 'COMPLETE', exitCode: i === 1 ? 3 : 0 });
    }
  });

  it('lists newest first, filters by pipeline, status and since, and honours the limit', async () => {
    const all = await listRuns(ctx, { tenantId: 'list_co' });
    assert.equal(all.length, 5);
    assert.deepEqual(
      all.map((r) => r.createdAt.getTime()),
      all.map((r) => r.createdAt.getTime()).sort((a, b) => b - a),
    );
    assert.equal(all[0]!.status, 'PENDING');
    assert.deepEqual(
      (await listRuns(ctx, { tenantId: 'list_co', pipelineId: 'p_odd' })).map((r) => r.pipelineId),
      ['p_odd', 'p_odd'],
    );
    assert.deepEqual(
      (await listRuns(ctx, { tenantId: 'list_co', status: 'FAILED' })).map((r) => r.pipelineId),
      ['p_odd'],
    );
    assert.equal((await listRuns(ctx, { tenantId: 'list_co', limit: 2 })).length, 2);
    assert.equal((await listRuns(ctx, { tenantId: 'list_co', since: new Date(Date.parse(T0) + 3 * HOUR) })).length, 2);
    assert.deepEqual(await listRuns(ctx, { tenantId: 'runs_co', pipelineId: 'p_none' }), []);
  });

  it('refuses an unknown tenant (8), a bad limit (2) and an unknown status (2)', async () => {
    await rejectsWith(listRuns(ctx, { tenantId: 'ghost_co' }), ExitCode.notFound);
    await rejectsWith(listRuns(ctx, { tenantId: 'list_co', limit: 0 }), ExitCode.usage, /limit/);
    await rejectsWith(listRuns(ctx, { tenantId: 'list_co', limit: 1001 }), ExitCode.usage, /limit/);
    await rejectsWith(listRuns(ctx, { tenantId: 'list_co', status: 'DONE' as never }), ExitCode.usage, /status/);
  });

  it("keeps a deleted tenant's history readable", async () => {
    await createTenant(ctx, { tenantId: 'gone_co', name: 'Gone', plan: 'starter' });
    const { runId } = await createRun(ctx, runInput({ tenantId: 'gone_co' }));
    await finishRun(ctx, runId, { status: 'COMPLETE', exitCode: 0 });
    await deleteTenant(ctx, 'gone_co');
    assert.equal((await listRuns(ctx, { tenantId: 'gone_co' })).length, 1);
  });
});

describe('cancel requests', () => {
  it('flags a live run once; the engine sees it', async () => {
    const { runId } = await createRun(ctx, runInput());
    await markRunning(ctx, runId);
    assert.equal(await isCancelRequested(ctx, runId), false);
    const first = await requestCancel(ctx, runId);
    assert.deepEqual([first.changed, first.status], [true, 'RUNNING']);
    assert.equal(await isCancelRequested(ctx, runId), true);
    assert.equal((await requestCancel(ctx, runId)).changed, false);
    assert.equal((await getRun(ctx, runId)).cancelRequested, true);
  });

  it('refuses a run that already finished (2) and an unknown run (8)', async () => {
    const { runId } = await createRun(ctx, runInput());
    await finishRun(ctx, runId, { status: 'COMPLETE', exitCode: 0, rowsProcessed: 3 });
    const err = await rejectsWith(requestCancel(ctx, runId), ExitCode.usage, /already finished \(COMPLETE/);
    assert.equal(err.code, 'CONFLICT');
    assert.equal(await isCancelRequested(ctx, runId), false);
    await rejectsWith(requestCancel(ctx, randomUUID()), ExitCode.notFound);
    await rejectsWith(requestCancel(ctx, '1234'), ExitCode.usage, /invalid run id/);
  });
});
