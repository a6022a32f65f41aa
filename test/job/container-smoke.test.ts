/**
 * The container as the Dockerfile's runtime stage builds it, without Docker: the built CLI in a
 * clean folder whose node_modules holds only the production packages of the lock file (what
 * `npm ci --omit=dev` installs), started by the Run fake as the pipeline job's container for a
 * `pipeline run --remote` against the cloud fakes. A runtime import of a dev dependency, or a
 * file the image does not copy, fails here. The run is the demo's gs:// variant: the container
 * reads the exports from the GCS fake and loads them into the BigQuery fake, as a job on Google
 * Cloud reads a tenant's files.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { startRemoteRun } from '../../src/services/pipelines/remote.ts';
import { CLOUD_DATA_BUCKET, type CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';
import { CLOUD_JOB as JOB, cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { withContext } from '../helpers/context.ts';
import { MODEL_TABLES } from '../helpers/example-model.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

interface LockEntry {
  dev?: boolean;
  devOptional?: boolean;
}

/**
 * The image's /app: package.json, bin/, dist/, the manifest and examples/ copied as the Dockerfile
 * copies them; node_modules links only the top-level packages the lock does not mark dev
 * (nested ones come with their parent), so the CLI resolves nothing else.
 */
async function productionApp(): Promise<string> {
  const app = await makeTempDir('container-app');
  for (const entry of ['package.json', 'bin', 'dist', 'oclif.manifest.json', 'examples']) {
    await cp(path.join(REPO_ROOT, entry), path.join(app, entry), { recursive: true });
  }
  const lock = JSON.parse(await readFile(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  for (const [key, entry] of Object.entries(lock.packages)) {
    const top = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
    if (!top || entry.dev || entry.devOptional) continue;
    const installed = path.join(REPO_ROOT, key);
    // Optional packages of other platforms are in the lock but not installed here.
    if (!(await readFile(path.join(installed, 'package.json')).catch(() => null))) continue;
    await mkdir(path.dirname(path.join(app, key)), { recursive: true });
    await symlink(installed, path.join(app, key), 'dir');
  }
  return app;
}

let demo: CloudDemo;
let fakes: CloudFakes;
let root: string;
let app: string;
const containers: { exitCode: number; stdout: string; stderr: string }[] = [];

/** The Run job's container: the production app's `job run-pipeline` with the execution's env. */
async function container(call: RunJobCall): Promise<RunJobOutcome> {
  const child = await execa(process.execPath, [path.join(app, 'bin', 'run.js'), ...call.args], {
    cwd: root,
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? root,
      NODE_ENV: 'production',
      NO_COLOR: '1',
      CI: '1',
      ...fakes.vars,
      ...call.env,
      CLOUD_RUN_JOB: JOB,
      CLOUD_RUN_EXECUTION: call.execution.split('/').at(-1)!,
    },
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
  const exitCode = child.exitCode ?? 1;
  containers.push({ exitCode, stdout: String(child.stdout), stderr: String(child.stderr) });
  return exitCode === 0 ? { succeeded: 1 } : { failed: 1, message: `exit ${exitCode}` };
}

before(async () => {
  demo = await cloudDemoWorkspace('container');
  ({ fakes, root } = demo);
  fakes.run.onRunJob(container);
  app = await productionApp();
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

/** What the run left in the BigQuery fake, read back through the warehouse adapter. */
async function demoFigures(runId: string) {
  return withContext(
    root,
    async (ctx) => {
      const warehouse = await ctx.backends.warehouse();
      const quarantine = await warehouse.select(demo.tenantId, 'raw_usage__quarantine');
      const dq = await warehouse.select(METADATA_DATASET, T.dqResults, { where: { pipeline_logging_id: runId } });
      const costRange = dq.find((r) => String(r['rule_name']).includes('cost_usd'));
      return {
        raw: await warehouse.count(demo.tenantId, 'raw_usage'),
        daily: await warehouse.count(demo.tenantId, 'fct_usage_daily'),
        dimensions: (await Promise.all(MODEL_TABLES.map((table) => warehouse.count(demo.tenantId, table)))).reduce((a, b) => a + b, 0),
        quarantined: quarantine
          .map((r): [string, string] => [
            String((JSON.parse(String(r['record'])) as { request_id: string }).request_id),
            String(r['_source_file']),
          ])
          .sort(),
        costWarnings: Number(costRange?.['failing_count']),
      };
    },
    { env: 'cloud' },
  );
}

describe('the container image (runtime stage: production dependencies only)', () => {
  it('runs the gs:// demo as a remote run to COMPLETE: the exports read from Cloud Storage, typed rows and quarantine in BigQuery', async () => {
    // A Cloud Run job has no workspace files: only the objects in the bucket can be what it loads.
    await rm(path.join(root, 'data'), { recursive: true, force: true });
    const result = await withContext(
      root,
      (ctx) => startRemoteRun(ctx, { tenantId: demo.tenantId, pipelineId: demo.pipelineId, wait: true, pollMs: 10 }),
      { env: 'cloud' },
    );
    const last = containers.at(-1);
    assert.ok(last, 'the Run fake started the container');
    assert.equal(last.exitCode, 0, `${last.stdout}\n${last.stderr}`);
    assert.doesNotMatch(last.stderr, /Cannot find (package|module)/);
    assert.equal(result.state, 'SUCCEEDED');
    assert.equal(result.run?.status, 'COMPLETE');

    const landed = await demoFigures(result.runId);
    // The demo's week: 7 days of 300 rows, plus one implausible cost that stays (a warning) and two
    // rows that cannot be typed, which reach the quarantine.
    assert.equal(landed.raw, 7 * 300 + 1);
    const object = (day: string) => `gs://${CLOUD_DATA_BUCKET}/acme_corp/usage/usage_${day}.csv`;
    assert.deepEqual(
      landed.quarantined.map(([requestId]) => requestId),
      ['bad_2025-01-03_1', 'bad_2025-01-05_2'],
    );
    // One load job reads every object, so a quarantined row names the objects of its load.
    assert.ok(landed.quarantined[0]![1].split(', ').includes(object('2025-01-03')), landed.quarantined[0]![1]);
    assert.ok(landed.quarantined[1]![1].split(', ').includes(object('2025-01-05')), landed.quarantined[1]![1]);
    assert.ok(landed.daily > 0, 'fct_usage_daily was built from the loaded rows');
    assert.equal(landed.costWarnings, 1, 'the implausible cost is flagged by the range check');
    assert.ok(landed.dimensions > 0, 'the dimensions of the analytics model were built');
    assert.equal(result.run?.rowsProcessed, landed.raw + landed.daily + landed.dimensions, 'the run row counts what landed');
  });

  it('holds no dev dependency: a package only the tests use cannot be resolved from the app', async () => {
    const probe = await execa(process.execPath, ['--input-type=module', '-e', "await import('knip')"], { cwd: app, reject: false });
    assert.notEqual(probe.exitCode, 0, 'knip (a dev dependency) must not resolve inside the runtime folder');
    const kept = await execa(process.execPath, ['--input-type=module', '-e', "await import('@oclif/core')"], { cwd: app, reject: false });
    assert.equal(kept.exitCode, 0, String(kept.stderr));
  });
});
