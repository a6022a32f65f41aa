/**
 * The container as the Dockerfile's runtime stage builds it, without Docker: the built CLI in a
 * clean folder whose node_modules holds only the production packages of the lock file (what
 * `npm ci --omit=dev` installs), started by the Run fake as the pipeline job's container for a
 * `pipeline run --remote` against the cloud fakes. A runtime import of a dev dependency, or a
 * file the image does not copy, fails here.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { installExample } from '../../src/services/example.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { startRemoteRun } from '../../src/services/pipelines/remote.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { createRunJob, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const JOB = 'convergence-pipeline-cloud';

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
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('container');
  await appendFile(path.join(root, 'convergence.yaml'), `${fakes.yaml('cloud')}    job: ${JOB}\n`);
  await installExample(root);
  await withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
      await pushPipelines(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily' });
    },
    { env: 'cloud' },
  );
  await createRunJob(fakes, JOB);
  fakes.run.onRunJob(container);
  app = await productionApp();
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

describe('the container image (runtime stage: production dependencies only)', () => {
  it('runs a remote pipeline run to COMPLETE against the cloud fakes', async () => {
    const result = await withContext(
      root,
      (ctx) => startRemoteRun(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', wait: true, pollMs: 10 }),
      {
        env: 'cloud',
      },
    );
    const last = containers.at(-1);
    assert.ok(last, 'the Run fake started the container');
    assert.equal(last.exitCode, 0, `${last.stdout}\n${last.stderr}`);
    assert.doesNotMatch(last.stderr, /Cannot find (package|module)/);
    assert.equal(result.state, 'SUCCEEDED');
    assert.equal(result.run?.status, 'COMPLETE');
    assert.ok((result.run?.rowsProcessed ?? 0) > 0);
  });

  it('holds no dev dependency: a package only the tests use cannot be resolved from the app', async () => {
    const probe = await execa(process.execPath, ['--input-type=module', '-e', "await import('knip')"], { cwd: app, reject: false });
    assert.notEqual(probe.exitCode, 0, 'knip (a dev dependency) must not resolve inside the runtime folder');
    const kept = await execa(process.execPath, ['--input-type=module', '-e', "await import('@oclif/core')"], { cwd: app, reject: false });
    assert.equal(kept.exitCode, 0, String(kept.stderr));
  });
});
