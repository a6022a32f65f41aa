/**
 * Run parameters are checked against the pipeline on every path that starts a run, as a remote
 * start checks them: a local run, its dry run and a headless container run refuse unknown or
 * reserved names, too many parameters and over-long values (exit 2, 400 through the API) before a
 * run row or a lock.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cloudRunTask, JobLogger } from '../../src/job/logger.ts';
import { resolveJobInput, runPipelineTask } from '../../src/job/tasks.ts';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { planPipelineRun, runPipeline, type RunInput } from '../../src/services/pipelines/run.ts';
import { createRun, getRun } from '../../src/services/runs/store.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { apiHarness, type ApiHarness } from '../server/helpers.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const PIPELINE = 'p_usage_daily';
let root: string;

before(async () => {
  root = await newBootstrappedWorkspace('params');
  await installExample(root);
  // One declared parameter (the example pipeline declares none).
  const file = path.join(root, 'configs', TENANT, 'pipelines', `${PIPELINE}.yml`);
  await writeFile(file, (await readFile(file, 'utf8')).replace('timeout: 30m\n', "timeout: 30m\nparams: { region: 'us' }\n"));
  await withContext(root, async (ctx) => {
    await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
    await pushPipelines(ctx, { tenantId: TENANT, pipelineId: PIPELINE });
  });
});
after(cleanupAll);

const input = (params: Record<string, string>): RunInput => ({ tenantId: TENANT, pipelineId: PIPELINE, runDate: '2025-01-31', params });
const runRows = () => withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs));

/** Each refusal, with what it must say. */
const REFUSED: Array<[string, Record<string, string>, RegExp]> = [
  ['a name the pipeline does not take', { regoin: 'eu' }, /pipeline p_usage_daily takes no parameter "regoin"/],
  ['a name the run sets itself', { run_date: '2025-01-31' }, /parameter "run_date" is set by the run itself/],
  ['the cursor of an incremental read', { cursor: '2025-01-01' }, /parameter "cursor" is set by the run itself/],
  ['a value over 1000 characters', { region: 'x'.repeat(1001) }, /parameter region must be text of at most 1000 characters/],
  [
    'more than 50 parameters',
    Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`p${i}`, 'x'])),
    /at most 50 parameters can be passed, not 51/,
  ],
];

describe('pipeline run --param on the local engine', () => {
  for (const [label, params, message] of REFUSED) {
    it(`refuses ${label} (exit 2) before a run row or the lock`, async () => {
      const rows = await runRows();
      await rejectsWith(
        withContext(root, (ctx) => runPipeline(ctx, input(params))),
        2,
        message,
      );
      assert.equal(await runRows(), rows, 'no run row was written');
    });
  }

  it('names what the pipeline takes, and points run_date at --run-date', async () => {
    const unknown = await rejectsWith(
      withContext(root, (ctx) => runPipeline(ctx, input({ regoin: 'eu' }))),
      2,
    );
    assert.equal(unknown.suggestion, 'it takes: region');
    const reserved = await rejectsWith(
      withContext(root, (ctx) => runPipeline(ctx, input({ run_date: '2025-01-31' }))),
      2,
    );
    assert.equal(reserved.suggestion, 'pass it as --run-date YYYY-MM-DD');
  });

  it('refuses them in a dry run as well', async () => {
    await rejectsWith(
      withContext(root, (ctx) => planPipelineRun(ctx, input({ regoin: 'eu' }))),
      2,
      /takes no parameter "regoin"/,
    );
  });

  it('runs with a declared parameter and records it, the lock free after the refusals', async () => {
    const summary = await withContext(root, (ctx) => runPipeline(ctx, input({ region: 'eu' })));
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const run = await withContext(root, (ctx) => getRun(ctx, summary.runId));
    assert.deepEqual(run.parameters, { region: 'eu' });
  });
});

describe('job run-pipeline (a headless run of the pushed config)', () => {
  it('refuses an unknown parameter of its env overrides (exit 2) and ends the PENDING row its start wrote', async () => {
    const runId = randomUUID();
    // As startRemoteRun leaves it: the row exists before the container starts.
    await withContext(root, (ctx) =>
      createRun(ctx, {
        runId,
        tenantId: TENANT,
        pipelineId: PIPELINE,
        trigger: 'remote',
        runDate: '2025-01-31',
        parameters: { regoin: 'eu' },
        timeoutAt: new Date(Date.now() + 3_600_000),
      }),
    );
    const env = {
      CONVERGENCE_TENANT: TENANT,
      CONVERGENCE_PIPELINE: PIPELINE,
      CONVERGENCE_RUN_ID: runId,
      CONVERGENCE_PARAMS: JSON.stringify({ regoin: 'eu' }),
    };
    await withContext(root, async (ctx) => {
      const task = cloudRunTask({});
      const log = new JobLogger({ task, write: () => undefined });
      await rejectsWith(
        runPipelineTask({ ctx, log, task, signal: new AbortController().signal }, resolveJobInput({}, env), env),
        2,
        /takes no parameter "regoin"/,
      );
    });
    const run = await withContext(root, (ctx) => getRun(ctx, runId));
    assert.equal(run.status, 'FAILED');
    assert.equal(run.exitCode, 2);
    assert.match(run.errorMessage ?? '', /takes no parameter "regoin"/);
  });
});

describe('POST /api/v1/pipelines/run on the local engine', () => {
  let h: ApiHarness;
  before(async () => {
    h = await apiHarness();
  });
  after(() => h.close());

  it('refuses a parameter the pipeline does not take (400) and writes no run row', async () => {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/pipelines/run/p_usage_daily',
      key: h.keys.acme,
      payload: { parameters: { regoin: 'eu' } },
    });
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json<{ error: { message: string; suggestion?: string } }>();
    assert.match(body.error.message, /takes no parameter "regoin"/);
    assert.equal(await h.ctx.backends.warehouse().then((w) => w.count(METADATA_DATASET, T.runs)), 0);
  });
});
