/**
 * `convergence job <task>` as Cloud Run runs it: separate processes, JSON lines on stdout, the
 * pushed config, SIGTERM mid-run, and three dispatcher tasks (plus one overlapping dispatcher)
 * racing over the same due schedules.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { runLockKey } from '../../src/services/runs/admission.ts';
import { EXAMPLE_API_TOKEN, EXAMPLE_TENANT, installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { getRun } from '../../src/services/runs/store.ts';
import { syncSchedules } from '../../src/services/schedules/sync.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { startFakeApi } from '../fakes/http-api.ts';
import { runCli, show, spawnCli, type CliResult } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

type LogLine = Record<string, unknown> & { severity: string; message: string; 'logging.googleapis.com/labels': Record<string, string> };

/** Every stdout line must be one JSON log object. */
function logLines(r: Pick<CliResult, 'stdout'>): LogLine[] {
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const entry = JSON.parse(l) as LogLine;
      assert.ok(['DEBUG', 'INFO', 'WARNING', 'ERROR'].includes(entry.severity), l);
      assert.equal(typeof entry.message, 'string');
      assert.equal(typeof entry['time'], 'string');
      return entry;
    });
}

const CLOUD_RUN = { CLOUD_RUN_JOB: 'convergence-jobs', CLOUD_RUN_EXECUTION: 'convergence-jobs-x1y2z', GOOGLE_CLOUD_PROJECT: 'demo-proj' };

describe('job run-pipeline', () => {
  let root: string;
  before(async () => {
    root = await newBootstrappedWorkspace('job');
    await allowFakeApis(root);
    await installExample(root);
    // A declared parameter, for the run that a remote start hands one to (the example declares none).
    const pipelineFile = path.join(root, 'configs', EXAMPLE_TENANT, 'pipelines', 'p_usage_daily.yml');
    await writeFile(
      pipelineFile,
      (await readFile(pipelineFile, 'utf8')).replace('timeout: 30m\n', "timeout: 30m\nparams: { region: 'us' }\n"),
    );
    await withContext(root, async (ctx) => {
      await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'Acme', plan: 'scale' });
      await pushPipelines(ctx, { tenantId: EXAMPLE_TENANT, pipelineId: 'p_usage_daily' });
    });
  });

  it('runs the pushed demo pipeline with JSON log lines carrying trace and labels, and exits 0', async () => {
    const r = await runCli(['job', 'run-pipeline'], {
      cwd: root,
      env: { ...CLOUD_RUN, CLOUD_RUN_TASK_INDEX: '0', CONVERGENCE_TENANT: EXAMPLE_TENANT, CONVERGENCE_PIPELINE: 'p_usage_daily' },
    });
    assert.equal(r.exitCode, 0, show(r));
    const lines = logLines(r);
    const done = lines.at(-1)!;
    assert.match(done.message, /COMPLETE/);
    assert.equal(done['logging.googleapis.com/trace'], 'projects/demo-proj/traces/convergence-jobs-x1y2z');
    const labels = done['logging.googleapis.com/labels'];
    assert.equal(labels['tenant_id'], EXAMPLE_TENANT);
    assert.equal(labels['pipeline_id'], 'p_usage_daily');
    assert.equal(labels['execution'], 'convergence-jobs-x1y2z');
    assert.equal(labels['task_index'], '0');
    const [run] = await withWarehouse(root, (w) =>
      w.select(METADATA_DATASET, T.runs, { where: { pipeline_logging_id: labels['run_id']! } }),
    );
    assert.equal(run?.['status'], 'COMPLETE');
    assert.equal(run?.['trigger_type'], 'remote');
    assert.ok(!r.all.includes(EXAMPLE_API_TOKEN));
    assert.ok(!r.all.includes('\u001b['), 'no colour');
  });

  it('refuses bad input with the DESIGN exit codes', async () => {
    const unknown = await runCli(['job', 'bogus'], { cwd: root });
    assert.equal(unknown.exitCode, 2, show(unknown));
    assert.equal(logLines(unknown).at(-1)!.severity, 'ERROR');
    const noTenant = await runCli(['job', 'run-pipeline', '--pipeline', 'p_usage_daily'], { cwd: root });
    assert.equal(noTenant.exitCode, 2, show(noTenant));
    const notPushed = await runCli(['job', 'run-pipeline', '--tenant', EXAMPLE_TENANT, '--pipeline', 'p_usage_api'], { cwd: root });
    assert.equal(notPushed.exitCode, 8, show(notPushed));
    assert.match(logLines(notPushed).at(-1)!.message, /no pushed pipeline/);
  });

  it('runs with the run date, parameters and full refresh a remote start hands over as env', async () => {
    const r = await runCli(['job', 'run-pipeline'], {
      cwd: root,
      env: {
        ...CLOUD_RUN,
        CONVERGENCE_TENANT: EXAMPLE_TENANT,
        CONVERGENCE_PIPELINE: 'p_usage_daily',
        CONVERGENCE_RUN_DATE: '2025-01-31',
        CONVERGENCE_PARAMS: JSON.stringify({ region: 'eu --tenant other' }),
        CONVERGENCE_FULL_REFRESH: 'true',
      },
    });
    assert.equal(r.exitCode, 0, show(r));
    const lines = logLines(r);
    const started = lines.find((l) => l.message.startsWith('starting run'))!;
    assert.equal(started['runDate'], '2025-01-31');
    assert.deepEqual(started['params'], ['region']);
    assert.equal(started['fullRefresh'], true);
    assert.ok(!r.all.includes('other'), 'parameter values stay out of the logs');
    const runId = started['logging.googleapis.com/labels']['run_id']!;
    const run = await withContext(root, (ctx) => getRun(ctx, runId));
    assert.equal(run.status, 'COMPLETE');
    assert.equal(run.runDate, '2025-01-31');
    assert.deepEqual(run.parameters, { region: 'eu --tenant other' });
  });

  it('refuses a malformed run request in its env (exit 2) before a run starts', async () => {
    const base = { ...CLOUD_RUN, CONVERGENCE_TENANT: EXAMPLE_TENANT, CONVERGENCE_PIPELINE: 'p_usage_daily' };
    for (const [name, value, message] of [
      ['CONVERGENCE_PARAMS', 'region=eu', /CONVERGENCE_PARAMS must be a JSON object/],
      ['CONVERGENCE_PARAMS', '{"region":1}', /CONVERGENCE_PARAMS must be a JSON object/],
      ['CONVERGENCE_RUN_DATE', '2025-02-30', /not a calendar date/],
      ['CONVERGENCE_FULL_REFRESH', 'yes', /CONVERGENCE_FULL_REFRESH must be true or false/],
    ] as const) {
      const r = await runCli(['job', 'run-pipeline'], { cwd: root, env: { ...base, [name]: value } });
      assert.equal(r.exitCode, 2, show(r));
      const last = logLines(r).at(-1)!;
      assert.equal(last.severity, 'ERROR');
      assert.match(last.message, message);
      assert.ok(!logLines(r).some((l) => l.message.startsWith('starting run')), 'no run started');
    }
  });

  it('prints the envelope on stdout under --json and the log lines on stderr', async () => {
    const r = await runCli(['job', 'reset-quotas', '--json'], { cwd: root });
    assert.equal(r.exitCode, 0, show(r));
    const envelope = JSON.parse(r.stdout) as { status: number; result: { count: number } };
    assert.equal(envelope.status, 0);
    assert.ok(envelope.result.count >= 1);
    assert.ok(
      r.stderr.split('\n').some((l) => l.startsWith('{"severity":"INFO"')),
      r.stderr,
    );
  });

  it('SIGTERM mid-run stops at the next checkpoint: run CANCELLED, lock free, non-zero exit in time', async () => {
    const api = await startFakeApi(() => ({ hang: true }));
    try {
      const dir = path.join(root, 'configs', EXAMPLE_TENANT);
      await writeFile(
        path.join(dir, 'sources', 'stuck.yml'),
        `source_id: stuck\ntype: rest_api\nurl: ${api.base}/rows\ntimeout: 10m\nrecords_path: data\n`,
      );
      await writeFile(
        path.join(dir, 'pipelines', 'p_stuck.yml'),
        'pipeline_id: p_stuck\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/stuck.yml, destination: { table: stuck } }\n  - { name: again, type: ingest, source_config: sources/stuck.yml, destination: { table: stuck } }\n',
      );
      await withContext(root, (ctx) => pushPipelines(ctx, { tenantId: EXAMPLE_TENANT, pipelineId: 'p_stuck' }));
      const child = spawnCli(['job', 'run-pipeline', '--tenant', EXAMPLE_TENANT, '--pipeline', 'p_stuck'], { cwd: root, env: CLOUD_RUN });
      const deadline = Date.now() + 60_000;
      while (api.requests.length === 0) {
        if (Date.now() > deadline) throw new Error('the run never called the API');
        await sleep(5);
      }
      child.kill('SIGTERM');
      const r = await child;
      assert.equal(r.signal, undefined, `exited by itself: ${String(r.stdout)}`);
      assert.equal(r.exitCode, 3, String(r.stdout));
      const lines = logLines({ stdout: String(r.stdout) });
      assert.ok(lines.some((l) => l.severity === 'WARNING' && l.message.startsWith('SIGTERM')));
      const runId = lines.find((l) => l['logging.googleapis.com/labels']['run_id'])!['logging.googleapis.com/labels']['run_id']!;
      assert.match(lines.at(-1)!.message, /CANCELLED/);
      await withContext(root, async (ctx) => {
        const [run] = await (await ctx.backends.warehouse()).select(METADATA_DATASET, T.runs, { where: { pipeline_logging_id: runId } });
        assert.equal(run?.['status'], 'CANCELLED');
        assert.equal(await (await ctx.backends.lock()).inspect(runLockKey(EXAMPLE_TENANT, 'p_stuck')), undefined, 'lock released');
      });
    } finally {
      await api.close();
    }
  });
});

describe('job dispatch', () => {
  let root: string;
  const TENANTS = ['sched_one', 'sched_two'];
  const PIPELINES = ['p_a', 'p_b', 'p_c', 'p_d'];
  before(async () => {
    root = await newBootstrappedWorkspace('dispatch');
    // Each tenant reads its own data folder, data/<tenant>/.
    for (const tenant of TENANTS) {
      await mkdir(path.join(root, 'data', tenant), { recursive: true });
      await writeFile(path.join(root, 'data', tenant, 'tiny.csv'), 'id,amount\n1,10\n2,20\n');
    }
    await withContext(root, async (ctx) => {
      for (const tenant of [...TENANTS, 'sched_bad']) await createTenant(ctx, { tenantId: tenant, name: tenant, plan: 'scale' });
      for (const tenant of TENANTS) {
        const dir = path.join(root, 'configs', tenant);
        await writeFile(path.join(dir, 'sources', 'tiny.yml'), 'source_id: tiny\ntype: file\npath: tiny.csv\nformat: csv\n');
        for (const p of PIPELINES) {
          await writeFile(
            path.join(dir, 'pipelines', `${p}.yml`),
            `pipeline_id: ${p}\nschedule: { cron: '*/15 * * * *', timezone: Europe/Berlin }\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/tiny.yml, destination: { table: ${p} } }\n`,
          );
        }
        await pushPipelines(ctx, { tenantId: tenant });
        const synced = await syncSchedules(ctx, tenant);
        assert.deepEqual(
          synced.map((s) => s.action),
          PIPELINES.map(() => 'created'),
        );
        assert.deepEqual(
          (await syncSchedules(ctx, tenant)).map((s) => s.action),
          PIPELINES.map(() => 'unchanged'),
        );
      }
      const warehouse = await ctx.backends.warehouse();
      const now = ctx.now();
      // A tenant with a schedule but nothing pushed: its run fails (not found), the others still run.
      await warehouse.insert(METADATA_DATASET, T.schedules, [
        {
          schedule_id: 'sched_bad.p_missing',
          tenant_id: 'sched_bad',
          pipeline_id: 'p_missing',
          cron_expression: '0 * * * *',
          timezone: 'UTC',
          is_active: true,
          next_run_at: now,
          last_run_at: null,
          last_run_id: null,
          created_at: now,
          updated_at: now,
        },
      ]);
      // Make every schedule due.
      await warehouse.update(METADATA_DATASET, T.schedules, { next_run_at: new Date(now.getTime() - 60_000) }, { is_active: true });
    });
  });

  it('three tasks plus an overlapping dispatcher run each due schedule exactly once and advance next_run_at', async () => {
    const started = new Date();
    const runs = [0, 1, 2].map((i) =>
      runCli(['job', 'dispatch'], { cwd: root, env: { ...CLOUD_RUN, CLOUD_RUN_TASK_INDEX: String(i), CLOUD_RUN_TASK_COUNT: '3' } }),
    );
    // A dispatcher of an older execution that still runs: one task that sees every schedule.
    runs.push(runCli(['job', 'dispatch'], { cwd: root, env: { CLOUD_RUN_TASK_INDEX: '0', CLOUD_RUN_TASK_COUNT: '1' } }));
    const results = await Promise.all(runs);
    for (const r of results) {
      assert.equal(r.exitCode, 0, show(r));
      const summary = logLines(r).at(-1)!;
      assert.match(summary.message, /^dispatch task \d\/\d: /);
    }
    const total = results.map((r) => logLines(r).at(-1)!).reduce((n, s) => n + Number(s['succeeded']) + Number(s['failed']), 0);
    assert.equal(total, TENANTS.length * PIPELINES.length + 1, 'every due schedule handled once');
    const failed = results.flatMap((r) => logLines(r)).filter((l) => l.severity === 'ERROR');
    assert.equal(failed.length, 1, JSON.stringify(failed));
    assert.equal(failed[0]!['logging.googleapis.com/labels']['tenant_id'], 'sched_bad');

    await withWarehouse(root, async (w) => {
      const runRows = await w.select(METADATA_DATASET, T.runs, { where: { trigger_type: 'scheduled' } });
      const perSchedule = new Map<string, number>();
      for (const r of runRows)
        perSchedule.set(`${r['tenant_id']}.${r['pipeline_id']}`, (perSchedule.get(`${r['tenant_id']}.${r['pipeline_id']}`) ?? 0) + 1);
      assert.equal(perSchedule.size, TENANTS.length * PIPELINES.length);
      for (const [id, n] of perSchedule) assert.equal(n, 1, `${id} ran ${n} times`);
      assert.ok(runRows.every((r) => r['status'] === 'COMPLETE'));
      const schedules = await w.select(METADATA_DATASET, T.schedules, {});
      for (const s of schedules) {
        assert.ok((s['next_run_at'] as Date).getTime() > started.getTime(), `${String(s['schedule_id'])} advanced`);
        assert.ok(s['last_run_id'], `${String(s['schedule_id'])} has its last run id`);
        if (s['tenant_id'] !== 'sched_bad') assert.ok(runRows.some((r) => r['pipeline_logging_id'] === s['last_run_id']));
        // */15 in Europe/Berlin: a quarter hour.
        if (s['tenant_id'] !== 'sched_bad') assert.equal((s['next_run_at'] as Date).getUTCMinutes() % 15, 0);
      }
    });

    const again = await runCli(['job', 'dispatch'], { cwd: root });
    assert.equal(again.exitCode, 0, show(again));
    // A quarter hour that began during the test makes the schedules due again, rightly.
    const quarter = (d: Date) => Math.floor(d.getTime() / 900_000);
    if (quarter(new Date()) === quarter(started)) assert.equal(logLines(again).at(-1)!['due'], 0);
  });
});
