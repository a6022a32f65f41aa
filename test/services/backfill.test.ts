/**
 * pipeline backfill in process on the local engine: one run per run date, oldest first, through
 * runPipeline; dates whose latest run completed are skipped (resumable), --force runs them again,
 * a failed date does not stop the others, a used-up quota or a lock held too long stops the rest.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import {
  backfillFailure,
  planBackfill,
  runBackfill,
  type BackfillInput,
  type BackfillObserver,
  type BackfillResult,
} from '../../src/services/pipelines/backfill.ts';
import { admitRun } from '../../src/services/runs/admission.ts';
import { findRunsByRunDate, listRuns } from '../../src/services/runs/store.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const WEEK = { from: '2025-01-01', to: '2025-01-07' };
/** A one-step pipeline whose run fails on 2025-01-03 (a text that is no number) until its SQL is fixed. */
const BY_DAY = 'p_by_day';
const FAILING_SQL = `SELECT CAST({{ run_date }} AS DATE) AS day,
  CAST(CASE WHEN CAST({{ run_date }} AS VARCHAR) = '2025-01-03' THEN 'not a number' ELSE '1' END AS INTEGER) AS n\n`;
const FIXED_SQL = 'SELECT CAST({{ run_date }} AS DATE) AS day, 1 AS n\n';

let root: string;

before(async () => {
  root = await newBootstrappedWorkspace('backfill');
  await installExample(root);
  const tenantDir = path.join(root, 'configs', TENANT);
  await writeFile(
    path.join(tenantDir, 'pipelines', `${BY_DAY}.yml`),
    `pipeline_id: ${BY_DAY}\ndescription: one row per run date\ntimeout: 5m\nsteps:\n  - name: build_day\n    type: transform\n    sql: sql/by_day.sql\n    destination: { table: by_day, write_mode: append }\n`,
  );
  await mkdir(path.join(tenantDir, 'sql'), { recursive: true });
  await setByDaySql(FAILING_SQL);
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
});
after(cleanupAll);

const setByDaySql = (sql: string) => writeFile(path.join(root, 'configs', TENANT, 'sql', 'by_day.sql'), sql);

/** Plans and runs a backfill as the command does, with the observer's events recorded. */
async function backfill(input: Partial<BackfillInput> & { pipelineId: string }): Promise<{ result: BackfillResult; events: string[] }> {
  const events: string[] = [];
  const observer: BackfillObserver = {
    dateStarted: (i) => events.push(`start ${i}`),
    dateFinished: (i, date) => events.push(`finish ${i} ${date.status}`),
  };
  const result = await withContext(root, async (ctx) => {
    const full = { tenantId: TENANT, ...WEEK, lockRetryMs: 20, ...input };
    return runBackfill(ctx, full, await planBackfill(ctx, full), observer);
  });
  return { result, events };
}

const runRows = (pipelineId: string) => withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs, { pipeline_id: pipelineId }));
const statuses = (result: BackfillResult) => result.dates.map((d) => `${d.runDate} ${d.status}`);

describe('pipeline backfill on the local engine', () => {
  it('runs the demo pipeline once per date of a week, oldest first, and a second call skips all seven', async () => {
    const { result, events } = await backfill({ pipelineId: 'p_usage_daily' });
    assert.equal(result.exitCode, 0, JSON.stringify(result.dates.map((d) => d.error)));
    assert.deepEqual(result.counts, { complete: 7, failed: 0, skipped: 0, notRun: 0 });
    assert.deepEqual(
      result.dates.map((d) => d.runDate),
      ['2025-01-01', '2025-01-02', '2025-01-03', '2025-01-04', '2025-01-05', '2025-01-06', '2025-01-07'],
    );
    assert.ok(result.dates.every((d) => d.runId && d.durationMs !== null && d.exitCode === 0));
    // The first date ingests the whole week's exports (an incremental cursor); later dates add none.
    assert.equal(result.dates[0]!.rowsProcessed! > 0, true);
    assert.deepEqual(events.slice(0, 4), ['start 0', 'finish 0 COMPLETE', 'start 1', 'finish 1 COMPLETE']);

    // Each run carries its own run date, and they started in date order.
    const runs = await withContext(root, (ctx) => listRuns(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', limit: 100 }));
    assert.deepEqual(
      runs.map((r) => r.runDate).reverse(),
      result.dates.map((d) => d.runDate),
    );
    assert.ok(runs.every((r) => r.status === 'COMPLETE' && r.trigger === 'manual'));

    const before = await runRows('p_usage_daily');
    const again = await backfill({ pipelineId: 'p_usage_daily' });
    assert.equal(again.result.exitCode, 0);
    assert.deepEqual(again.result.counts, { complete: 0, failed: 0, skipped: 7, notRun: 0 });
    assert.deepEqual(
      again.result.dates.map((d) => d.runId),
      result.dates.map((d) => d.runId),
      'each skipped date names the run that completed it',
    );
    assert.ok(!again.events.some((e) => e.startsWith('start')), 'no date started');
    assert.equal(await runRows('p_usage_daily'), before, 'no run row was written');
  });

  it('a dry-run plan lists what would run and skip, and --force runs completed dates again', async () => {
    const range = { from: '2025-01-06', to: '2025-01-09' };
    const plan = await withContext(root, (ctx) => planBackfill(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', ...range }));
    assert.deepEqual(
      plan.dates.map((d) => `${d.runDate} ${d.action} ${d.latestRun?.status ?? '-'}`),
      ['2025-01-06 skip COMPLETE', '2025-01-07 skip COMPLETE', '2025-01-08 run -', '2025-01-09 run -'],
    );
    const before = await runRows('p_usage_daily');
    const forced = await backfill({ pipelineId: 'p_usage_daily', from: '2025-01-06', to: '2025-01-07', force: true });
    assert.deepEqual(forced.result.counts, { complete: 2, failed: 0, skipped: 0, notRun: 0 });
    assert.equal(await runRows('p_usage_daily'), before + 2);
    const history = await withContext(root, (ctx) =>
      findRunsByRunDate(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', from: '2025-01-06', to: '2025-01-06' }),
    );
    assert.equal(history.length, 2, 'the forced run sits beside the first one');
    assert.equal(history[0]!.runId, forced.result.dates[0]!.runId, 'newest first');
  });

  it('a failing date fails alone: the other dates run, the backfill exits 3, and a second call after the fix runs only that date', async () => {
    const { result } = await backfill({ pipelineId: BY_DAY, from: '2025-01-01', to: '2025-01-05' });
    assert.deepEqual(statuses(result), [
      '2025-01-01 COMPLETE',
      '2025-01-02 COMPLETE',
      '2025-01-03 FAILED',
      '2025-01-04 COMPLETE',
      '2025-01-05 COMPLETE',
    ]);
    assert.equal(result.exitCode, 3);
    assert.equal(result.stoppedBy, null);
    assert.match(result.dates[2]!.error ?? '', /not a number/);
    const failure = withContext(root, async (ctx) => {
      throw backfillFailure(ctx, result);
    });
    const err = await rejectsWith(failure, 3, /backfill of p_by_day: 1 of 5 dates failed \(2025-01-03\)/);
    assert.match(err.suggestion ?? '', new RegExp(`pipeline logs ${result.dates[2]!.runId}.*run the same backfill again`));
    assert.deepEqual((err.data?.backfill as BackfillResult).dates.length, 5);

    await setByDaySql(FIXED_SQL);
    const resumed = await backfill({ pipelineId: BY_DAY, from: '2025-01-01', to: '2025-01-05' });
    assert.deepEqual(statuses(resumed.result), [
      '2025-01-01 SKIPPED',
      '2025-01-02 SKIPPED',
      '2025-01-03 COMPLETE',
      '2025-01-04 SKIPPED',
      '2025-01-05 SKIPPED',
    ]);
    assert.equal(resumed.result.exitCode, 0);
    const rows = await withWarehouse(root, (w) => w.select(TENANT, 'by_day', { orderBy: [['day', 'asc']] }));
    assert.equal(rows.length, 5, 'one row appended per completed date');
  });

  it('stops at a used-up daily quota (exit 6): later dates are reported not run, and run once the quota allows', async () => {
    await setByDaySql(FIXED_SQL);
    const used = await withContext(root, (ctx) => listRuns(ctx, { tenantId: TENANT, limit: 1000 }));
    await withWarehouse(root, (w) => w.update(METADATA_DATASET, T.quotas, { daily_limit: used.length + 2 }, { tenant_id: TENANT }));
    const range = { from: '2025-02-01', to: '2025-02-05' };
    const { result } = await backfill({ pipelineId: BY_DAY, ...range });
    assert.deepEqual(statuses(result), [
      '2025-02-01 COMPLETE',
      '2025-02-02 COMPLETE',
      '2025-02-03 REFUSED',
      '2025-02-04 NOT_RUN',
      '2025-02-05 NOT_RUN',
    ]);
    assert.equal(result.exitCode, 6);
    assert.equal(result.stoppedBy?.code, 'QUOTA_EXCEEDED');
    assert.equal(result.dates[2]!.runId, null, 'a refused date has no run row');
    assert.deepEqual(result.counts, { complete: 2, failed: 0, skipped: 0, notRun: 2 });
    const err = await rejectsWith(
      withContext(root, async (ctx) => {
        throw backfillFailure(ctx, result);
      }),
      6,
      /backfill of p_by_day stopped at 2025-02-03: .*quota.* \(2 later dates not run\)/i,
    );
    assert.equal(err.code, 'QUOTA_EXCEEDED');

    await withWarehouse(root, (w) => w.update(METADATA_DATASET, T.quotas, { daily_limit: 1000 }, { tenant_id: TENANT }));
    const resumed = await backfill({ pipelineId: BY_DAY, ...range });
    assert.deepEqual(resumed.result.counts, { complete: 3, failed: 0, skipped: 2, notRun: 0 });
  });

  it('waits while another run holds the pipeline lock, and stops with exit 5 when it stays held', async () => {
    await setByDaySql(FIXED_SQL);
    const holder = await withContext(root, (ctx) =>
      admitRun(ctx, { tenantId: TENANT, pipelineId: BY_DAY, runId: '00000000-0000-4000-8000-000000000001', timeoutMs: 60_000 }),
    );
    let released = false;
    try {
      const held = await backfill({ pipelineId: BY_DAY, from: '2025-03-01', to: '2025-03-02', lockWaitMs: 150 });
      assert.deepEqual(statuses(held.result), ['2025-03-01 REFUSED', '2025-03-02 NOT_RUN']);
      assert.equal(held.result.exitCode, 5);
      assert.equal(held.result.stoppedBy?.code, 'LOCK_HELD');

      // Released while the next backfill waits: its first date then runs.
      setTimeout(() => {
        released = true;
        void holder.release('succeeded');
      }, 300);
      const waited = await backfill({ pipelineId: BY_DAY, from: '2025-03-01', to: '2025-03-02', lockWaitMs: 30_000 });
      assert.deepEqual(statuses(waited.result), ['2025-03-01 COMPLETE', '2025-03-02 COMPLETE']);
    } finally {
      if (!released) await holder.release('succeeded');
    }
  });

  it('an interrupt between dates runs no later date, exits 3 and is resumed by the next call', async () => {
    await setByDaySql(FIXED_SQL);
    const interrupt = new AbortController();
    const range = { from: '2025-04-01', to: '2025-04-03' };
    const result = await withContext(root, async (ctx) => {
      const input = { tenantId: TENANT, pipelineId: BY_DAY, ...range, signal: interrupt.signal };
      // Ctrl-C as the first date ends.
      return runBackfill(ctx, input, await planBackfill(ctx, input), { dateFinished: () => interrupt.abort() });
    });
    assert.deepEqual(statuses(result), ['2025-04-01 COMPLETE', '2025-04-02 NOT_RUN', '2025-04-03 NOT_RUN']);
    assert.equal(result.exitCode, 3);
    assert.equal(result.stoppedBy?.code, 'INTERRUPTED');
    const err = await rejectsWith(
      withContext(root, async (ctx) => {
        throw backfillFailure(ctx, result);
      }),
      3,
      /backfill of p_by_day stopped before 2025-04-02: interrupted \(2 dates not run\)/,
    );
    assert.match(err.suggestion ?? '', /run the same backfill again/);
    const resumed = await backfill({ pipelineId: BY_DAY, ...range });
    assert.deepEqual(resumed.result.counts, { complete: 2, failed: 0, skipped: 1, notRun: 0 });
  });

  it('refuses bad ranges and options with exit 2, an unknown tenant or pipeline with exit 8, before any run', async () => {
    const before = await runRows(BY_DAY);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const refused: Array<[Partial<BackfillInput>, RegExp]> = [
      [{ from: '2025-01-07', to: '2025-01-01' }, /--from 2025-01-07 is after --to 2025-01-01/],
      [{ from: '2025-02-30', to: '2025-03-01' }, /--from "2025-02-30" is not a calendar date/],
      [{ from: '2025-01-01', to: '01/07/2025' }, /--to "01\/07\/2025" is not a calendar date/],
      [{ from: '2000-01-01', to: '2025-01-01' }, /is 9133 days; at most 3660 can be run at once/],
      [{ from: '2025-01-01', to: tomorrow }, new RegExp(`--to ${tomorrow} is after today`)],
      [{ concurrency: 2 }, /--concurrency 2: the runs of one pipeline hold its run lock one at a time/],
      [{ concurrency: 0 }, /--concurrency must be a whole number of at least 1/],
      [{ remote: true }, /--remote runs on Cloud Run Jobs; "local" is a local environment/],
    ];
    for (const [input, message] of refused) {
      await rejectsWith(
        withContext(root, (ctx) => planBackfill(ctx, { tenantId: TENANT, pipelineId: BY_DAY, ...WEEK, ...input })),
        2,
        message,
      );
    }
    await rejectsWith(
      withContext(root, (ctx) => planBackfill(ctx, { tenantId: 'nobody_co', pipelineId: BY_DAY, ...WEEK })),
      8,
      /tenant "nobody_co" not found/,
    );
    await rejectsWith(
      withContext(root, (ctx) => planBackfill(ctx, { tenantId: TENANT, pipelineId: 'p_missing', ...WEEK })),
      8,
      /pipeline "p_missing" not found/,
    );
    assert.equal(await runRows(BY_DAY), before, 'no run row was written');
  });
});
