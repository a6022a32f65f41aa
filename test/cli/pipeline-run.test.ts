/**
 * `pipeline run` as a user runs it: separate processes, killed with SIGKILL mid-load, stopped
 * with Ctrl-C, racing each other, and given bad input. The test watches the file system (staging
 * files, the DuckDB WAL) rather than the warehouse while a run is in flight, so it never competes
 * with the run for the database file.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { getRun } from '../../src/services/runs/store.ts';
import { setTenantStatus, createTenant } from '../../src/services/tenants.ts';
import { parseEnvelope, runCli, runJson, show, spawnCli } from '../helpers/cli.ts';
import { cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import type { CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall } from '../fakes/grpc/run-jobs.ts';
import { startFakeApi } from '../fakes/http-api.ts';

after(cleanupAll);

const TENANT = 'big_co';
const ROWS = 1_000_000;

async function bigWorkspace(): Promise<string> {
  const root = await newBootstrappedWorkspace('kill');
  await allowFakeApis(root);
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'Big', plan: 'scale' }));
  const dir = path.join(root, 'configs', TENANT);
  await mkdir(path.join(root, 'data', TENANT), { recursive: true });
  // Two files so an interrupted run has a partly staged input to throw away.
  for (const part of [0, 1]) {
    const lines = ['id,day,amount'];
    for (let i = part * (ROWS / 2); i < (part + 1) * (ROWS / 2); i++)
      lines.push(`${i + 1},2025-01-${String((i % 28) + 1).padStart(2, '0')},${i % 997}`);
    await writeFile(path.join(root, 'data', TENANT, `events_${part}.csv`), `${lines.join('\n')}\n`);
  }
  await writeFile(
    path.join(dir, 'sources', 'events.yml'),
    'source_id: events\ntype: file\npath: events_*.csv\nformat: csv\nincremental: { cursor_field: id }\n',
  );
  await writeFile(
    path.join(dir, 'pipelines', 'p_events.yml'),
    [
      'pipeline_id: p_events',
      'steps:',
      '  - { name: ingest, type: ingest, source_config: sources/events.yml, destination: { table: events, write_mode: append } }',
      '',
    ].join('\n'),
  );
  return root;
}

const stateDir = (root: string) => path.join(root, '.convergence');

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const stagingRuns = async (root: string) => readdir(path.join(stateDir(root), 'staging')).catch(() => [] as string[]);

/** A predicate for "a run started after this call has staged Parquet": older runs' leftovers do not count. */
async function stagedByNewRun(root: string): Promise<() => Promise<boolean>> {
  const before = new Set(await stagingRuns(root));
  return async () => {
    for (const run of await stagingRuns(root)) {
      if (before.has(run)) continue;
      const files = await readdir(path.join(stateDir(root), 'staging', run), { recursive: true }).catch(() => [] as string[]);
      if (files.some((f) => String(f).endsWith('.parquet'))) return true;
    }
    return false;
  };
}

/**
 * True once the load writes into the database file: DuckDB writes a big insert's blocks into the
 * file before the commit record reaches the WAL, so growth after staging began is the transaction.
 */
async function loading(root: string): Promise<() => Promise<boolean>> {
  const staged = await stagedByNewRun(root);
  let base: number | undefined;
  return async () => {
    if (!(await staged())) return false;
    const size = statSync(path.join(stateDir(root), 'warehouse.duckdb')).size;
    base ??= size;
    return size > base;
  };
}

async function eventsState(root: string) {
  return withWarehouse(root, async (w) => {
    const [row] = await w.query(`SELECT count(*) AS n, count(DISTINCT id) AS d, max(id) AS m FROM ${w.qualify(TENANT, 'events')}`);
    return { rows: Number(row!['n']), distinct: Number(row!['d']), max: Number(row!['m']) };
  });
}

describe('pipeline run in separate processes', () => {
  let root: string;
  before(async () => {
    root = await bigWorkspace();
  });

  for (const [label, killWhen] of [
    ['while staging', stagedByNewRun],
    ['inside the load transaction', loading],
  ] as const) {
    it(`kill -9 ${label}, then a rerun neither loses nor duplicates rows`, async () => {
      const ready = await killWhen(root);
      const child = spawnCli(['pipeline', 'run', 'p_events', '--tenant', TENANT, '--full-refresh'], { cwd: root });
      await waitFor(ready, label);
      child.kill('SIGKILL');
      const killed = await child;
      assert.equal(killed.signal, 'SIGKILL', 'the run was killed before it finished');

      const rerun = await runJson<{ status: string; runId: string }>(['pipeline', 'run', 'p_events', '--tenant', TENANT], { cwd: root });
      assert.equal(rerun.exitCode, 0, show(rerun));
      assert.deepEqual(await eventsState(root), { rows: ROWS, distinct: ROWS, max: ROWS });

      // The killed run is not left RUNNING: the rerun took over its lock and recorded why.
      const runs = await withWarehouse(root, (w) => w.select(METADATA_DATASET, T.runs, { where: { status: 'RUNNING' } }));
      assert.deepEqual(runs, []);
    });
  }

  it('a second run of the same pipeline exits 5 naming the run that holds it', async () => {
    // The first run waits inside its ingest step on an API that answers only when told to, so
    // it holds the lock for as long as the test needs, however slow the machine.
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const api = await startFakeApi(async () => {
      await answered;
      return { body: { data: [{ id: 1 }] } };
    });
    try {
      const dir = path.join(root, 'configs', TENANT);
      await writeFile(
        path.join(dir, 'sources', 'slow.yml'),
        `source_id: slow\ntype: rest_api\nurl: ${api.base}/rows\nrecords_path: data\n`,
      );
      await writeFile(
        path.join(dir, 'pipelines', 'p_slow.yml'),
        'pipeline_id: p_slow\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/slow.yml, destination: { table: slow } }\n',
      );
      const first = spawnCli(['pipeline', 'run', 'p_slow', '--tenant', TENANT, '--json'], { cwd: root });
      await waitFor(() => api.requests.length > 0, 'the first run to call the API');
      const second = await runJson(['pipeline', 'run', 'p_slow', '--tenant', TENANT], { cwd: root });
      answer();
      const done = await first;
      assert.equal(done.exitCode, 0, String(done.stderr));
      const firstRunId = JSON.parse(String(done.stdout)).result.runId as string;
      assert.equal(second.exitCode, 5, show(second));
      assert.equal(second.envelope.error?.code, 'LOCK_HELD');
      assert.ok(second.envelope.error?.message.includes(firstRunId), second.envelope.error?.message);
    } finally {
      answer();
      await api.close();
    }
  });

  it('pipeline cancel from another process stops the run at its next checkpoint as CANCELLED', async () => {
    const api = await startFakeApi(() => ({ hang: true }));
    try {
      const dir = path.join(root, 'configs', TENANT);
      await writeFile(
        path.join(dir, 'sources', 'stuck.yml'),
        `source_id: stuck\ntype: rest_api\nurl: ${api.base}/rows\ntimeout: 10m\nrecords_path: data\n`,
      );
      await writeFile(
        path.join(dir, 'pipelines', 'p_stuck.yml'),
        'pipeline_id: p_stuck\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/stuck.yml, destination: { table: stuck } }\n  - { name: again, type: ingest, source_config: sources/stuck.yml, destination: { table: stuck } }\n',
      );
      const run = spawnCli(['pipeline', 'run', 'p_stuck', '--tenant', TENANT, '--json'], { cwd: root });
      await waitFor(() => api.requests.length > 0, 'the run to call the API');
      const listed = await runJson<Array<{ runId: string; pipelineId: string; status: string }>>(
        ['pipeline', 'runs', '--tenant', TENANT, '--pipeline', 'p_stuck', '--status', 'RUNNING'],
        { cwd: root },
      );
      const runId = listed.envelope.result![0]!.runId;
      const cancel = await runJson(['pipeline', 'cancel', runId], { cwd: root });
      assert.equal(cancel.exitCode, 0, show(cancel));
      const done = await run;
      assert.equal(done.exitCode, 3, String(done.stderr));
      const status = await runJson<{ run: { status: string }; steps: Array<{ status: string }> }>(['pipeline', 'status', runId], {
        cwd: root,
      });
      assert.equal(status.envelope.result!.run.status, 'CANCELLED');
      assert.deepEqual(
        status.envelope.result!.steps.map((st) => st.status),
        ['CANCELLED', 'SKIPPED'],
      );
    } finally {
      await api.close();
    }
  });

  it('Ctrl-C stops the run at its next checkpoint, marks it CANCELLED and frees the lock', async () => {
    const staged = await stagedByNewRun(root);
    const child = spawnCli(['pipeline', 'run', 'p_events', '--tenant', TENANT, '--full-refresh', '--json'], { cwd: root });
    await waitFor(staged, 'staging to start');
    child.kill('SIGINT');
    const r = await child;
    assert.equal(r.signal, undefined, `exited by itself, not by the signal: ${String(r.stderr)}`);
    const envelope = parseEnvelope<never>({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), all: '' });
    assert.equal(r.exitCode, 3, String(r.stderr));
    assert.equal(envelope.error?.code, 'RUN_CANCELLED');
    const runId = (envelope.error?.data as { run: { runId: string } }).run.runId;
    const [run] = await withWarehouse(root, (w) => w.select(METADATA_DATASET, T.runs, { where: { pipeline_logging_id: runId } }));
    assert.equal(run?.['status'], 'CANCELLED');
    const again = await runCli(['pipeline', 'run', 'p_events', '--tenant', TENANT], { cwd: root });
    assert.equal(again.exitCode, 0, show(again));
    assert.equal((await eventsState(root)).rows, ROWS);
  });
});

describe('pipeline run refuses bad input with the right exit code and writes nothing', () => {
  let root: string;
  before(async () => {
    root = await newBootstrappedWorkspace('run-bad');
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: 'bad_co', name: 'Bad', plan: 'starter' }));
    const dir = path.join(root, 'configs', 'bad_co');
    await writeFile(path.join(dir, 'sources', 's.yml'), 'source_id: s\ntype: file\npath: none_*.csv\nformat: csv\n');
    await writeFile(
      path.join(dir, 'pipelines', 'p_ok.yml'),
      'pipeline_id: p_ok\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/s.yml, destination: { table: t } }\n',
    );
    await writeFile(
      path.join(dir, 'pipelines', 'p_typo.yml'),
      'pipeline_id: p_typo\nsteps:\n  - { name: a, type: ingest, source_config: sources/s.yml, destination: { table: t, write_mode: merge } }\n',
    );
    await writeFile(
      path.join(dir, 'pipelines', 'p_missing.yml'),
      'pipeline_id: p_missing\nsteps:\n  - { name: a, type: transform, sql: sql/nope.sql, destination: { table: t } }\n',
    );
  });

  const cases: Array<[string, string[], number, RegExp]> = [
    ['unknown pipeline', ['pipeline', 'run', 'p_nope', '--tenant', 'bad_co'], 8, /pipeline "p_nope" not found/],
    ['unknown tenant', ['pipeline', 'run', 'p_ok', '--tenant', 'nobody_co'], 8, /nobody_co/],
    ['invalid tenant id', ['pipeline', 'run', 'p_ok', '--tenant', 'Bad-Id'], 2, /tenant id/i],
    ['bad --param', ['pipeline', 'run', 'p_ok', '--tenant', 'bad_co', '--param', 'novalue'], 2, /is not name=value/],
    ['unknown --param', ['pipeline', 'run', 'p_ok', '--tenant', 'bad_co', '--param', 'region=eu'], 2, /takes no parameter "region"/],
    ['bad --run-date', ['pipeline', 'run', 'p_ok', '--tenant', 'bad_co', '--run-date', '2025-02-30x'], 2, /is not a calendar date/],
    [
      'impossible --run-date',
      ['pipeline', 'run', 'p_ok', '--tenant', 'bad_co', '--run-date', '2025-02-31'],
      2,
      /"2025-02-31" is not a calendar date/,
    ],
    ['merge without merge_keys', ['pipeline', 'run', 'p_typo', '--tenant', 'bad_co'], 2, /p_typo\.yml:\d+:\d+: .*merge_keys/],
    ['missing sql file', ['pipeline', 'run', 'p_missing', '--tenant', 'bad_co'], 8, /sql\/nope\.sql does not exist/],
  ];
  for (const [label, args, exitCode, message] of cases) {
    it(label, async () => {
      const r = await runJson(args, { cwd: root });
      assert.equal(r.exitCode, exitCode, show(r));
      assert.match(r.envelope.error?.message ?? '', message);
      assert.equal(await withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs)), 0);
    });
  }

  it('a source whose glob matches nothing fails the run with exit 3 and records it', async () => {
    const r = await runJson<never>(['pipeline', 'run', 'p_ok', '--tenant', 'bad_co'], { cwd: root });
    assert.equal(r.exitCode, 3, show(r));
    assert.match(r.envelope.error?.message ?? '', /no file matches "none_\*\.csv" \(looked in data\/bad_co\/\)/);
    const runs = await withWarehouse(root, (w) => w.select(METADATA_DATASET, T.runs));
    assert.deepEqual(
      runs.map((x) => x['status']),
      ['FAILED'],
    );
    await withWarehouse(root, (w) => w.delete(METADATA_DATASET, T.runs, {}));
  });

  it('a suspended tenant cannot run (exit 7)', async () => {
    await withContext(root, (ctx) => setTenantStatus(ctx, 'bad_co', 'SUSPENDED', 'unpaid'));
    try {
      const r = await runJson(['pipeline', 'run', 'p_ok', '--tenant', 'bad_co'], { cwd: root });
      assert.equal(r.exitCode, 7, show(r));
      assert.equal(r.envelope.error?.code, 'TENANT_SUSPENDED');
    } finally {
      await withContext(root, (ctx) => setTenantStatus(ctx, 'bad_co', 'ACTIVE'));
    }
  });
});

describe('a cloud environment: pipeline push refuses local file paths, run --remote takes parameters, a run date and a full refresh', () => {
  const TENANT_ID = 'acme_corp';
  let demo: CloudDemo;
  let cloud: CloudFakes;
  let root: string;
  const calls: RunJobCall[] = [];
  const remote = (...extra: string[]) =>
    runJson<{ runId: string }>(['pipeline', 'run', demo.pipelineId, '--tenant', TENANT_ID, '--env', 'cloud', '--remote', ...extra], {
      cwd: root,
      env: cloud.vars,
    });

  before(async () => {
    demo = await cloudDemoWorkspace('run-remote', {
      // A declared parameter (the example pipeline declares none).
      editPipeline: (text) => text.replace('timeout: 30m\n', "timeout: 30m\nparams: { region: 'us' }\n"),
    });
    ({ fakes: cloud, root } = demo);
    // The execution stays running: what the container does is tested in test/services/pipeline-remote.test.ts.
    cloud.run.setExecutionPolls(1_000);
    cloud.run.onRunJob((call) => {
      calls.push(call);
    });
  });
  after(async () => {
    await cloud?.stop();
  });

  it('pipeline push refuses the local-path demo pipeline (exit 2, file:line:col, upload to gs://) and pushes nothing', async () => {
    const pushedVersions = () =>
      withContext(root, async (ctx) => (await ctx.backends.warehouse()).count(METADATA_DATASET, T.pipelineConfigs), { env: 'cloud' });
    const before = await pushedVersions();
    const r = await runJson(['pipeline', 'push', '--tenant', TENANT_ID, '--env', 'cloud'], { cwd: root, env: cloud.vars });
    assert.equal(r.exitCode, 2, show(r));
    assert.equal(r.envelope.status, 2);
    const message = r.envelope.error?.message ?? '';
    assert.match(message, /^configs\/acme_corp\/sources\/usage_files\.yml:3:7: path: "usage_\*\.csv" is a local path/m);
    assert.match(message, /upload the data to gs:\/\//);
    assert.equal(await pushedVersions(), before, 'p_usage_api, pushed along, was not written either');
  });

  it('starts the execution with them as env overrides and records them on the run row', async () => {
    const r = await remote('--param', 'region=eu', '--run-date', '2025-01-31', '--full-refresh');
    assert.equal(r.exitCode, 0, show(r));
    const call = calls.at(-1)!;
    assert.deepEqual(call.args, ['job', 'run-pipeline']);
    assert.equal(call.env['CONVERGENCE_RUN_DATE'], '2025-01-31');
    assert.deepEqual(JSON.parse(call.env['CONVERGENCE_PARAMS']!), { region: 'eu' });
    assert.equal(call.env['CONVERGENCE_FULL_REFRESH'], 'true');
    const run = await withContext(root, (ctx) => getRun(ctx, r.envelope.result!.runId), { env: 'cloud' });
    assert.equal(run.status, 'PENDING');
    assert.equal(run.runDate, '2025-01-31');
    assert.deepEqual(run.parameters, { region: 'eu' });
  });

  const refusals: Array<[string, string[], RegExp]> = [
    ['an unknown --param', ['--param', 'regoin=eu'], /takes no parameter "regoin"/],
    ['a malformed --param', ['--param', 'region'], /is not name=value/],
    ['a --run-date that is not a day', ['--run-date', '2025-02-30'], /not a calendar date/],
    ['--dry-run', ['--dry-run'], /does not apply to --remote/],
  ];
  for (const [label, extra, message] of refusals) {
    it(`refuses ${label} (exit 2) before any execution exists`, async () => {
      const executions = cloud.run.requests('RunJob').length;
      const r = await remote(...extra);
      assert.equal(r.exitCode, 2, show(r));
      assert.match(r.envelope.error?.message ?? '', message);
      assert.equal(cloud.run.requests('RunJob').length, executions, 'no execution was started');
    });
  }
});
