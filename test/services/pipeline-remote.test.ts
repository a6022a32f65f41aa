/**
 * pipeline run --remote: the pushed config started as a Cloud Run Jobs execution and followed to
 * its end. The fake Run job plays the container: it runs the pushed pipeline in process with the
 * run id and config version it was handed, as `convergence job run-pipeline` does.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { cloudRunTask, JobLogger } from '../../src/job/logger.ts';
import { resolveJobInput, runPipelineTask } from '../../src/job/tasks.ts';
import { startRemoteRun, type RemoteRunInput } from '../../src/services/pipelines/remote.ts';
import { listRuns } from '../../src/services/runs/store.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { utcDay } from '../../src/services/quotas.ts';
import { runLockKey } from '../../src/services/runs/admission.ts';
import { setTenantStatus } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { CLOUD_JOB as JOB, cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { withContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_PROJECT, type CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';

const TENANT = 'acme_corp';
let demo: CloudDemo;
let fakes: CloudFakes;
let root: string;
const calls: RunJobCall[] = [];
/** The container's JSON log lines. */
const jobLines: Record<string, unknown>[] = [];

before(async () => {
  // The pushed pipeline reads the demo's exports from gs://, as a Cloud Run job must.
  demo = await cloudDemoWorkspace('remote', { moreYaml: `  bare:\n    project: ${CLOUD_PROJECT}\n` });
  ({ fakes, root } = demo);
  // As on Run, an execution is still running when RunJob returns; it ends a few looks later.
  fakes.run.setExecutionPolls(2);
  fakes.run.onRunJob(playContainer);
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

/** The container of the Run job: `convergence job run-pipeline` in process, the execution's env overrides as its env. */
async function playContainer(call: RunJobCall): Promise<RunJobOutcome> {
  calls.push(call);
  const exitCode = await withContext(
    root,
    async (ctx) => {
      const task = cloudRunTask({ CLOUD_RUN_JOB: JOB, CLOUD_RUN_EXECUTION: call.execution.split('/').at(-1) });
      const log = new JobLogger({ task, write: (line) => jobLines.push(JSON.parse(line) as Record<string, unknown>) });
      const rt = { ctx, log, task, signal: new AbortController().signal };
      return runPipelineTask(rt, resolveJobInput({}, call.env), call.env).then(
        (summary) => summary.exitCode,
        (err: unknown) => (err as { exitCode?: number }).exitCode ?? 1,
      );
    },
    { env: call.env['CONVERGENCE_ENV']! },
  );
  return exitCode === 0
    ? { succeeded: 1, logUri: 'https://console.cloud.google.com/logs/fake' }
    : { failed: 1, message: `exit ${exitCode}` };
}

const remote = (env: string, wait = true, request: Pick<RemoteRunInput, 'params' | 'runDate' | 'fullRefresh'> = {}) =>
  withContext(root, (ctx) => startRemoteRun(ctx, { tenantId: TENANT, pipelineId: demo.pipelineId, wait, pollMs: 10, ...request }), {
    env,
  });

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
    const file = demo.pipelineFile;
    const original = await readFile(file, 'utf8');
    await writeFile(
      file,
      original.replace(
        '{ check: range, column: cost_usd, min: 0, max: 100, severity: warn }',
        '{ check: range, column: cost_usd, min: 0, max: 100 }',
      ),
    );
    try {
      await demo.push();
      const failed = await remote('cloud');
      assert.equal(failed.state, 'FAILED');
      assert.equal(failed.exitCode, 4);
      assert.equal(failed.message, 'exit 4');
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
      // Cloud Run's reason reaches the result and the run row its container never took up.
      assert.equal(result.message, message);
      assert.equal(result.run?.status, 'FAILED');
      assert.equal(result.run?.errorMessage, `its Cloud Run execution ended (FAILED: ${message}) before the run began`);
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
      (await ctx.backends.lock()).acquire(runLockKey(TENANT, demo.pipelineId), {
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

  describe('with parameters, a run date and a full refresh', () => {
    let original: string;
    before(async () => {
      original = await readFile(demo.pipelineFile, 'utf8');
      // A declared parameter (the example pipeline declares none).
      await writeFile(demo.pipelineFile, original.replace('timeout: 30m\n', "timeout: 30m\nparams: { region: 'us' }\n"));
      await demo.push();
    });
    after(async () => {
      await writeFile(demo.pipelineFile, original);
      await demo.push();
    });

    it('hands them to the execution as env overrides, never argv, and the container runs with them', async () => {
      const value = 'eu --tenant other_corp';
      const result = await remote('cloud', true, { params: { region: value }, runDate: '2025-01-31', fullRefresh: true });
      assert.equal(result.exitCode, 0, result.run?.errorMessage ?? '');
      const call = calls.at(-1)!;
      assert.deepEqual(call.args, ['job', 'run-pipeline'], 'tenant input never becomes an argument');
      assert.equal(call.env['CONVERGENCE_RUN_DATE'], '2025-01-31');
      assert.deepEqual(JSON.parse(call.env['CONVERGENCE_PARAMS']!), { region: value });
      assert.equal(call.env['CONVERGENCE_FULL_REFRESH'], 'true');
      // The row the container continued carries what it ran with.
      assert.equal(result.run?.status, 'COMPLETE');
      assert.equal(result.run?.runDate, '2025-01-31');
      assert.deepEqual(result.run?.parameters, { region: value });
      const started = jobLines.find((l) => String(l['message']).startsWith(`starting run ${result.runId}`))!;
      assert.equal(started['runDate'], '2025-01-31');
      assert.deepEqual(started['params'], ['region']);
      assert.equal(started['fullRefresh'], true);
      assert.ok(!JSON.stringify(jobLines).includes(value), 'parameter values stay out of the logs');
    });

    it('without a run date hands over the day of the start, so a container starting after midnight keeps it', async () => {
      await remote('cloud', false);
      const call = calls.at(-1)!;
      assert.equal(call.env['CONVERGENCE_RUN_DATE'], new Date().toISOString().slice(0, 10));
      assert.deepEqual(JSON.parse(call.env['CONVERGENCE_PARAMS']!), {});
      assert.equal(call.env['CONVERGENCE_FULL_REFRESH'], 'false');
    });

    it('refuses an unknown parameter, a run variable, an overlong value and a date that is not a day (exit 2) before any run row or execution', async () => {
      const executions = fakes.run.requests('RunJob').length;
      const rows = async () =>
        (await withContext(root, (ctx) => listRuns(ctx, { tenantId: TENANT, pipelineId: demo.pipelineId, limit: 100 }), { env: 'cloud' }))
          .length;
      const rowsBefore = await rows();
      const unknown = await rejectsWith(remote('cloud', false, { params: { regoin: 'eu' } }), 2, /takes no parameter "regoin"/);
      assert.match(unknown.suggestion ?? '', /region/);
      await rejectsWith(remote('cloud', false, { params: { run_date: '2025-01-31' } }), 2, /set by the run itself/);
      await rejectsWith(remote('cloud', false, { params: { region: 'x'.repeat(1001) } }), 2, /at most 1000 characters/);
      await rejectsWith(remote('cloud', false, { runDate: '2025-02-30' }), 2, /not a calendar date/);
      assert.equal(fakes.run.requests('RunJob').length, executions, 'no execution was started');
      assert.equal(await rows(), rowsBefore, 'no run row was written');
    });
  });
});
