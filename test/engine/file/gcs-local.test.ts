/**
 * gs:// file sources on the embedded engine (DuckDB): objects are listed and downloaded through the
 * official Storage client from the GCS fake, then staged as local files are. Loads by object:
 * a rerun reads only new or rewritten objects, and the loaded set commits with the rows.
 */
import '../../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ENDPOINT_VARS } from '../../../src/backends/gcp/clients.ts';
import { storageForSources } from '../../../src/backends/gcp/storage.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { exampleGcsVariant, installExample } from '../../../src/services/example.ts';
import { runPipeline } from '../../../src/services/pipelines/run.ts';
import { createTenant } from '../../../src/services/tenants.ts';
import { GcsFake } from '../../fakes/gcs/server.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../../helpers/context.ts';
import { cleanupAll } from '../../helpers/tmp.ts';
import { TENANT } from './workspace.ts';
import { listFileRoots } from '../../helpers/file-roots.ts';

const BUCKET = 'acme-usage-exports';
const SCHEMA = [
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'day', type: 'DATE' },
  { name: 'amount', type: 'FLOAT64' },
];

let gcs: GcsFake;
const previousEndpoint = process.env[ENDPOINT_VARS.storage];
before(async () => {
  gcs = await GcsFake.start({ buckets: [BUCKET] });
  process.env[ENDPOINT_VARS.storage] = gcs.endpoint;
});
after(async () => {
  if (previousEndpoint === undefined) delete process.env[ENDPOINT_VARS.storage];
  else process.env[ENDPOINT_VARS.storage] = previousEndpoint;
  await gcs.close();
  await cleanupAll();
});

/** A workspace whose tenant has one pipeline: gs:// `sourcePath` merged into `orders` on id. */
async function gcsWorkspace(label: string, sourcePath: string, writeMode = 'merge'): Promise<string> {
  const root = await newBootstrappedWorkspace(label);
  await listFileRoots(root, [`gs://${BUCKET}/`, 'gs://no-such-bucket-here/']);
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
  const dir = path.join(root, 'configs', TENANT);
  await mkdir(path.join(dir, 'schemas'), { recursive: true });
  await writeFile(path.join(dir, 'schemas', 'orders.json'), JSON.stringify(SCHEMA));
  await writeFile(
    path.join(dir, 'sources', 'orders.yml'),
    `source_id: orders\ntype: file\npath: ${sourcePath}\nformat: csv\nschema: schemas/orders.json\n`,
  );
  const merge = writeMode === 'merge' ? ', merge_keys: [id]' : '';
  await writeFile(
    path.join(dir, 'pipelines', 'p_orders.yml'),
    `pipeline_id: p_orders\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/orders.yml, destination: { table: orders, write_mode: ${writeMode}${merge} } }\n`,
  );
  return root;
}

const run = (root: string) =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_orders', runDate: '2025-01-31' }));
const count = (root: string, table: string) => withWarehouse(root, (w) => w.count(TENANT, table));

describe('a gs:// file source on the local engine', () => {
  it('loads the objects a wildcard matches, quarantines bad values, and on a rerun loads only new or rewritten objects', async () => {
    const prefix = 'orders-a/';
    gcs.putObject(BUCKET, `${prefix}day_1.csv`, 'id,day,amount\n1,2025-01-01,1.5\n2,2025-01-01,2.5\n');
    gcs.putObject(BUCKET, `${prefix}day_2.csv`, 'id,day,amount\n3,2025-01-02,x\n4,2025-13-02,4\n5,2025-01-02,5\n');
    gcs.putObject(BUCKET, `${prefix}notes.txt`, 'not a csv');
    const root = await gcsWorkspace('gcs-local', `gs://${BUCKET}/${prefix}day_*.csv`);

    const first = await run(root);
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.equal(await count(root, 'orders'), 3);
    assert.equal(await count(root, 'orders__quarantine'), 2);
    const quarantined = await withWarehouse(root, (w) => w.select(TENANT, 'orders__quarantine'));
    assert.deepEqual(new Set(quarantined.map((r) => r['_source_file'])), new Set([`gs://${BUCKET}/${prefix}day_2.csv`]));
    assert.ok(quarantined.every((r) => typeof r['_reason'] === 'string' && r['_reason'] !== ''));

    const again = await run(root);
    assert.equal(again.status, 'COMPLETE', JSON.stringify(again.error));
    assert.equal(again.steps[0]!.rowsIn, 0);
    assert.ok(
      again.steps[0]!.notes.some((n) => n.includes('no new or changed objects')),
      String(again.steps[0]!.notes),
    );

    // A rewrite gets a new generation: that object alone is read again, and merge keeps one row per id.
    gcs.putObject(BUCKET, `${prefix}day_1.csv`, 'id,day,amount\n1,2025-01-01,10\n2,2025-01-01,2.5\n6,2025-01-01,6\n');
    const third = await run(root);
    assert.equal(third.status, 'COMPLETE', JSON.stringify(third.error));
    assert.equal(third.steps[0]!.rowsIn, 3);
    assert.equal(await count(root, 'orders'), 4);
    const [one] = await withWarehouse(root, (w) => w.select(TENANT, 'orders', { where: { id: 1 } }));
    assert.equal(one!['amount'], 10);
  });

  it('append loads a rewritten object in full again, and the notes say so', async () => {
    const prefix = 'orders-g/';
    gcs.putObject(BUCKET, `${prefix}export.csv`, 'id,day,amount\n1,2025-01-01,1\n2,2025-01-01,2\n');
    gcs.putObject(BUCKET, `${prefix}other.csv`, 'id,day,amount\n9,2025-01-01,9\n');
    const root = await gcsWorkspace('gcs-append', `gs://${BUCKET}/${prefix}*.csv`, 'append');
    const first = await run(root);
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.ok(!first.steps[0]!.notes.some((n) => n.includes('was rewritten')), String(first.steps[0]!.notes));

    gcs.putObject(BUCKET, `${prefix}export.csv`, 'id,day,amount\n1,2025-01-01,1\n2,2025-01-01,2\n3,2025-01-02,3\n');
    const second = await run(root);
    assert.equal(second.status, 'COMPLETE', JSON.stringify(second.error));
    assert.equal(second.steps[0]!.rowsIn, 3, 'the rewritten object is read in full; the unchanged one is not');
    assert.equal(await count(root, 'orders'), 3 + 3);
    assert.deepEqual(
      second.steps[0]!.notes.filter((n) => n.includes('was rewritten')),
      [
        `gs://${BUCKET}/${prefix}export.csv was rewritten since it was loaded: its rows were appended again; ` +
          'use write_mode: merge with merge_keys to update rows instead',
      ],
    );
  });

  it('fails the run with SOURCE_NO_FILES (exit 3) when nothing matches', async () => {
    const root = await gcsWorkspace('gcs-none', `gs://${BUCKET}/nothing/here_*.csv`);
    const summary = await run(root);
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 3);
    assert.equal(summary.error?.code, 'SOURCE_NO_FILES');
    assert.match(summary.error!.message, /no object matches "gs:\/\/acme-usage-exports\/nothing\/here_\*\.csv"/);
  });

  it('names the bucket when it does not exist', async () => {
    const root = await gcsWorkspace('gcs-nobucket', 'gs://no-such-bucket-here/x_*.csv');
    const summary = await run(root);
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 3, JSON.stringify(summary.error));
    assert.equal(summary.error?.code, 'SOURCE_NOT_FOUND');
    assert.match(summary.error!.message, /bucket gs:\/\/no-such-bucket-here does not exist/);
    assert.match(summary.error!.suggestion ?? '', /check the bucket name in path:/);
  });

  it('replace reads every object on each run', async () => {
    const prefix = 'orders-r/';
    gcs.putObject(BUCKET, `${prefix}a.csv`, 'id,day,amount\n1,2025-01-01,1\n');
    const root = await gcsWorkspace('gcs-replace', `gs://${BUCKET}/${prefix}*`, 'replace');
    assert.equal((await run(root)).status, 'COMPLETE');
    const again = await run(root);
    assert.equal(again.status, 'COMPLETE', JSON.stringify(again.error));
    assert.equal(again.steps[0]!.rowsIn, 1);
    assert.equal(await count(root, 'orders'), 1);
  });

  it('runs the gs:// variant of the demo: the example exports read from the bucket', async () => {
    const root = await newBootstrappedWorkspace('gcs-demo');
    await installExample(root);
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
    const { pipelineId, objects, fileRoot } = await exampleGcsVariant(root, BUCKET);
    await listFileRoots(root, [fileRoot]);
    for (const [name, csv] of Object.entries(objects)) gcs.putObject(BUCKET, name, csv, 'text/csv');
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId, runDate: '2025-01-08' }));
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(await count(root, 'raw_usage'), 7 * 300 + 1);
    assert.equal(await count(root, 'raw_usage__quarantine'), 2);
    // Each quarantined row names the one object it came from (gcs-bigquery.test.ts asserts the same on BigQuery).
    const origins = await withWarehouse(root, (w) =>
      w.select(TENANT, 'raw_usage__quarantine', { columns: ['_source_file', '_reason'], orderBy: [['_source_file', 'asc']] }),
    );
    assert.deepEqual(
      origins.map((r) => r['_source_file']),
      [`gs://${BUCKET}/${TENANT}/usage/usage_2025-01-03.csv`, `gs://${BUCKET}/${TENANT}/usage/usage_2025-01-05.csv`],
    );
    assert.match(String(origins[0]!['_reason']), /input_tokens/);
  });

  it('without Application Default Credentials: one clean error (exit 7) with the login command', async () => {
    const home = await makeTempDir('no-adc');
    // No endpoint override, no credentials anywhere google-auth looks, no metadata server (env-guard).
    const saved = { HOME: process.env.HOME, CLOUDSDK_CONFIG: process.env.CLOUDSDK_CONFIG, GAC: process.env.GOOGLE_APPLICATION_CREDENTIALS };
    process.env.HOME = home;
    process.env.CLOUDSDK_CONFIG = home;
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    try {
      await assert.rejects(storageForSources({}), (err: { exitCode?: number; code?: string; suggestion?: string }) => {
        assert.equal(err.code, 'UNAUTHENTICATED');
        assert.equal(err.exitCode, 7);
        assert.match(err.suggestion ?? '', /gcloud auth application-default login/);
        return true;
      });
    } finally {
      for (const [name, value] of [
        ['HOME', saved.HOME],
        ['CLOUDSDK_CONFIG', saved.CLOUDSDK_CONFIG],
        ['GOOGLE_APPLICATION_CREDENTIALS', saved.GAC],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
