/**
 * pipeline runs --stats: per pipeline runs, success rate, p50/p95 duration, rows and the last
 * failure, in one statement of each warehouse's SQL. The same history is written to the embedded
 * DuckDB file and to the BigQuery fake (whose ZetaSQL referee refuses what BigQuery would) and
 * must read back the same.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { pipelineStats, type PipelineStats } from '../../src/services/runs/stats.ts';
import { createRun, finishRun, markRunning } from '../../src/services/runs/store.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { manualClock, newWorkspace, withContext, type Clock, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'stats_co';
const OTHER = 'other_co';
const NOW = '2030-01-15T12:00:00.000Z';
const DAY = 86_400_000;

interface SeedRun {
  tenantId?: string;
  pipelineId: string;
  /** Days before NOW the run was created. */
  daysAgo: number;
  status: 'COMPLETE' | 'FAILED' | 'TIMEOUT' | 'CANCELLED' | 'RUNNING';
  durationMs?: number;
  rows?: number;
  error?: string;
}

/** p_a: four successes, a newer failure, an older timeout, one still running, one success outside 7 days. */
const HISTORY: SeedRun[] = [
  { pipelineId: 'p_a', daysAgo: 20, status: 'COMPLETE', durationMs: 100_000, rows: 1000 },
  { pipelineId: 'p_a', daysAgo: 5, status: 'TIMEOUT', durationMs: 6000, rows: 0, error: 'run timed out after 5m' },
  { pipelineId: 'p_a', daysAgo: 3, status: 'COMPLETE', durationMs: 1000, rows: 10 },
  { pipelineId: 'p_a', daysAgo: 3, status: 'COMPLETE', durationMs: 2000, rows: 10 },
  { pipelineId: 'p_a', daysAgo: 3, status: 'COMPLETE', durationMs: 3000, rows: 10 },
  { pipelineId: 'p_a', daysAgo: 3, status: 'COMPLETE', durationMs: 4000, rows: 10 },
  { pipelineId: 'p_a', daysAgo: 2, status: 'FAILED', durationMs: 5000, rows: 3, error: 'step build failed: division by zero\n  at line 3' },
  { pipelineId: 'p_a', daysAgo: 1, status: 'RUNNING' },
  { pipelineId: 'p_b', daysAgo: 1, status: 'CANCELLED', durationMs: 500, rows: 0, error: 'cancelled by a user' },
  { tenantId: OTHER, pipelineId: 'p_a', daysAgo: 1, status: 'FAILED', durationMs: 9000, rows: 0, error: "another tenant's failure" },
];

/** Writes the history through the run store, the clock standing at each run's start and end. */
async function seed(ctx: TestContext, clock: Clock): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const [i, run] of HISTORY.entries()) {
    const runId = randomUUID();
    ids[`${run.tenantId ?? TENANT}/${run.pipelineId}/${run.status}/${run.daysAgo}`] = runId;
    clock.set(new Date(Date.parse(NOW) - run.daysAgo * DAY + i * 60_000));
    await createRun(ctx, {
      runId,
      tenantId: run.tenantId ?? TENANT,
      pipelineId: run.pipelineId,
      trigger: 'manual',
      runDate: '2030-01-01',
      parameters: {},
      timeoutAt: new Date(clock.now().getTime() + 3_600_000),
    });
    await markRunning(ctx, runId);
    if (run.status === 'RUNNING') continue;
    clock.advance(run.durationMs ?? 0);
    await finishRun(ctx, runId, {
      status: run.status,
      exitCode: run.status === 'COMPLETE' ? 0 : 3,
      rowsProcessed: run.rows ?? 0,
      ...(run.error ? { errorMessage: run.error } : {}),
    });
  }
  clock.set(NOW);
  return ids;
}

/** The same assertions on every warehouse. */
function statsSuite(name: string, open: () => Promise<{ root: string; env: string }>) {
  describe(`pipeline stats on ${name}`, () => {
    let root: string;
    let env: string;
    let ids: Record<string, string>;
    const clock = manualClock(NOW);
    const stats = (options: { sinceDays?: number; tenantId?: string; pipelineId?: string } = {}) =>
      withContext(
        root,
        (ctx) =>
          pipelineStats(ctx, {
            tenantId: options.tenantId ?? TENANT,
            since: new Date(Date.parse(NOW) - (options.sinceDays ?? 7) * DAY),
            ...(options.pipelineId ? { pipelineId: options.pipelineId } : {}),
          }),
        { env, clock },
      );

    before(async () => {
      ({ root, env } = await open());
      ids = await withContext(
        root,
        async (ctx) => {
          await createTenant(ctx, { tenantId: TENANT, name: 'Stats', plan: 'scale' });
          await createTenant(ctx, { tenantId: OTHER, name: 'Other', plan: 'scale' });
          return seed(ctx, clock);
        },
        { env, clock },
      );
    });

    it('per pipeline over 7 days: runs, success rate over ended runs, p50/p95 duration, rows and the last failure', async () => {
      const [a, b, ...rest] = await stats();
      assert.equal(rest.length, 0, 'one line per pipeline of the tenant, in id order');
      assert.deepEqual(a, {
        pipelineId: 'p_a',
        runs: 7,
        finished: 6,
        succeeded: 4,
        failed: 2,
        successRate: 4 / 6,
        // Continuous percentiles of 1, 2, 3, 4, 5 and 6 s; the running run has no duration yet.
        p50DurationMs: 3500,
        p95DurationMs: 5750,
        rowsProcessed: 43,
        lastFailure: {
          at: a!.lastFailure!.at,
          runId: ids[`${TENANT}/p_a/FAILED/2`]!,
          status: 'FAILED',
          error: 'step build failed: division by zero',
        },
      } satisfies PipelineStats);
      assert.equal(a!.lastFailure!.at.toISOString(), new Date(Date.parse(NOW) - 2 * DAY + 6 * 60_000).toISOString());
      assert.deepEqual(b, {
        pipelineId: 'p_b',
        runs: 1,
        finished: 1,
        succeeded: 0,
        failed: 0,
        successRate: 0,
        p50DurationMs: 500,
        p95DurationMs: 500,
        rowsProcessed: 0,
        lastFailure: null,
      } satisfies PipelineStats);
    });

    it('a longer window takes older runs in, a pipeline filter keeps one, a quiet tenant has none', async () => {
      const [a] = await stats({ sinceDays: 30 });
      assert.equal(a!.runs, 8);
      assert.equal(a!.rowsProcessed, 1043);
      assert.equal(a!.successRate, 5 / 7);
      assert.deepEqual(
        (await stats({ pipelineId: 'p_b' })).map((s) => s.pipelineId),
        ['p_b'],
      );
      assert.deepEqual(await stats({ sinceDays: 0 }), []);
      const other = await stats({ tenantId: OTHER });
      assert.equal(other.length, 1);
      assert.equal(other[0]!.lastFailure?.error, "another tenant's failure");
    });

    it('refuses an unknown tenant (exit 8) and a malformed pipeline id (exit 2)', async () => {
      await rejectsWith(stats({ tenantId: 'nobody_co' }), 8, /tenant "nobody_co" not found/);
      await rejectsWith(stats({ pipelineId: "p_a' OR '1'='1" }), 2, /pipeline id/);
    });
  });
}

after(cleanupAll);

statsSuite('the embedded DuckDB warehouse', async () => {
  const root = await newWorkspace('stats-duckdb');
  await withContext(root, (ctx) => bootstrap(ctx));
  return { root, env: 'local' };
});

let fakes: CloudFakes | undefined;
after(async () => fakes?.stop());
statsSuite('BigQuery (the fake, with its ZetaSQL referee)', async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  const root = await newWorkspace('stats-bigquery');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
  await withContext(root, (ctx) => bootstrap(ctx), { env: 'cloud' });
  return { root, env: 'cloud' };
});
