/**
 * serve on a cloud environment, against the Google fakes: a run request starts a Cloud Run Jobs
 * execution of the pushed config, and what the container's admission would refuse (lock held,
 * quota used up, suspended tenant) is answered at once, before any execution is started.
 */
import '../fakes/env-guard.ts';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Lease } from '../../src/backends/lock/port.ts';
import type { Row } from '../../src/backends/warehouse/port.ts';
import { buildServer, DEFAULT_SERVER_OPTIONS } from '../../src/server/app.ts';
import type { ServerParts } from '../../src/server/types.ts';
import { createKey } from '../../src/services/keys.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { nextUtcMidnight, utcDay } from '../../src/services/quotas.ts';
import { runLockKey } from '../../src/services/runs/admission.ts';
import { setTenantStatus } from '../../src/services/tenants.ts';
import type { CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall } from '../fakes/grpc/run-jobs.ts';
import { CLOUD_JOB as JOB, cloudDemoWorkspace } from '../helpers/cloud-workspace.ts';
import { openContext, withContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
/** The demo's gs:// file pipeline: a cloud environment pushes no pipeline that reads local files. */
const PIPELINE = 'p_usage_daily_gcs';
const RUN_PATH = `/api/v1/pipelines/run/${PIPELINE}`;

let fakes: CloudFakes;
let root: string;
let ctx: TestContext;
let app: FastifyInstance;
let parts: ServerParts;
let apiKey: string;
let pipelineFile: string;
const calls: RunJobCall[] = [];

before(async () => {
  const demo = await cloudDemoWorkspace('serve-cloud');
  ({ fakes, root, pipelineFile } = demo);
  assert.equal(demo.pipelineId, PIPELINE);
  apiKey = await withContext(root, async (setup) => (await createKey(setup, { tenantId: TENANT, description: 'serve-cloud' })).apiKey, {
    env: 'cloud',
  });
  // The execution stays running; the container's own work is not what these tests look at.
  fakes.run.setExecutionPolls(1_000);
  fakes.run.onRunJob((call) => {
    calls.push(call);
  });

  ctx = await openContext(root, { env: 'cloud', actor: 'serve' });
  ({ app, parts } = await buildServer(ctx, { ...DEFAULT_SERVER_OPTIONS, version: 'test', logLevel: 'silent', defaultMetrics: false }));
  await app.ready();
});
after(async () => {
  await app?.close();
  await ctx?.close();
  await fakes?.stop();
  await cleanupAll();
});

const startRun = (payload?: Record<string, unknown>) =>
  app.inject({
    method: 'POST',
    url: RUN_PATH,
    headers: { 'x-api-key': apiKey, ...(payload ? { 'content-type': 'application/json' } : {}) },
    ...(payload ? { payload } : {}),
  });

const runJobs = () => fakes.run.requests('RunJob').length;

/** Sets fields of the tenant's quota row (today's row, so the counters count). */
async function setQuota(fields: Row): Promise<void> {
  const warehouse = await ctx.backends.warehouse();
  await warehouse.update(METADATA_DATASET, T.quotas, { usage_date: utcDay(new Date()), ...fields }, { tenant_id: TENANT });
}

async function quotaRow(): Promise<Row> {
  const warehouse = await ctx.backends.warehouse();
  const [row] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: TENANT }, limit: 1 });
  assert.ok(row, 'the tenant has a quota row');
  return row;
}

describe('serve on a cloud environment', () => {
  let firstRunId: string;

  it('starts a run as a Cloud Run Jobs execution of the pushed config (202, mode remote)', async () => {
    const res = await startRun();
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json<Record<string, unknown>>();
    assert.equal(body.mode, 'remote');
    assert.equal(body.status, 'PENDING');
    assert.equal(body.tenant_id, TENANT);
    assert.equal(body.pipeline_id, PIPELINE);
    assert.match(String(body.execution_name), new RegExp(`^${JOB}-`));
    assert.equal(res.headers.location, `/api/v1/pipelines/runs/${String(body.pipeline_logging_id)}`);
    firstRunId = String(body.pipeline_logging_id);

    assert.equal(runJobs(), 1);
    assert.equal(calls.length, 1);
    const [call] = calls;
    assert.ok(call);
    assert.ok(call.execution.endsWith(`/executions/${String(body.execution_name)}`));
    assert.deepEqual(call.args, ['job', 'run-pipeline']);
    assert.equal(call.taskCount, 1);
    assert.deepEqual(
      {
        env: call.env['CONVERGENCE_ENV'],
        tenant: call.env['CONVERGENCE_TENANT'],
        pipeline: call.env['CONVERGENCE_PIPELINE'],
        runId: call.env['CONVERGENCE_RUN_ID'],
        configVersion: call.env['CONVERGENCE_CONFIG_VERSION'],
      },
      { env: 'cloud', tenant: TENANT, pipeline: PIPELINE, runId: firstRunId, configVersion: body.config_version },
    );

    // The run row exists before the container writes anything: it can be read at once.
    const read = await app.inject({ method: 'GET', url: `/api/v1/pipelines/runs/${firstRunId}`, headers: { 'x-api-key': apiKey } });
    assert.equal(read.statusCode, 200, read.body);
    const run = read.json<Record<string, unknown>>();
    assert.equal(run.status, 'PENDING');
    assert.equal(run.trigger_type, 'api');
    assert.equal(run.execution_name, body.execution_name);
    assert.equal(run.config_version, body.config_version);
  });

  it('answers 409 while the run lock is held, without starting a second execution', async () => {
    // The first execution's container passed its admission: it holds the run lock.
    const lease = await withContext(
      root,
      async (container) => {
        const taken = await (
          await container.backends.lock()
        ).acquire(runLockKey(TENANT, PIPELINE), {
          owner: 'job run-pipeline',
          ttlMs: 60_000,
          info: { run_id: firstRunId },
        });
        assert.ok(taken.acquired);
        return taken.lease;
      },
      { env: 'cloud' },
    );
    try {
      const res = await startRun();
      assert.equal(res.statusCode, 409, res.body);
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'LOCK_HELD');
      assert.match(body.error.message, new RegExp(`run ${firstRunId}`));
      assert.equal(runJobs(), 1, 'no second execution');
    } finally {
      await releaseLease(lease);
    }
  });

  it('answers 429 with Retry-After when the daily quota is used up, without starting an execution', async () => {
    const row = await quotaRow();
    const dailyLimit = Number(row.daily_limit);
    await setQuota({ pipelines_run_today: dailyLimit });
    try {
      const before = Date.now();
      const res = await startRun();
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'QUOTA_EXCEEDED');
      // Until the quota resets at the next UTC midnight.
      const retryAfter = Number(res.headers['retry-after']);
      const untilMidnight = Math.ceil((nextUtcMidnight(new Date(before)).getTime() - before) / 1000);
      assert.ok(retryAfter >= 1 && Math.abs(retryAfter - untilMidnight) <= 5, `Retry-After ${retryAfter}, expected ~${untilMidnight}`);
      assert.equal(runJobs(), 1, 'no execution started');
    } finally {
      await setQuota({ pipelines_run_today: 0 });
    }
  });

  it('answers 429 when every concurrent slot is taken', async () => {
    const row = await quotaRow();
    await setQuota({ concurrent_pipelines_running: Number(row.concurrent_limit) });
    try {
      const res = await startRun();
      assert.equal(res.statusCode, 429, res.body);
      assert.match(res.json<{ error: { message: string } }>().error.message, /concurrent limit/);
      assert.ok(Number(res.headers['retry-after']) >= 1);
      assert.equal(runJobs(), 1, 'no execution started');
    } finally {
      await setQuota({ concurrent_pipelines_running: 0 });
    }
  });

  it('refuses parameters the pushed pipeline does not take and a run date that is not a day (400) before any execution', async () => {
    const res = await startRun({ parameters: { region: 'eu' }, run_date: '2030-01-01' });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.json<{ error: { message: string } }>().error.message, /takes no parameter "region"/);
    const date = await startRun({ run_date: '2025-02-30' });
    assert.equal(date.statusCode, 400, date.body);
    assert.match(date.json<{ error: { message: string } }>().error.message, /not a calendar date/);
    assert.equal(runJobs(), 1, 'no execution started');
  });

  it('refuses a suspended tenant: 403 while its key is still cached as valid, 401 once verified again', async () => {
    // The request above verified the key, so the server still holds that answer for a moment.
    await setTenantStatus(ctx, TENANT, 'SUSPENDED', 'unpaid invoice');
    const cached = await startRun();
    assert.equal(cached.statusCode, 403, cached.body);
    assert.equal(cached.json<{ error: { code: string } }>().error.code, 'TENANT_SUSPENDED');
    assert.equal(runJobs(), 1, 'no execution started');

    await parts.auth.forgetAll();
    const fresh = await startRun();
    assert.equal(fresh.statusCode, 401, fresh.body);
    assert.equal(runJobs(), 1, 'no execution started');
  });
});

async function releaseLease(lease: Lease): Promise<void> {
  await withContext(root, async (container) => void (await (await container.backends.lock()).release(lease)), { env: 'cloud' });
}

describe('serve on a cloud environment: starts in flight', () => {
  /** A clean slate: earlier runs ended, quota free, tenant active, no cached key checks. */
  async function settle(): Promise<void> {
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(
      METADATA_DATASET,
      T.runs,
      { status: 'FAILED' },
      { tenant_id: TENANT, status: { op: 'in', values: ['PENDING', 'RUNNING'] } },
    );
    await warehouse.update(METADATA_DATASET, T.profiles, { status: 'ACTIVE' }, { tenant_id: TENANT });
    await setQuota({ concurrent_limit: 100, pipelines_run_today: 0, concurrent_pipelines_running: 0 });
    await parts.auth.forgetAll();
  }

  it('refuses a second start (409) while the first has not reached its container, without a second execution', async () => {
    await settle();
    const first = await startRun();
    assert.equal(first.statusCode, 202, first.body);
    const before = runJobs();
    const second = await startRun();
    assert.equal(second.statusCode, 409, second.body);
    assert.match(second.json<{ error: { message: string } }>().error.message, /already starting: run [0-9a-f-]{36}/);
    assert.equal(runJobs(), before);
  });

  it('closes a start whose execution ended before its container began, and starts the next', async () => {
    await settle();
    fakes.run.setExecutionPolls(0);
    try {
      const first = await startRun();
      assert.equal(first.statusCode, 202, first.body);
      const firstId = first.json<{ pipeline_logging_id: string }>().pipeline_logging_id;
      const second = await startRun();
      assert.equal(second.statusCode, 202, second.body);
      const read = await app.inject({ method: 'GET', url: `/api/v1/pipelines/runs/${firstId}`, headers: { 'x-api-key': apiKey } });
      assert.equal(read.json<{ status: string }>().status, 'FAILED');
      assert.match(read.json<{ error_message: string }>().error_message, /ended \(SUCCEEDED\) before the run began/);
    } finally {
      fakes.run.setExecutionPolls(1_000);
    }
  });

  it('hands parameters, run_date and full_refresh to the execution as env overrides, recorded on the run row', async () => {
    await settle();
    const file = pipelineFile;
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('timeout: 30m\n', "timeout: 30m\nparams: { region: 'us' }\n"));
    try {
      await pushPipelines(ctx, { tenantId: TENANT, pipelineId: PIPELINE });
      const res = await startRun({ parameters: { region: 'eu' }, run_date: '2025-01-31', full_refresh: true });
      assert.equal(res.statusCode, 202, res.body);
      const call = calls.at(-1)!;
      assert.deepEqual(call.args, ['job', 'run-pipeline']);
      assert.equal(call.env['CONVERGENCE_RUN_DATE'], '2025-01-31');
      assert.deepEqual(JSON.parse(call.env['CONVERGENCE_PARAMS']!), { region: 'eu' });
      assert.equal(call.env['CONVERGENCE_FULL_REFRESH'], 'true');
      const runId = res.json<{ pipeline_logging_id: string }>().pipeline_logging_id;
      const read = await app.inject({ method: 'GET', url: `/api/v1/pipelines/runs/${runId}`, headers: { 'x-api-key': apiKey } });
      const run = read.json<Record<string, unknown>>();
      assert.equal(run.run_date, '2025-01-31', read.body);
      assert.deepEqual(run.parameters, { region: 'eu' });
    } finally {
      await writeFile(file, original);
      await pushPipelines(ctx, { tenantId: TENANT, pipelineId: PIPELINE });
    }
  });

  it('records the run FAILED when the execution cannot be started, and answers with the error', async () => {
    await settle();
    const before = runJobs();
    fakes.grpc.inject({ method: 'RunJob', code: grpc.status.PERMISSION_DENIED, message: 'Permission run.jobs.run denied', times: 10 });
    try {
      const res = await startRun();
      assert.ok(res.statusCode >= 400, res.body);
    } finally {
      fakes.grpc.clearFaults();
    }
    assert.equal(runJobs(), before, 'no execution started');
    const list = await app.inject({ method: 'GET', url: '/api/v1/pipelines/runs?limit=1', headers: { 'x-api-key': apiKey } });
    const [latest] = list.json<{ runs: Array<Record<string, unknown>> }>().runs;
    assert.equal(latest?.status, 'FAILED', list.body);
    assert.match(String(latest?.error_message), /could not be started/);
  });
});

describe('serve on a cloud environment: key checks on BigQuery', () => {
  it('reads the plan limit and refuses a key once its expiry has passed', async () => {
    const key = await createKey(ctx, { tenantId: TENANT, description: 'expiring', expiresInMs: 3_600_000 });
    const list = () => app.inject({ method: 'GET', url: '/api/v1/pipelines/runs', headers: { 'x-api-key': key.apiKey } });
    const accepted = await list();
    assert.equal(accepted.statusCode, 200, accepted.body);
    // The scale plan's 1,200 requests per minute reached the tenant limiter from BigQuery.
    assert.equal(accepted.headers['x-ratelimit-limit'], '1200');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.apiKeys, { expires_at: new Date(Date.now() - 1_000) }, { api_key_id: key.apiKeyId });
    await parts.auth.forgetAll();
    const refused = await list();
    assert.equal(refused.statusCode, 401, refused.body);
  });
});
