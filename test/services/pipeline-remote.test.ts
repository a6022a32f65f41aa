/**
 * pipeline run --remote: the pushed config started as a Cloud Run Jobs execution and followed to
 * its end. The fake Run job plays the container: it runs the pushed pipeline in process with the
 * run id and config version it was handed, as `convergence job run-pipeline` does.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { installExample } from '../../src/services/example.ts';
import { loadActiveBundle, pushPipelines } from '../../src/services/pipelines/push.ts';
import { startRemoteRun } from '../../src/services/pipelines/remote.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { utcDay } from '../../src/services/quotas.ts';
import { runLockKey } from '../../src/services/runs/admission.ts';
import { createTenant, setTenantStatus } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newWorkspace, withContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_PROJECT, createRunJob, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';

const TENANT = 'acme_corp';
const JOB = 'convergence-pipeline-cloud';
let fakes: CloudFakes;
let root: string;
const calls: RunJobCall[] = [];

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('remote');
  await appendFile(path.join(root, 'convergence.yaml'), `${fakes.yaml('cloud')}    job: ${JOB}\n  bare:\n    project: ${CLOUD_PROJECT}\n`);
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
  // As on Run, an execution is still running when RunJob returns; it ends a few looks later.
  fakes.run.setExecutionPolls(2);
  fakes.run.onRunJob(playContainer);
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

/** The container of the Run job: runs the pushed pipeline in process, as `convergence job run-pipeline` does. */
async function playContainer(call: RunJobCall): Promise<RunJobOutcome> {
  calls.push(call);
  const summary = await withContext(
    root,
    async (ctx) =>
      runPipeline(ctx, {
        tenantId: call.env['CONVERGENCE_TENANT']!,
        pipelineId: call.env['CONVERGENCE_PIPELINE']!,
        bundle: await loadActiveBundle(
          ctx,
          call.env['CONVERGENCE_TENANT']!,
          call.env['CONVERGENCE_PIPELINE']!,
          call.env['CONVERGENCE_CONFIG_VERSION'],
        ),
        runId: call.env['CONVERGENCE_RUN_ID']!,
        trigger: 'remote',
      }),
    { env: call.env['CONVERGENCE_ENV']! },
  );
  return summary.exitCode === 0
    ? { succeeded: 1, logUri: 'https://console.cloud.google.com/logs/fake' }
    : { failed: 1, message: `exit ${summary.exitCode}` };
}

const remote = (env: string, wait = true) =>
  withContext(root, (ctx) => startRemoteRun(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', wait, pollMs: 10 }), { env });

describe('pipeline run --remote', () => {
  it('starts the pushed config on the Run job and follows it to the run row it wrote', async () => {
    const result = await remote('cloud');
    assert.equal(result.state, 'SUCCEEDED');
    assert.equal(result.exitCode, 0);
    assert.equal(result.run?.status, 'COMPLETE');
    assert.equal(result.run?.configVersion, result.configVersion);
    // The row written before the execution started is the one the container continued.
    assert.equal(result.run?.trigger, 'remote');
    assert.equal(result.run?.executionName, result.execution);
    assert.equal(result.logUri, 'https://console.cloud.google.com/logs/fake');
    const call = calls.at(-1)!;
    assert.deepEqual(call.args, ['job', 'run-pipeline']);
    assert.equal(call.env['CONVERGENCE_RUN_ID'], result.runId);
    assert.equal(call.env['CONVERGENCE_CONFIG_VERSION'], result.configVersion);
    assert.equal(call.taskCount, 1);
  });

  it("exits with the remote run's own exit code (4 for data quality) and without --wait only starts it", async () => {
    const file = path.join(root, 'configs', TENANT, 'pipelines', 'p_usage_daily.yml');
    const original = await readFile(file, 'utf8');
    await writeFile(
      file,
      original.replace(
        '{ check: range, column: cost_usd, min: 0, max: 100, severity: warn }',
        '{ check: range, column: cost_usd, min: 0, max: 100 }',
      ),
    );
    try {
      await withContext(root, (ctx) => pushPipelines(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily' }), { env: 'cloud' });
      const failed = await remote('cloud');
      assert.equal(failed.state, 'FAILED');
      assert.equal(failed.exitCode, 4);
      assert.equal(failed.run?.status, 'FAILED');
      const started = await remote('cloud', false);
      assert.equal(started.state, 'STARTED');
      assert.equal(started.run, null);
    } finally {
      await writeFile(file, original);
    }
  });

  it('reads an execution whose Completed condition failed with no task counted failed as FAILED and exits non-zero', async () => {
    const message = 'The execution failed: the container image could not be pulled.';
    fakes.run.onRunJob(() => ({ failedBeforeAnyTask: true, message }));
    try {
      const result = await remote('cloud');
      assert.equal(result.state, 'FAILED');
      assert.notEqual(result.exitCode, 0);
      const [execution] = fakes.run.executions(`projects/${CLOUD_PROJECT}/locations/us-central1/jobs/${JOB}`);
      assert.equal(execution?.failedCount, 0);
      const completed = (execution?.conditions as Array<{ type: string; state: string; message: string }>)[0]!;
      assert.deepEqual([completed.type, completed.state, completed.message], ['Completed', 'CONDITION_FAILED', message]);
    } finally {
      fakes.run.onRunJob(playContainer);
    }
  });

  it('refuses what the container would refuse before starting an execution: lock held (5), quota used up (6), tenant suspended (7)', async () => {
    const executions = fakes.run.requests('RunJob').length;
    const cloud = <R>(work: (ctx: TestContext) => Promise<R>) => withContext(root, work, { env: 'cloud' });

    const taken = await cloud(async (ctx) =>
      (await ctx.backends.lock()).acquire(runLockKey(TENANT, 'p_usage_daily'), {
        owner: 'job run-pipeline',
        ttlMs: 60_000,
        info: { run_id: '3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b' },
      }),
    );
    assert.ok(taken.acquired);
    try {
      await rejectsWith(remote('cloud', false), 5, /already running: run 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b holds its lock/);
    } finally {
      await cloud(async (ctx) => (await ctx.backends.lock()).release(taken.lease));
    }

    const setQuota = (fields: Record<string, unknown>) =>
      cloud(async (ctx) =>
        (await ctx.backends.warehouse()).update(
          METADATA_DATASET,
          T.quotas,
          { usage_date: utcDay(new Date()), ...fields },
          { tenant_id: TENANT },
        ),
      );
    await setQuota({ pipelines_run_today: 1000 });
    try {
      const err = await rejectsWith(remote('cloud', false), 6, /reached its daily limit of 1000/);
      assert.equal(err.code, 'QUOTA_EXCEEDED');
      assert.equal(err.data?.limit, 'daily');
    } finally {
      await setQuota({ pipelines_run_today: 0 });
    }

    await cloud((ctx) => setTenantStatus(ctx, TENANT, 'SUSPENDED'));
    try {
      const err = await rejectsWith(remote('cloud', false), 7, /is suspended/);
      assert.equal(err.code, 'TENANT_SUSPENDED');
    } finally {
      await cloud((ctx) => setTenantStatus(ctx, TENANT, 'ACTIVE'));
    }
    assert.equal(fakes.run.requests('RunJob').length, executions, 'no execution was started');
  });

  it('refuses a local env, an env without a job, and a pipeline that was never pushed', async () => {
    await rejectsWith(remote('local'), 2, /--remote runs on Cloud Run Jobs/);
    await rejectsWith(remote('bare'), 2, /has no job/);
    await rejectsWith(
      withContext(root, (ctx) => startRemoteRun(ctx, { tenantId: TENANT, pipelineId: 'p_usage_api', wait: true }), { env: 'cloud' }),
      8,
      /no pushed pipeline "p_usage_api"/,
    );
  });
});
