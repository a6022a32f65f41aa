/**
 * Black-box tests of the run, quota and maintenance commands against the built CLI. Runs are
 * recorded in process (as the engine records them), then read and changed through the CLI.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileLock } from '../../src/backends/lock/files.ts';
import { runLockKey } from '../../src/services/runs/admission.ts';
import { createRun, finishRun, finishStep, getRun, markRunning, skipStep, startStep } from '../../src/services/runs/store.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const HOUR = 3_600_000;
let ws: string;
/** A finished run with three steps, a run still going, and one left behind past its timeout. */
const done = randomUUID();
const live = randomUUID();
const stuck = randomUUID();

const cli = (args: string[]) => runCli(args, { cwd: ws });
const json = <R>(args: string[]) => runJson<R>(args, { cwd: ws });

async function record(runId: string, pipelineId: string, timeoutAt: Date) {
  await withContext(ws, async (ctx) => {
    await createRun(ctx, {
      runId,
      tenantId: 'acme_corp',
      pipelineId,
      trigger: 'manual',
      runDate: '2030-01-01',
      parameters: { k: 'v' },
      timeoutAt,
    });
    await markRunning(ctx, runId);
  });
}

before(async () => {
  ws = await newBootstrappedWorkspace('cli-runs');
  await withContext(ws, async (ctx) => {
    await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' });
  });
  await record(done, 'p_usage', new Date(Date.now() + HOUR));
  await withContext(ws, async (ctx) => {
    const base = { runId: done, tenantId: 'acme_corp', pipelineId: 'p_usage' };
    const ingest = await startStep(ctx, { ...base, stepName: 'ingest_usage', stepType: 'ingest', stepIndex: 0 });
    await finishStep(ctx, ingest, { status: 'COMPLETE', rowsIn: 120, rowsOut: 118, bytesProcessed: 40_960 });
    const dq = await startStep(ctx, { ...base, stepName: 'check_usage', stepType: 'dq', stepIndex: 1 });
    await finishStep(ctx, dq, { status: 'FAILED', rowsIn: 118, rowsOut: 118, bytesProcessed: 0, errorMessage: 'not_null(date): 2 rows' });
    await skipStep(ctx, { ...base, stepName: 'build_fct', stepType: 'transform', stepIndex: 2, reason: 'check_usage failed' });
    await finishRun(ctx, done, { status: 'FAILED', exitCode: 4, errorMessage: 'data quality failed: check_usage', rowsProcessed: 118 });
  });
  await record(live, 'p_live', new Date(Date.now() + HOUR));
  await record(stuck, 'p_stuck', new Date(Date.now() - 60_000));
});
after(cleanupAll);

describe('pipeline runs / status / logs', () => {
  it('runs lists the tenant runs newest first, with filters', async () => {
    const r = await json<Array<{ runId: string; status: string; pipelineId: string }>>(['pipeline', 'runs', '--tenant', 'acme_corp']);
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual(
      r.envelope.result?.map((x) => x.runId),
      [stuck, live, done],
    );
    const failed = await json<Array<{ runId: string }>>(['pipeline', 'runs', '--tenant', 'acme_corp', '--status', 'FAILED']);
    assert.deepEqual(
      failed.envelope.result?.map((x) => x.runId),
      [done],
    );
    const one = await json<unknown[]>(['pipeline', 'runs', '--tenant', 'acme_corp', '--pipeline', 'p_live', '--limit', '1']);
    assert.equal(one.envelope.result?.length, 1);

    const text = await cli(['pipeline', 'runs', '--tenant', 'acme_corp']);
    assert.equal(text.exitCode, 0, show(text));
    assert.match(text.stdout, /^RUN ID\s+PIPELINE\s+STATUS\s+TRIGGER\s+STARTED\s+DURATION\s+ROWS\s+ERROR/m);
    assert.ok(text.stdout.includes(done) && text.stdout.includes('data quality failed: check_usage'), text.stdout);
  });

  it('status shows the record and a step summary; --json carries run and steps', async () => {
    const r = await json<{
      run: { runId: string; status: string; exitCode: number; parameters: object };
      steps: Array<{ stepName: string; status: string }>;
    }>(['pipeline', 'status', done]);
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual([r.envelope.result?.run.status, r.envelope.result?.run.exitCode], ['FAILED', 4]);
    assert.deepEqual(r.envelope.result?.run.parameters, { k: 'v' });
    assert.deepEqual(
      r.envelope.result?.steps.map((s) => [s.stepName, s.status]),
      [
        ['ingest_usage', 'COMPLETE'],
        ['check_usage', 'FAILED'],
        ['build_fct', 'SKIPPED'],
      ],
    );
    const text = await cli(['pipeline', 'status', done]);
    assert.match(text.stdout, /^status:\s+FAILED$/m);
    assert.match(text.stdout, /build_fct\s+transform\s+SKIPPED.*check_usage failed/);
  });

  it('logs prints rows in/out, bytes and errors per step, then the run error', async () => {
    const text = await cli(['pipeline', 'logs', done]);
    assert.equal(text.exitCode, 0, show(text));
    assert.match(text.stdout, /ROWS IN\s+ROWS OUT\s+BYTES\s+ERROR/);
    assert.match(text.stdout, /ingest_usage\s+ingest\s+COMPLETE\s+\S+\s+\S+\s+120\s+118\s+40\.0KiB/);
    assert.match(text.stdout, /not_null\(date\): 2 rows/);
    assert.match(text.stdout, /Run error \(exit 4\):\ndata quality failed: check_usage/);
    const r = await json<{ steps: unknown[] }>(['pipeline', 'logs', done]);
    assert.equal(r.envelope.result?.steps.length, 3);
  });

  it('bad input: a malformed run id exits 2, an unknown run 8, an unknown tenant 8, a bad limit 2', async () => {
    const bad = await json(['pipeline', 'status', 'not-a-uuid']);
    assert.equal(bad.exitCode, 2, show(bad));
    assert.match(bad.envelope.error?.message ?? '', /invalid run id "not-a-uuid"/);
    for (const verb of ['status', 'logs', 'cancel']) {
      const unknown = await json(['pipeline', verb, randomUUID()]);
      assert.equal(unknown.exitCode, 8, `${verb}\n${show(unknown)}`);
      assert.equal(unknown.envelope.error?.code, 'NOT_FOUND');
    }
    const noTenant = await json(['pipeline', 'runs', '--tenant', 'ghost_co']);
    assert.equal(noTenant.exitCode, 8, show(noTenant));
    const badLimit = await json(['pipeline', 'runs', '--tenant', 'acme_corp', '--limit', '0']);
    assert.equal(badLimit.exitCode, 2, show(badLimit));
    const badStatus = await json(['pipeline', 'runs', '--tenant', 'acme_corp', '--status', 'DONE']);
    assert.equal(badStatus.exitCode, 2, show(badStatus));
  });
});

describe('pipeline cancel', () => {
  it('flags a live run and says it stops at its next checkpoint', async () => {
    const text = await cli(['pipeline', 'cancel', live]);
    assert.equal(text.exitCode, 0, show(text));
    assert.match(text.stdout, /next checkpoint/);
    const again = await json<{ changed: boolean }>(['pipeline', 'cancel', live]);
    assert.equal(again.envelope.result?.changed, false);
    assert.equal(await withContext(ws, async (ctx) => (await getRun(ctx, live)).cancelRequested), true);
  });

  it('refuses a run that already finished with exit 2', async () => {
    const r = await json(['pipeline', 'cancel', done]);
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error?.message ?? '', /already finished \(FAILED/);
  });
});

describe('quota', () => {
  it('show prints limits, use and the reset time', async () => {
    const r = await json<{ dailyLimit: number; running: number; resetsAt: string }>(['quota', 'show', '--tenant', 'acme_corp']);
    assert.equal(r.exitCode, 0, show(r));
    assert.equal(r.envelope.result?.dailyLimit, 25);
    assert.match(r.envelope.result?.resetsAt ?? '', /T00:00:00\.000Z$/);
    const text = await cli(['quota', 'show', '--tenant', 'acme_corp']);
    assert.match(text.stdout, /^runs today:\s+0 \/ 25 \(25 left\)$/m);
    assert.equal((await json(['quota', 'show', '--tenant', 'ghost_co'])).exitCode, 8);
  });

  it('reset needs --yes without a TTY, and --tenant or --all', async () => {
    const noYes = await json(['quota', 'reset', '--tenant', 'acme_corp']);
    assert.equal(noYes.exitCode, 2, show(noYes));
    assert.match(noYes.envelope.error?.suggestion ?? '', /--yes/);
    const neither = await json(['quota', 'reset', '--yes']);
    assert.equal(neither.exitCode, 2, show(neither));
    const both = await json(['quota', 'reset', '--tenant', 'acme_corp', '--all', '--yes']);
    assert.equal(both.exitCode, 2, show(both));
    assert.equal((await json(['quota', 'reset', '--tenant', 'ghost_co', '--yes'])).exitCode, 8);

    const one = await json<{ count: number; tenants: string[] }>(['quota', 'reset', '--tenant', 'acme_corp', '--yes']);
    assert.equal(one.exitCode, 0, show(one));
    assert.deepEqual(one.envelope.result?.tenants, ['acme_corp']);
    const all = await json<{ count: number }>(['quota', 'reset', '--all', '--yes']);
    assert.equal(all.envelope.result?.count, 1);
  });
});

describe('maintenance cleanup-orphans', () => {
  it('--dry-run reports, then a real run ends the stuck run, frees its lock and staging; again does nothing', async () => {
    const lock = new FileLock({ dir: path.join(ws, '.convergence', 'locks') });
    const key = runLockKey('acme_corp', 'p_stuck');
    assert.ok((await lock.acquire(key, { owner: 'crashed', ttlMs: HOUR, info: { run_id: stuck } })).acquired);
    await mkdir(path.join(ws, '.convergence', 'staging', done, 'ingest_usage'), { recursive: true });

    const dry = await json<{ dryRun: boolean; timedOut: Array<{ runId: string }> }>(['maintenance', 'cleanup-orphans', '--dry-run']);
    assert.equal(dry.exitCode, 0, show(dry));
    assert.deepEqual(
      dry.envelope.result?.timedOut.map((o) => o.runId),
      [stuck],
    );
    assert.equal(await withContext(ws, async (ctx) => (await getRun(ctx, stuck)).status), 'RUNNING');

    const text = await cli(['maintenance', 'cleanup-orphans']);
    assert.equal(text.exitCode, 0, show(text));
    assert.match(text.stdout, /Ended 1 orphaned run\(s\) as TIMEOUT/);
    assert.ok(text.stdout.includes(stuck));
    assert.equal(await withContext(ws, async (ctx) => (await getRun(ctx, stuck)).status), 'TIMEOUT');
    assert.equal(await lock.inspect(key), undefined);
    assert.equal(existsSync(path.join(ws, '.convergence', 'staging', done)), false);

    const again = await json<{ timedOut: unknown[]; locksReleased: unknown[]; stagingRemoved: unknown[] }>([
      'maintenance',
      'cleanup-orphans',
    ]);
    assert.deepEqual(
      [again.envelope.result?.timedOut, again.envelope.result?.locksReleased, again.envelope.result?.stagingRemoved],
      [[], [], []],
    );
    assert.equal(await withContext(ws, async (ctx) => (await getRun(ctx, live)).status), 'RUNNING');
  });

  it('refuses a malformed --older-than with exit 2', async () => {
    const r = await json(['maintenance', 'cleanup-orphans', '--older-than', 'soon']);
    assert.equal(r.exitCode, 2, show(r));
  });
});
