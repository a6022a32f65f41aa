/**
 * gs:// file sources into BigQuery: one load job reads the objects straight from Cloud Storage
 * (the BigQuery fake reads the GCS fake), SQL types the text, untypeable values reach quarantine,
 * and the loaded objects commit with the rows, so a rerun loads only new or rewritten objects.
 */
import '../../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../../src/services/bootstrap.ts';
import { exampleGcsVariant, installExample } from '../../../src/services/example.ts';
import { runPipeline } from '../../../src/services/pipelines/run.ts';
import { createTenant } from '../../../src/services/tenants.ts';
import { startCloudFakes, type CloudFakes } from '../../fakes/cloud.ts';
import { newWorkspace, withContext } from '../../helpers/context.ts';
import { cleanupAll } from '../../helpers/tmp.ts';

const TENANT = 'acme_corp';
const BUCKET = 'acme-usage-exports';
const SCHEMA = [
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'day', type: 'DATE' },
  { name: 'amount', type: 'FLOAT64' },
];
let fakes: CloudFakes;
let root: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  fakes.gcs.addBucket(BUCKET);
  root = await newWorkspace('gcs-bigquery');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
  await withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
    },
    { env: 'cloud' },
  );
  const dir = path.join(root, 'configs', TENANT);
  await mkdir(path.join(dir, 'schemas'), { recursive: true });
  await writeFile(path.join(dir, 'schemas', 'orders.json'), JSON.stringify(SCHEMA));
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

async function pipeline(id: string, sourcePath: string, format = 'csv'): Promise<void> {
  const dir = path.join(root, 'configs', TENANT);
  await writeFile(
    path.join(dir, 'sources', `${id}.yml`),
    `source_id: ${id}\ntype: file\npath: ${sourcePath}\nformat: ${format}\nschema: schemas/orders.json\n`,
  );
  await writeFile(
    path.join(dir, 'pipelines', `${id}.yml`),
    `pipeline_id: ${id}\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/${id}.yml, destination: { table: ${id}, write_mode: merge, merge_keys: [id] } }\n`,
  );
}

const run = (id: string) =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: id, runDate: '2025-01-31' }), { env: 'cloud' });
const count = (table: string) => withContext(root, async (ctx) => (await ctx.backends.warehouse()).count(TENANT, table), { env: 'cloud' });
const loadJobs = () =>
  [...fakes.bigquery.jobs.values()].filter(
    (j) => (j as { configuration?: { load?: { sourceUris?: unknown } } }).configuration?.load?.sourceUris,
  );

describe('a gs:// file source into BigQuery', () => {
  it('loads CSV objects by one load job from their URIs, quarantines bad values, and reloads only rewritten objects', async () => {
    fakes.gcs.putObject(BUCKET, 'orders/day_1.csv', 'id,day,amount\n1,2025-01-01,1.5\n2,2025-01-01,2.5\n');
    fakes.gcs.putObject(BUCKET, 'orders/day_2.csv', 'id,day,amount\n3,2025-01-02,x\n4,2025-13-02,4\n5,2025-01-02,5\n,2025-01-02,6\n');
    await pipeline('orders', `gs://${BUCKET}/orders/day_*.csv`);
    const before = loadJobs().length;
    const first = await run('orders');
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.equal(loadJobs().length - before, 1, 'one load job reads the objects');
    assert.equal(await count('orders'), 3);
    assert.equal(await count('orders__quarantine'), 3);
    const reasons = await withContext(
      root,
      async (ctx) => (await ctx.backends.warehouse()).select(TENANT, 'orders__quarantine', { columns: ['_reason'] }),
      { env: 'cloud' },
    );
    assert.deepEqual(reasons.map((r) => r['_reason']).sort(), [
      "amount: 'x' is not a valid FLOAT64",
      "day: '2025-13-02' is not a valid DATE",
      'id: required value is missing',
    ]);

    const again = await run('orders');
    assert.equal(again.status, 'COMPLETE', JSON.stringify(again.error));
    assert.equal(again.steps[0]!.rowsIn, 0);
    assert.equal(loadJobs().length - before, 1, 'nothing new: no load job');

    fakes.gcs.putObject(BUCKET, 'orders/day_1.csv', 'id,day,amount\n1,2025-01-01,10\n7,2025-01-01,7\n');
    const third = await run('orders');
    assert.equal(third.status, 'COMPLETE', JSON.stringify(third.error));
    assert.equal(third.steps[0]!.rowsIn, 2, 'only the rewritten object is read');
    assert.equal(loadJobs().length - before, 2);
    assert.equal(await count('orders'), 4);
  });

  it('loads NDJSON objects', async () => {
    fakes.gcs.putObject(
      BUCKET,
      'events/a.ndjson',
      '{"id": 1, "day": "2025-01-01", "amount": 1}\n{"id": 2, "day": "2025-01-01", "amount": "bad"}\n',
    );
    await pipeline('events', `gs://${BUCKET}/events/*.ndjson`, 'ndjson');
    const summary = await run('events');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(await count('events'), 1);
    assert.equal(await count('events__quarantine'), 1);
  });

  it('fails with SOURCE_NO_FILES (exit 3) when no object matches', async () => {
    await pipeline('nothing', `gs://${BUCKET}/none/x_*.csv`);
    const summary = await run('nothing');
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 3);
    assert.equal(summary.error?.code, 'SOURCE_NO_FILES');
  });

  it('runs the gs:// variant of the demo (its cursor_field has the rows pass through the engine, then into BigQuery)', async () => {
    await installExample(root);
    const { pipelineId, objects } = await exampleGcsVariant(root, BUCKET);
    for (const [name, csv] of Object.entries(objects)) fakes.gcs.putObject(BUCKET, name, csv, 'text/csv');
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId, runDate: '2025-01-08' }), {
      env: 'cloud',
    });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(await count('raw_usage'), 7 * 300 + 1);
    assert.equal(await count('raw_usage__quarantine'), 2);
  });
});
