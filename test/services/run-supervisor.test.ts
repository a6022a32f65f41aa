import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createRun, markRunning, requestCancel } from '../../src/services/runs/store.ts';
import { RunSupervisor, type SuperviseInput } from '../../src/services/runs/supervisor.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const HOUR = 3_600_000;
let ctx: TestContext;
const supervisors: RunSupervisor[] = [];

/** The admission's side the supervisor uses: its checkpoint, which throws once the lock is lost. */
function admission(lost?: Error): SuperviseInput['admission'] {
  return {
    checkpoint: async () => {
      if (lost) throw lost;
    },
  };
}

function supervise(input: Partial<SuperviseInput> = {}): RunSupervisor {
  const supervisor = new RunSupervisor(ctx, {
    runId: randomUUID(),
    timeoutMs: HOUR,
    timeoutText: '1h',
    admission: admission(),
    ...input,
  });
  supervisors.push(supervisor);
  return supervisor;
}

async function stopped(supervisor: RunSupervisor) {
  // The supervisor's timers do not hold the process open (a finished CLI must exit): this wait does.
  const keepAlive = setInterval(() => undefined, 1_000);
  try {
    if (!supervisor.signal.aborted) await once(supervisor.signal, 'abort');
  } finally {
    clearInterval(keepAlive);
  }
  return supervisor.stopReason();
}

before(async () => {
  ctx = await openContext(await newBootstrappedWorkspace('supervisor'));
  await createTenant(ctx, { tenantId: 'super_co', name: 'Supervised', plan: 'starter' });
});
after(async () => {
  for (const s of supervisors) s.close();
  await ctx?.close();
  await cleanupAll();
});

describe('RunSupervisor', () => {
  it('runs on until something stops it', () => {
    const supervisor = supervise();
    assert.equal(supervisor.signal.aborted, false);
    assert.equal(supervisor.stopReason(), undefined);
  });

  it("stops as CANCELLED on the caller's signal, also one aborted before it started", async () => {
    const caller = new AbortController();
    const supervisor = supervise({ signal: caller.signal });
    caller.abort();
    assert.deepEqual(await stopped(supervisor), { status: 'CANCELLED', message: 'the run was interrupted' });

    const early = new AbortController();
    early.abort();
    assert.deepEqual(supervise({ signal: early.signal }).stopReason(), { status: 'CANCELLED', message: 'the run was interrupted' });
  });

  it('stops as TIMEOUT after the timeout, naming it as the pipeline wrote it', async () => {
    const supervisor = supervise({ timeoutMs: 20, timeoutText: '20ms' });
    assert.deepEqual(await stopped(supervisor), { status: 'TIMEOUT', message: 'the run exceeded its timeout of 20ms' });
  });

  it('stops as CANCELLED once `pipeline cancel` is recorded on the run row', async () => {
    const runId = randomUUID();
    await createRun(ctx, {
      runId,
      tenantId: 'super_co',
      pipelineId: 'p_main',
      trigger: 'manual',
      runDate: '2030-04-01',
      parameters: {},
      timeoutAt: new Date(Date.now() + HOUR),
    });
    await markRunning(ctx, runId);
    const supervisor = supervise({ runId });
    await requestCancel(ctx, runId);
    assert.deepEqual(await stopped(supervisor), { status: 'CANCELLED', message: 'the run was cancelled (pipeline cancel)' });
  });

  it('stops as FAILED when the run lock is lost', async () => {
    const supervisor = supervise({ admission: admission(new Error('taken over by run 42')) });
    assert.deepEqual(await stopped(supervisor), { status: 'FAILED', message: 'the run lost its lock: taken over by run 42' });
  });

  it('keeps the first reason, and once closed no longer follows the caller', async () => {
    const caller = new AbortController();
    const first = supervise({ signal: caller.signal, timeoutMs: 1, timeoutText: '1ms' });
    assert.equal((await stopped(first))?.status, 'TIMEOUT');
    caller.abort();
    assert.equal(first.stopReason()?.status, 'TIMEOUT');

    const other = new AbortController();
    const closed = supervise({ signal: other.signal });
    closed.close();
    other.abort();
    assert.equal(closed.signal.aborted, false);
  });
});
