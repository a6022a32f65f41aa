/**
 * gs:// file sources into BigQuery: one query job reads the objects straight from Cloud Storage as
 * a temporary external table (the BigQuery fake reads the GCS fake), SQL types the text and names
 * each row's object, untypeable values reach quarantine,
 * and the loaded objects commit with the rows, so a rerun loads only new or rewritten objects.
 * An incremental cursor is filtered and moved in SQL, committed with the rows; CSV columns are
 * read by their header names.
 */
import '../../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SelectOptions } from '../../../src/backends/warehouse/port.ts';
import { bootstrap } from '../../../src/services/bootstrap.ts';
import { exampleGcsVariant, installExample } from '../../../src/services/example.ts';
import { runPipeline } from '../../../src/services/pipelines/run.ts';
import { getStepLogs } from '../../../src/services/runs/store.ts';
import { createTenant } from '../../../src/services/tenants.ts';
import { startCloudFakes, type CloudFakes } from '../../fakes/cloud.ts';
import { newWorkspace, withContext } from '../../helpers/context.ts';
import { cleanupAll } from '../../helpers/tmp.ts';
import { listFileRoots } from '../../helpers/file-roots.ts';

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
  await listFileRoots(root, [`gs://${BUCKET}/`], 'cloud');
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

async function pipeline(id: string, sourcePath: string, format = 'csv', extra = ''): Promise<void> {
  const dir = path.join(root, 'configs', TENANT);
  await writeFile(
    path.join(dir, 'sources', `${id}.yml`),
    `source_id: ${id}\ntype: file\npath: ${sourcePath}\nformat: ${format}\nschema: schemas/orders.json\n${extra}`,
  );
  await writeFile(
    path.join(dir, 'pipelines', `${id}.yml`),
    `pipeline_id: ${id}\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/${id}.yml, destination: { table: ${id}, write_mode: merge, merge_keys: [id] } }\n`,
  );
}

const run = (id: string) =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: id, runDate: '2025-01-31' }), { env: 'cloud' });
const count = (table: string) => withContext(root, async (ctx) => (await ctx.backends.warehouse()).count(TENANT, table), { env: 'cloud' });
/** What the run's ingest step recorded in its step log. */
const ingestDetails = (summary: { runId: string }) =>
  withContext(root, async (ctx) => (await getStepLogs(ctx, summary.runId))[0]!.details ?? {}, { env: 'cloud' });
const select = (table: string, options: SelectOptions = {}) =>
  withContext(root, async (ctx) => (await ctx.backends.warehouse()).select(TENANT, table, options), { env: 'cloud' });
/** Jobs that read Cloud Storage objects: queries over a temporary external table of their URIs. */
const objectJobs = () =>
  [...fakes.bigquery.jobs.values()].filter((j) =>
    Object.values(
      (j as { configuration?: { query?: { tableDefinitions?: Record<string, { sourceUris?: unknown }> } } }).configuration?.query
        ?.tableDefinitions ?? {},
    ).some((table) => table.sourceUris),
  );

describe('a gs:// file source into BigQuery', () => {
  it('loads CSV objects by one job from their URIs, quarantines bad values, and reloads only rewritten objects', async () => {
    fakes.gcs.putObject(BUCKET, 'orders/day_1.csv', 'id,day,amount\n1,2025-01-01,1.5\n2,2025-01-01,2.5\n');
    fakes.gcs.putObject(BUCKET, 'orders/day_2.csv', 'id,day,amount\n3,2025-01-02,x\n4,2025-13-02,4\n5,2025-01-02,5\n,2025-01-02,6\n');
    await pipeline('orders', `gs://${BUCKET}/orders/day_*.csv`);
    const before = objectJobs().length;
    const first = await run('orders');
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.equal(objectJobs().length - before, 1, 'one job reads the objects');
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
    // Each row names its own object, as on the local engine, with its line (the header is line 1).
    const origins = await select('orders__quarantine', { columns: ['_source_file', '_source_row'], orderBy: [['_source_row', 'asc']] });
    assert.deepEqual(
      origins.map((r) => [r['_source_file'], r['_source_row']]),
      [2, 3, 5].map((line) => [`gs://${BUCKET}/orders/day_2.csv`, line]),
    );

    const again = await run('orders');
    assert.equal(again.status, 'COMPLETE', JSON.stringify(again.error));
    assert.equal(again.steps[0]!.rowsIn, 0);
    assert.equal(objectJobs().length - before, 1, 'nothing new: no job reads objects');

    fakes.gcs.putObject(BUCKET, 'orders/day_1.csv', 'id,day,amount\n1,2025-01-01,10\n7,2025-01-01,7\n');
    const third = await run('orders');
    assert.equal(third.status, 'COMPLETE', JSON.stringify(third.error));
    assert.equal(third.steps[0]!.rowsIn, 2, 'only the rewritten object is read');
    assert.equal(objectJobs().length - before, 2);
    assert.equal(await count('orders'), 4);
  });

  it('appends a rewritten object in full again under write_mode append, and says so in the notes', async () => {
    const dir = path.join(root, 'configs', TENANT);
    await pipeline('growing', `gs://${BUCKET}/growing/*.csv`);
    await writeFile(
      path.join(dir, 'pipelines', 'growing.yml'),
      'pipeline_id: growing\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/growing.yml, destination: { table: growing, write_mode: append } }\n',
    );
    fakes.gcs.putObject(BUCKET, 'growing/export.csv', 'id,day,amount\n1,2025-01-01,1\n2,2025-01-01,2\n');
    fakes.gcs.putObject(BUCKET, 'growing/other.csv', 'id,day,amount\n9,2025-01-01,9\n');
    const first = await run('growing');
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.ok(!first.steps[0]!.notes.some((n) => n.includes('was rewritten')), String(first.steps[0]!.notes));

    fakes.gcs.putObject(BUCKET, 'growing/export.csv', 'id,day,amount\n1,2025-01-01,1\n2,2025-01-01,2\n3,2025-01-02,3\n');
    const second = await run('growing');
    assert.equal(second.status, 'COMPLETE', JSON.stringify(second.error));
    assert.equal((await ingestDetails(second))['loadedBy'], 'warehouse');
    assert.equal(second.steps[0]!.rowsIn, 3, 'the rewritten object is read in full; the unchanged one is not');
    assert.equal(await count('growing'), 3 + 3);
    assert.deepEqual(
      second.steps[0]!.notes.filter((n) => n.includes('was rewritten')),
      [
        `gs://${BUCKET}/growing/export.csv was rewritten since it was loaded: its rows were appended again; ` +
          'use write_mode: merge with merge_keys to update rows instead',
      ],
    );
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

  it('moves a TIMESTAMP cursor in SQL, in the text the staged path commits', async () => {
    const dir = path.join(root, 'configs', TENANT);
    await writeFile(
      path.join(dir, 'schemas', 'ticks.json'),
      JSON.stringify([
        { name: 'id', type: 'INT64', mode: 'REQUIRED' },
        { name: 'at', type: 'TIMESTAMP' },
      ]),
    );
    await writeFile(
      path.join(dir, 'sources', 'ticks.yml'),
      `source_id: ticks\ntype: file\npath: gs://${BUCKET}/ticks/*.csv\nformat: csv\nschema: schemas/ticks.json\nincremental: { cursor_field: at }\n`,
    );
    await writeFile(
      path.join(dir, 'pipelines', 'ticks.yml'),
      'pipeline_id: ticks\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/ticks.yml, destination: { table: ticks, write_mode: append } }\n',
    );
    fakes.gcs.putObject(BUCKET, 'ticks/1.csv', 'id,at\n1,2025-01-01T10:00:00Z\n2,2025-01-01 11:30:00.5\n3,\n');
    const first = await run('ticks');
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.equal((await ingestDetails(first))['cursorTo'], '2025-01-01T11:30:00.500000Z');
    const [missing] = await select('ticks__quarantine', { columns: ['_reason'] });
    assert.equal(missing?.['_reason'], 'at: incremental cursor value is missing');

    fakes.gcs.putObject(BUCKET, 'ticks/2.csv', 'id,at\n4,2025-01-01T11:30:00.500Z\n5,2025-01-02T00:00:00Z\n');
    const second = await run('ticks');
    assert.equal(second.status, 'COMPLETE', JSON.stringify(second.error));
    const details = await ingestDetails(second);
    assert.equal(details['cursorFrom'], '2025-01-01T11:30:00.500000Z');
    assert.equal(details['cursorTo'], '2025-01-02T00:00:00.000000Z');
    assert.deepEqual(
      (await select('ticks', { orderBy: [['id', 'asc']] })).map((r) => r['id']),
      [1, 2, 5],
    );

    // A committed cursor that is not of the field's type stops the run before any job, as on the staged path.
    await withContext(
      root,
      async (ctx) =>
        (await ctx.backends.warehouse()).update(
          TENANT,
          '_convergence_state',
          { cursor_value: 'yesterday' },
          { pipeline_id: 'ticks', step_name: 'ingest' },
        ),
      { env: 'cloud' },
    );
    fakes.gcs.putObject(BUCKET, 'ticks/3.csv', 'id,at\n6,2025-01-03T00:00:00Z\n');
    const before = objectJobs().length;
    const third = await run('ticks');
    assert.equal(third.status, 'FAILED');
    assert.equal(third.error?.code, 'VALIDATION');
    assert.match(third.error!.message, /incremental cursor "yesterday" is not a valid TIMESTAMP for cursor_field "at"/);
    assert.equal(objectJobs().length, before, 'no job reads objects');
  });

  it('fails the run (exit 3) with a clear VALIDATION error when the cursor_field is not a column of the schema', async () => {
    fakes.gcs.putObject(BUCKET, 'badcursor/a.csv', 'id,day,amount\n1,2025-01-01,1\n');
    await pipeline('badcursor', `gs://${BUCKET}/badcursor/*.csv`, 'csv', 'incremental: { cursor_field: nope }\n');
    const summary = await run('badcursor');
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 3, JSON.stringify(summary.error));
    assert.equal(summary.error?.code, 'VALIDATION');
    assert.match(summary.error!.message, /incremental cursor_field "nope" is not a column of the source/);
  });
});

describe('CSV objects into BigQuery, read by header name', () => {
  it('loads columns in another order than the schema by their names, in one job', async () => {
    fakes.gcs.putObject(BUCKET, 'reordered/a.csv', 'amount,id,day\n1.5,1,2025-01-01\nx,2,2025-01-02\n');
    fakes.gcs.putObject(BUCKET, 'reordered/b.csv', 'AMOUNT,Id,day\n3,3,2025-01-03\n');
    await pipeline('reordered', `gs://${BUCKET}/reordered/*.csv`);
    const before = objectJobs().length;
    const summary = await run('reordered');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal((await ingestDetails(summary))['loadedBy'], 'warehouse');
    assert.equal(objectJobs().length - before, 1);
    const rows = await select('reordered', { orderBy: [['id', 'asc']] });
    assert.deepEqual(
      rows.map((r) => [r['id'], r['day'], r['amount']]),
      [
        [1, '2025-01-01', 1.5],
        [3, '2025-01-03', 3],
      ],
    );
    const [quarantined] = await select('reordered__quarantine', { columns: ['_reason'] });
    assert.equal(quarantined?.['_reason'], "amount: 'x' is not a valid FLOAT64");
  });

  it('skips a column the schema lacks and stages a missing one as null, with the staged path notes', async () => {
    fakes.gcs.putObject(BUCKET, 'partial/a.csv', 'day,note,id\n2025-01-01,hello,1\n');
    await pipeline('partial', `gs://${BUCKET}/partial/*.csv`);
    const summary = await run('partial');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal((await ingestDetails(summary))['loadedBy'], 'warehouse');
    const uri = `gs://${BUCKET}/partial/a.csv`;
    assert.ok(
      summary.steps[0]!.notes.includes(`column "note" is not in the schema and was not loaded (${uri})`),
      String(summary.steps[0]!.notes),
    );
    assert.ok(summary.steps[0]!.notes.includes(`schema column amount is missing from ${uri}: staged as null`));
    const rows = await select('partial');
    assert.deepEqual(
      rows.map((r) => [r['id'], r['day'], r['amount']]),
      [[1, '2025-01-01', null]],
    );
  });

  it('quarantines every row of objects that lack a required column, as the staged path does', async () => {
    fakes.gcs.putObject(BUCKET, 'noid/a.csv', 'day,amount\n2025-01-01,1\n');
    await pipeline('noid', `gs://${BUCKET}/noid/*.csv`);
    const summary = await run('noid');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal((await ingestDetails(summary))['loadedBy'], 'warehouse');
    const [quarantined] = await select('noid__quarantine', { columns: ['_reason'] });
    assert.equal(quarantined?.['_reason'], 'id: required column is missing from the source');
  });

  it('stages objects whose headers differ through the engine, and says so', async () => {
    fakes.gcs.putObject(BUCKET, 'mixed/a.csv', 'id,day,amount\n1,2025-01-01,1\n');
    fakes.gcs.putObject(BUCKET, 'mixed/b.csv', 'amount,day,id\n2,2025-01-02,2\n');
    await pipeline('mixed', `gs://${BUCKET}/mixed/*.csv`);
    const before = objectJobs().length;
    const summary = await run('mixed');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal((await ingestDetails(summary))['loadedBy'], undefined);
    assert.equal(objectJobs().length - before, 0, 'no job reads the URIs');
    assert.ok(
      summary.steps[0]!.notes.some((n) =>
        n.startsWith(
          `the header of gs://${BUCKET}/mixed/b.csv (amount, day, id) differs from that of gs://${BUCKET}/mixed/a.csv (id, day, amount)`,
        ),
      ),
      String(summary.steps[0]!.notes),
    );
    const rows = await select('mixed', { orderBy: [['id', 'asc']] });
    assert.deepEqual(
      rows.map((r) => [r['id'], r['amount']]),
      [
        [1, 1],
        [2, 2],
      ],
    );
  });

  it('names the object, the permission and the role when its header cannot be read', async () => {
    fakes.gcs.addBucket('acme-locked-exports');
    fakes.gcs.putObject('acme-locked-exports', 'a.csv', 'id,day,amount\n1,2025-01-01,1\n');
    await listFileRoots(root, [`gs://${BUCKET}/`, 'gs://acme-locked-exports/'], 'cloud');
    fakes.gcs.deny('acme-locked-exports', { permissions: ['storage.objects.get'] });
    try {
      await pipeline('locked', 'gs://acme-locked-exports/*.csv');
      const summary = await run('locked');
      assert.equal(summary.status, 'FAILED');
      assert.equal(summary.exitCode, 3, JSON.stringify(summary.error));
      assert.equal(summary.error?.code, 'PERMISSION_DENIED');
      assert.match(summary.error!.message, /permission denied on gs:\/\/acme-locked-exports\/a\.csv: .* storage\.objects\.get/);
      assert.match(summary.error!.suggestion ?? '', /grant roles\/storage\.objectViewer on gs:\/\/acme-locked-exports/);
    } finally {
      await listFileRoots(root, [`gs://${BUCKET}/`], 'cloud');
    }
  });
});

describe('the gs:// variant of the demo on BigQuery (an incremental cursor)', () => {
  let pipelineId: string;
  const runDemo = (runDate: string) =>
    withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId, runDate }), { env: 'cloud' });
  const state = async () =>
    Object.fromEntries(
      (await select('_convergence_state', { where: { pipeline_id: pipelineId } })).map((r) => [r['step_name'], r['cursor_value']]),
    );
  /** A day of exports: three rows of the committed day (not after the cursor) and two of the next. */
  const laterExport = [
    'request_id,usage_date,provider,model,user_email,input_tokens,output_tokens,cost_usd',
    'late_1,2025-01-07,openai,gpt-4.1,user01@acme.example,10,1,0.01',
    'late_2,2025-01-07,openai,gpt-4.1,user01@acme.example,10,1,0.01',
    'late_3,2025-01-06,openai,gpt-4.1,user01@acme.example,10,1,0.01',
    'new_1,2025-01-08,anthropic,claude-haiku-4,user02@acme.example,20,2,0.02',
    'new_2,2025-01-08,anthropic,claude-haiku-4,user02@acme.example,20,2,0.02',
    '',
  ].join('\n');

  before(async () => {
    await installExample(root);
    const variant = await exampleGcsVariant(root, BUCKET);
    pipelineId = variant.pipelineId;
    for (const [name, csv] of Object.entries(variant.objects)) fakes.gcs.putObject(BUCKET, name, csv, 'text/csv');
  });

  it('loads by the warehouse with the rows, quarantine and cursor of the local engine', async () => {
    const before = objectJobs().length;
    const summary = await runDemo('2025-01-08');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const ingest = summary.steps[0]!;
    const details = await ingestDetails(summary);
    assert.equal(details['loadedBy'], 'warehouse');
    assert.equal(objectJobs().length - before, 1, 'one job reads the seven objects');
    assert.equal(details['cursorFrom'], '2025-01-01');
    assert.equal(details['cursorTo'], '2025-01-07');
    assert.equal(ingest.rowsIn, 7 * 300 + 3);
    assert.equal(ingest.rowsOut, 7 * 300 + 1);
    assert.equal(await count('raw_usage'), 7 * 300 + 1);
    assert.equal(await count('raw_usage__quarantine'), 2);
    const reasons = (await select('raw_usage__quarantine', { columns: ['_reason'] })).map((r) => r['_reason']).sort();
    assert.deepEqual(reasons, ["input_tokens: 'n/a' is not a valid INT64", "usage_date: '2025-13-01' is not a valid DATE"]);
    // Each quarantined row names the one object it came from, as on the local engine (gcs-local.test.ts).
    const origins = await select('raw_usage__quarantine', { columns: ['_source_file', '_reason'], orderBy: [['_source_file', 'asc']] });
    assert.deepEqual(
      origins.map((r) => r['_source_file']),
      [`gs://${BUCKET}/${TENANT}/usage/usage_2025-01-03.csv`, `gs://${BUCKET}/${TENANT}/usage/usage_2025-01-05.csv`],
    );
    assert.match(String(origins[0]!['_reason']), /input_tokens/);
    assert.equal((await state())['ingest_usage'], '2025-01-07');
  });

  it('a failed load leaves rows, cursor and loaded objects as they were', async () => {
    fakes.gcs.putObject(BUCKET, `${TENANT}/usage/usage_2025-01-08.csv`, laterExport, 'text/csv');
    const stateBefore = await state();
    fakes.bigquery.failJobs({ match: /BEGIN TRANSACTION/, reason: 'invalidQuery', message: 'Query error: injected' });
    const failed = await runDemo('2025-01-09');
    assert.equal(failed.status, 'FAILED');
    assert.match(failed.error!.message, /injected/);
    assert.equal(await count('raw_usage'), 7 * 300 + 1);
    assert.equal(await count('raw_usage__quarantine'), 2);
    assert.deepEqual(await state(), stateBefore);
  });

  it('a rerun with a new object loads only its rows after the committed cursor', async () => {
    const summary = await runDemo('2025-01-09');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const ingest = summary.steps[0]!;
    const details = await ingestDetails(summary);
    assert.equal(details['loadedBy'], 'warehouse');
    assert.equal(details['objects'], 1, 'only the new object is read');
    assert.equal(details['cursorFrom'], '2025-01-07');
    assert.equal(details['cursorTo'], '2025-01-08');
    assert.equal(ingest.rowsIn, 2);
    assert.equal(await count('raw_usage'), 7 * 300 + 1 + 2);
    assert.equal((await select('raw_usage', { where: { request_id: 'late_1' } })).length, 0);
    assert.equal((await state())['ingest_usage'], '2025-01-08');
  });

  it('a rerun whose rows are all at or before the cursor loads none and keeps the cursor', async () => {
    fakes.gcs.putObject(
      BUCKET,
      `${TENANT}/usage/usage_2025-01-08.csv`,
      `${laterExport}late_4,2025-01-08,openai,gpt-4.1,u@acme.example,1,1,0.01\n`,
      'text/csv',
    );
    const summary = await runDemo('2025-01-10');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const ingest = summary.steps[0]!;
    const details = await ingestDetails(summary);
    assert.equal(details['loadedBy'], 'warehouse');
    assert.equal(ingest.rowsIn, 0);
    assert.equal(details['cursorTo'], '2025-01-08');
    assert.equal((await state())['ingest_usage'], '2025-01-08');
  });
});
