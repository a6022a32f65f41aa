/**
 * Runs that write BigQuery at the same time, on a cloud environment whose BigQuery fake runs jobs
 * concurrently with BigQuery's rules (2 mutating DML statements per table at once, 20 queued; of
 * two transactions that changed one table the later commit is aborted): four pipelines of one
 * tenant loading at once, each into its own table and all into the tenant's _convergence_state;
 * and three dispatch tasks of one execution running their shards of the due schedules at once.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { EXAMPLE_TENANT, exampleGcsVariant, installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { dispatchDueSchedules } from '../../src/services/schedules/dispatch.ts';
import { syncSchedules } from '../../src/services/schedules/sync.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { fakeClient } from '../fakes/bigquery/index.ts';
import { CLOUD_DATA_BUCKET, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const ENV = { env: 'cloud' };
/** Rows of the demo's usage exports that fit the schema (the others are quarantined). */
const DEMO_ROWS = 7 * 300 + 1;

let fakes: CloudFakes;
let root: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('concurrent-loads');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
  await installExample(root);
  // The demo's exports in Cloud Storage: pipelines of a cloud environment read no workspace files.
  const { objects } = await exampleGcsVariant(root, CLOUD_DATA_BUCKET);
  for (const [name, csv] of Object.entries(objects)) fakes.gcs.putObject(CLOUD_DATA_BUCKET, name, csv, 'text/csv');
  await withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'ACME', plan: 'scale' });
    },
    ENV,
  );
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

/** A pipeline of the demo tenant that loads the usage exports incrementally into its own table. */
async function writeLoadPipeline(pipelineId: string, table: string, schedule = ''): Promise<void> {
  await writeFile(
    path.join(root, 'configs', EXAMPLE_TENANT, 'pipelines', `${pipelineId}.yml`),
    `pipeline_id: ${pipelineId}\n${schedule}steps:\n` +
      `  - { name: ingest_usage, type: ingest, source_config: sources/usage_files_gcs.yml, ` +
      `destination: { table: ${table}, write_mode: merge, merge_keys: [request_id] } }\n`,
  );
}

const countOf = async (dataset: string, table: string) =>
  withContext(root, async (ctx) => (await ctx.backends.warehouse()).count(dataset, table), ENV);

describe('concurrent loads on BigQuery', () => {
  it('four pipelines of one tenant loading at once all complete, with their rows and each its own cursor', async () => {
    const pipelines = ['p_par_1', 'p_par_2', 'p_par_3', 'p_par_4'];
    for (const [i, id] of pipelines.entries()) await writeLoadPipeline(id, `raw_usage_par_${i + 1}`);

    const summaries = await Promise.all(
      pipelines.map((pipelineId) =>
        withContext(root, (ctx) => runPipeline(ctx, { tenantId: EXAMPLE_TENANT, pipelineId, runDate: '2025-01-31' }), ENV),
      ),
    );
    assert.deepEqual(
      summaries.map((s) => `${s.pipelineId}: ${s.status}${s.error ? ` ${s.error.message}` : ''}`),
      pipelines.map((p) => `${p}: COMPLETE`),
    );
    for (const i of [1, 2, 3, 4]) assert.equal(await countOf(EXAMPLE_TENANT, `raw_usage_par_${i}`), DEMO_ROWS, `raw_usage_par_${i}`);

    const state = await withContext(
      root,
      async (ctx) => (await ctx.backends.warehouse()).select(EXAMPLE_TENANT, '_convergence_state', {}),
      ENV,
    );
    // Each pipeline keeps its cursor over usage_date and the objects it loaded (ingest_usage#objects).
    const cursors = state.filter((r) => r['step_name'] === 'ingest_usage');
    assert.deepEqual(cursors.map((r) => String(r['pipeline_id'])).sort(), pipelines);
    assert.deepEqual(
      state
        .filter((r) => r['step_name'] === 'ingest_usage#objects')
        .map((r) => String(r['pipeline_id']))
        .sort(),
      pipelines,
    );
    assert.equal(new Set(cursors.map((r) => r['cursor_value'])).size, 1, 'every pipeline committed the same cursor over the same files');
    assert.ok(cursors[0]!['cursor_value'], 'a cursor was committed');
  });

  it('three dispatch tasks at once run each due schedule of their shard once, all complete', async () => {
    const pipelines = ['p_sched_1', 'p_sched_2', 'p_sched_3', 'p_sched_4', 'p_sched_5', 'p_sched_6'];
    for (const [i, id] of pipelines.entries()) {
      await writeLoadPipeline(id, `raw_usage_sched_${i + 1}`, "schedule: { cron: '*/15 * * * *', timezone: UTC }\n");
    }
    await withContext(
      root,
      async (ctx) => {
        for (const pipelineId of pipelines) await pushPipelines(ctx, { tenantId: EXAMPLE_TENANT, pipelineId });
        await syncSchedules(ctx, EXAMPLE_TENANT);
        const warehouse = await ctx.backends.warehouse();
        // Every schedule due now.
        await warehouse.update(METADATA_DATASET, T.schedules, { next_run_at: new Date(ctx.now().getTime() - 60_000) }, { is_active: true });
      },
      ENV,
    );

    const results = await Promise.all(
      [0, 1, 2].map((taskIndex) => withContext(root, (ctx) => dispatchDueSchedules(ctx, { taskIndex, taskCount: 3 }), ENV)),
    );
    const outcomes = results.flatMap((r) => r.outcomes);
    assert.deepEqual(outcomes.map((o) => o.pipelineId).sort(), pipelines, 'each schedule ran in one task');
    assert.deepEqual(
      outcomes.map((o) => `${o.pipelineId}: ${o.status}${o.error ? ` ${o.error.message}` : ''}`).sort(),
      pipelines.map((p) => `${p}: COMPLETE`),
    );
    assert.equal(
      results.reduce((n, r) => n + r.failed, 0),
      0,
    );
    for (const i of pipelines.keys()) assert.equal(await countOf(EXAMPLE_TENANT, `raw_usage_sched_${i + 1}`), DEMO_ROWS);

    await withContext(
      root,
      async (ctx) => {
        const warehouse = await ctx.backends.warehouse();
        const runs = await warehouse.select(METADATA_DATASET, T.runs, { where: { trigger_type: 'scheduled' } });
        assert.deepEqual(
          runs.map((r) => `${String(r['pipeline_id'])}: ${String(r['status'])}`).sort(),
          pipelines.map((p) => `${p}: COMPLETE`),
        );
        const schedules = await warehouse.select(METADATA_DATASET, T.schedules, {});
        for (const s of schedules)
          assert.ok(
            runs.some((r) => r['pipeline_logging_id'] === s['last_run_id']),
            `${String(s['schedule_id'])} ran`,
          );
      },
      ENV,
    );
  });

  it('an UPDATE refused by a full DML queue is run again and lands once the queue drains', async () => {
    const table = 'raw_usage_par_1';
    const [row] = await withContext(root, async (ctx) => (await ctx.backends.warehouse()).select(EXAMPLE_TENANT, table, { limit: 1 }), ENV);
    const requestId = String(row!['request_id']);
    // Another writer's 22 UPDATEs of the table, held: 2 run and 20 wait, so the queue is full.
    const client = await fakeClient(fakes.bigquery);
    const held = `UPDATE ${EXAMPLE_TENANT}.${table} SET provider = provider WHERE request_id = 'none'`;
    const hold = fakes.bigquery.engine.holds.hold(/^UPDATE acme_corp\.raw_usage_par_1 SET provider = provider/);
    const others = [];
    for (let i = 0; i < 22; i++) others.push((await client.createQueryJob({ query: held, location: 'US' }))[0]);
    await hold.arrived(2);
    while (fakes.bigquery.engine.locks.load(`${EXAMPLE_TENANT}.${table}`).queued < 20) await tick();

    const refusals = () => fakes.bigquery.requests.filter((r) => r.status === 400 && /UPDATE/.test(JSON.stringify(r.body))).length;
    const before = refusals();
    const update = withContext(
      root,
      async (ctx) => (await ctx.backends.warehouse()).update(EXAMPLE_TENANT, table, { model: 'queued-model' }, { request_id: requestId }),
      ENV,
    );
    while (refusals() === before) await tick();
    hold.release();
    assert.equal(await update, 1, 'the update ran once the queue had room');
    await Promise.all(others.map((job) => job.getQueryResults()));
    const [updated] = await withContext(
      root,
      async (ctx) => (await ctx.backends.warehouse()).select(EXAMPLE_TENANT, table, { where: { request_id: requestId } }),
      ENV,
    );
    assert.equal(updated!['model'], 'queued-model');
  });
});
