/**
 * `pipeline backfill` and `pipeline runs --stats` as a user runs them, against the built CLI on
 * the demo tenant: a week of dates, a second call that skips them all, one listr row per date in
 * the plain (non-TTY) output, the --json envelope, and the refusals with their exit codes.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installExample } from '../../src/services/example.ts';
import type { BackfillPlan, BackfillResult } from '../../src/services/pipelines/backfill.ts';
import type { PipelineStats } from '../../src/services/runs/stats.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const WEEK = ['--from', '2025-01-01', '--to', '2025-01-07'];
let root: string;

before(async () => {
  root = await newBootstrappedWorkspace('cli-backfill');
  await installExample(root);
  // Fails on its second date: a text that is no number.
  await writeFile(
    path.join(root, 'configs', TENANT, 'pipelines', 'p_by_day.yml'),
    'pipeline_id: p_by_day\ntimeout: 5m\nsteps:\n  - name: build_day\n    type: transform\n    sql: sql/by_day.sql\n    destination: { table: by_day, write_mode: append }\n',
  );
  await writeFile(
    path.join(root, 'configs', TENANT, 'sql', 'by_day.sql'),
    "SELECT CAST(CASE WHEN CAST({{ run_date }} AS VARCHAR) = '2025-01-02' THEN 'not a number' ELSE '1' END AS INTEGER) AS n\n",
  );
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
});
after(cleanupAll);

const cli = (args: string[]) => runCli(args, { cwd: root, timeoutMs: 300_000 });
const json = <R>(args: string[]) => runJson<R>(args, { cwd: root, timeoutMs: 300_000 });

describe('pipeline backfill (built CLI)', () => {
  it('runs the demo pipeline for a week with a row per date, then a second call skips all seven', async () => {
    const r = await cli(['pipeline', 'backfill', 'p_usage_daily', '--tenant', TENANT, ...WEEK]);
    assert.equal(r.exitCode, 0, show(r));
    for (const day of ['01', '02', '03', '04', '05', '06', '07']) {
      assert.match(r.stderr, new RegExp(`2025-01-${day} COMPLETE — run [0-9a-f-]{36}, [\\d,]+ rows`), show(r));
    }
    assert.match(
      r.stdout,
      /Backfill of p_usage_daily for acme_corp, 2025-01-01 to 2025-01-07: 7 complete, 0 failed, 0 skipped, 0 not run\./,
    );
    assert.match(r.stdout, /DATE\s+STATUS\s+RUN ID\s+ROWS\s+DURATION\s+ERROR/);
    assert.equal(r.stdout.match(/^2025-01-0\d\s+COMPLETE\s/gm)?.length, 7, show(r));

    const again = await json<BackfillResult>(['pipeline', 'backfill', 'p_usage_daily', '--tenant', TENANT, ...WEEK]);
    assert.equal(again.exitCode, 0, show(again));
    assert.equal(again.stderr, '', 'with --json the stage list is silent');
    const result = again.envelope.result!;
    assert.deepEqual(result.counts, { complete: 0, failed: 0, skipped: 7, notRun: 0 });
    assert.ok(result.dates.every((d) => d.status === 'SKIPPED' && d.runId));
  });

  it('--dry-run lists what it would run and skip, and runs nothing', async () => {
    const r = await cli([
      'pipeline',
      'backfill',
      'p_usage_daily',
      '--tenant',
      TENANT,
      '--from',
      '2025-01-06',
      '--to',
      '2025-01-08',
      '--dry-run',
    ]);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /2025-01-06 to 2025-01-08: 1 to run, 2 to skip; nothing was run\./);
    assert.match(r.stdout, /^2025-01-08\s+run\s+-$/m);
    assert.match(r.stdout, /^2025-01-06\s+skip\s+[0-9a-f-]{36} COMPLETE$/m);
    const plan = await json<BackfillPlan>([
      'pipeline',
      'backfill',
      'p_usage_daily',
      '--tenant',
      TENANT,
      '--from',
      '2025-01-08',
      '--to',
      '2025-01-08',
      '--dry-run',
    ]);
    assert.deepEqual(plan.envelope.result!.dates, [{ runDate: '2025-01-08', action: 'run', latestRun: null }]);
  });

  it('exits 3 when a date failed, after running the others, with every date in the --json error', async () => {
    const r = await cli(['pipeline', 'backfill', 'p_by_day', '--tenant', TENANT, '--from', '2025-01-01', '--to', '2025-01-03']);
    assert.equal(r.exitCode, 3, show(r));
    assert.match(r.stdout, /^2025-01-02\s+FAILED\s/m);
    assert.match(r.stdout, /^2025-01-03\s+COMPLETE\s/m);
    assert.match(r.stderr, /Error: backfill of p_by_day: 1 of 3 dates failed \(2025-01-02\)/);
    assert.match(r.stderr, /Try: see `convergence pipeline logs [0-9a-f-]{36}`; after fixing the cause, run the same backfill again/);

    const again = await json(['pipeline', 'backfill', 'p_by_day', '--tenant', TENANT, '--from', '2025-01-01', '--to', '2025-01-03']);
    assert.equal(again.exitCode, 3, show(again));
    const error = again.envelope.error!;
    assert.equal(error.code, 'BACKFILL_FAILED');
    const dates = (error.data as { backfill: BackfillResult }).backfill.dates;
    assert.deepEqual(
      dates.map((d) => d.status),
      ['SKIPPED', 'FAILED', 'SKIPPED'],
    );
  });

  it('refuses a backwards range, a non-date, --concurrency 2 and a long range without --yes (exit 2), writing nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--from', '2025-01-07', '--to', '2025-01-01'], /--from 2025-01-07 is after --to 2025-01-01/],
      [['--from', '2025-1-7', '--to', '2025-01-08'], /--from "2025-1-7" is not a calendar date/],
      [[...WEEK, '--concurrency', '2'], /--concurrency 2: the runs of one pipeline hold its run lock one at a time/],
      [['--from', '2023-01-01', '--to', '2024-12-31'], /refusing to backfill 731 dates without confirmation/],
    ];
    for (const [flags, message] of cases) {
      const r = await cli(['pipeline', 'backfill', 'p_by_day', '--tenant', TENANT, ...flags]);
      assert.equal(r.exitCode, 2, show(r));
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Try: /);
    }
    const stats = await json<PipelineStats[]>([
      'pipeline',
      'runs',
      '--tenant',
      TENANT,
      '--stats',
      '--pipeline',
      'p_by_day',
      '--since',
      '3650d',
    ]);
    assert.equal(stats.envelope.result![0]!.runs, 4, 'only the runs of the earlier test');
  });
});

describe('pipeline runs --stats (built CLI)', () => {
  it('prints one line per pipeline with success rate, percentiles and the last failure; --json gives the numbers', async () => {
    const r = await cli(['pipeline', 'runs', '--tenant', TENANT, '--stats', '--since', '3650d']);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /PIPELINE\s+RUNS\s+SUCCESS\s+P50\s+P95\s+ROWS\s+LAST FAILURE\s+ERROR/);
    assert.match(r.stdout, /^p_usage_daily\s+7\s+100\.0% \(7\/7\)\s/m);
    assert.match(r.stdout, /^p_by_day\s+4\s+50\.0% \(2\/4\)\s.*Z [0-9a-f-]{36}\s+.*not a number/m);

    const j = await json<PipelineStats[]>(['pipeline', 'runs', '--tenant', TENANT, '--stats', '--since', '3650d']);
    const byDay = j.envelope.result!.find((s) => s.pipelineId === 'p_by_day')!;
    assert.equal(byDay.failed, 2);
    assert.match(byDay.lastFailure?.error ?? '', /not a number/);

    const bad = await cli(['pipeline', 'runs', '--tenant', TENANT, '--stats', '--since', 'soon']);
    assert.equal(bad.exitCode, 2, show(bad));
    assert.match(bad.stderr, /--since: "soon" is not a duration/);
    const both = await cli(['pipeline', 'runs', '--tenant', TENANT, '--stats', '--status', 'FAILED']);
    assert.equal(both.exitCode, 2, show(both));
    const limited = await cli(['pipeline', 'runs', '--tenant', TENANT, '--stats', '--limit', '5']);
    assert.equal(limited.exitCode, 2, show(limited));
    assert.match(limited.stderr, /cannot also be provided when using --limit/);
    const none = await cli(['pipeline', 'runs', '--tenant', 'nobody_co', '--stats']);
    assert.equal(none.exitCode, 8, show(none));
  });
});
