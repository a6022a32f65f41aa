/**
 * The BigQuery REST fake itself, through @google-cloud/bigquery: the routes and error shapes the
 * warehouse adapter does not use but a test may (insertAll, tabledata.list paging, jobs.query).
 * The adapter's own behaviour is proven in test/backends/bigquery-specific.test.ts.
 */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GcsFake } from '../gcs/server.ts';
import { FakeBigQuery, fakeClient } from './index.ts';

describe('BigQuery REST fake: routes the warehouse does not use', () => {
  let fake: FakeBigQuery;
  before(async () => {
    fake = await FakeBigQuery.start({ projectId: 'proj-1', pageSize: 2 });
  });
  after(() => fake.stop());

  it('serves insertAll, tabledata.list, jobs.query and its error shapes to the client', async () => {
    const client = await fakeClient(fake, { location: 'EU' });
    const [dataset] = await client.createDataset('raw', { location: 'EU' });
    const [table] = await dataset.createTable('events', {
      schema: {
        fields: [
          { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
          { name: 'at', type: 'TIMESTAMP' },
        ],
      },
    });
    await table.insert([
      { id: 1, at: '2025-01-01T00:00:00Z' },
      { id: 2, at: null },
      { id: 3, at: '2025-01-03T00:00:00Z' },
    ]);
    const [rows] = await table.getRows({ autoPaginate: true });
    assert.deepEqual(rows.map((r) => Number(r['id'])).sort(), [1, 2, 3]);
    assert.ok(fake.requestsTo('tabledata.list').length >= 2, 'paged');

    const [counted] = await client.query({
      query: 'SELECT COUNT(*) AS n FROM `raw.events` WHERE id > @min',
      params: { min: 1 },
      location: 'EU',
    });
    assert.deepEqual(counted, [{ n: 2 }]);
    assert.equal(fake.requestsTo('jobs.query').length, 1);

    await assert.rejects(table.insert([{ id: 4, nope: 'x' }]), (err: Error & { name: string }) => err.name === 'PartialFailureError');
    await assert.rejects(client.dataset('missing').get(), (err: { code?: number; errors?: Array<{ reason?: string }> }) => {
      assert.equal(err.code, 404);
      assert.equal(err.errors?.[0]?.reason, 'notFound');
      return true;
    });
    await assert.rejects(client.query({ query: 'SELECT * FROM `raw.events`', location: 'US' }), /not found in location US/);
  });
});

/** A BigQuery fake whose jobs read the objects of a GCS fake holding the bucket `exports`. */
async function startReadingObjects(): Promise<{ fake: FakeBigQuery; gcs: GcsFake }> {
  const fake = await FakeBigQuery.start({ projectId: 'proj-1' });
  const gcs = await GcsFake.start({ buckets: ['exports'] });
  fake.readObjectsFrom(gcs);
  return { fake, gcs };
}

async function stopBoth(fake: FakeBigQuery, gcs: GcsFake): Promise<void> {
  await fake.stop();
  await gcs.close();
}

describe('BigQuery REST fake: load jobs from Cloud Storage URIs', () => {
  let fake: FakeBigQuery;
  let gcs: GcsFake;
  before(async () => ({ fake, gcs } = await startReadingObjects()));
  after(() => stopBoth(fake, gcs));

  const schema = {
    fields: [
      { name: 'id', type: 'STRING' },
      { name: 'name', type: 'STRING' },
    ],
  };
  const loadJob = async (client: Awaited<ReturnType<typeof fakeClient>>, load: Record<string, unknown>) => {
    const [job] = await client.createJob({
      configuration: {
        load: {
          destinationTable: { projectId: 'proj-1', datasetId: 'raw', tableId: 't' },
          schema,
          writeDisposition: 'WRITE_TRUNCATE',
          ...load,
        },
      },
    });
    // jobs.insert answers while the job runs, as BigQuery does: read it again until it is DONE.
    let [metadata] = await job.getMetadata();
    while (metadata.status?.state !== 'DONE') [metadata] = await job.getMetadata();
    return metadata as { status?: { errorResult?: { reason?: string; message?: string } } };
  };
  const failure = (err: unknown) => err as { errors?: Array<{ reason?: string; message?: string }>; message?: string };

  it('reads CSV (wildcard, header skipped, jagged lines) and NDJSON objects, and names a missing object as BigQuery does', async () => {
    const client = await fakeClient(fake, { location: 'US' });
    await client.createDataset('raw', { location: 'US' });
    gcs.putObject('exports', 'a/1.csv', 'id,name\n1,x\n2\n');
    gcs.putObject('exports', 'a/2.csv', 'id,name\n3,z\n');
    gcs.putObject('exports', 'b/1.ndjson', '{"id": 1, "name": "n", "extra": true}\n');
    assert.equal(
      (await loadJob(client, { sourceUris: ['gs://exports/a/*.csv'], sourceFormat: 'CSV', skipLeadingRows: 1, allowJaggedRows: true }))
        .status?.errorResult,
      undefined,
    );
    const [rows] = await client.query({ query: 'SELECT id, name FROM `raw.t` ORDER BY id', location: 'US' });
    assert.deepEqual(rows, [
      { id: '1', name: 'x' },
      { id: '2', name: null },
      { id: '3', name: 'z' },
    ]);
    await loadJob(client, { sourceUris: ['gs://exports/b/1.ndjson'], sourceFormat: 'NEWLINE_DELIMITED_JSON', ignoreUnknownValues: true });
    const [json] = await client.query({ query: 'SELECT id, name FROM `raw.t`', location: 'US' });
    assert.deepEqual(json, [{ id: '1', name: 'n' }]);

    for (const uri of ['gs://exports/none/*.csv', 'gs://no-bucket/x.csv']) {
      const outcome = await loadJob(client, { sourceUris: [uri], sourceFormat: 'CSV' }).catch(failure);
      const reason = 'status' in outcome ? outcome.status?.errorResult : failure(outcome).errors?.[0];
      assert.equal(reason?.reason, 'notFound', uri);
      assert.equal(reason?.message, `Not found: URI ${uri}`);
    }
  });

  it("reads the objects as the job's caller: a load job by a principal without access to the bucket fails accessDenied", async () => {
    const client = await fakeClient(fake, { location: 'US' });
    gcs.putObject('exports', 'c/1.csv', 'id,name\n1,x\n');
    gcs.deny('exports');
    try {
      const outcome = await loadJob(client, { sourceUris: ['gs://exports/c/1.csv'], sourceFormat: 'CSV', skipLeadingRows: 1 }).catch(
        failure,
      );
      const reason = 'status' in outcome ? outcome.status?.errorResult : failure(outcome).errors?.[0];
      assert.equal(reason?.reason, 'accessDenied');
      assert.equal(reason?.message, 'Access Denied: File gs://exports/c/1.csv: Access Denied');
    } finally {
      gcs.allow('exports');
    }
  });
});

describe('BigQuery REST fake: query jobs over temporary external tables (tableDefinitions)', () => {
  let fake: FakeBigQuery;
  let gcs: GcsFake;
  before(async () => {
    ({ fake, gcs } = await startReadingObjects());
    gcs.putObject('exports', 'q/1.csv', 'id,name\n1,x\n2,y\n');
    gcs.putObject('exports', 'q/2.csv', 'id,name\n3,z\n');
  });
  after(() => stopBoth(fake, gcs));

  /** ExternalDataConfiguration of CSV objects with a header line, all STRING. */
  const csvTable = (uri: string, extra: Record<string, unknown> = {}) => ({
    sourceUris: [uri],
    sourceFormat: 'CSV',
    schema: {
      fields: [
        { name: 'id', type: 'STRING' },
        { name: 'name', type: 'STRING' },
      ],
    },
    csvOptions: { skipLeadingRows: '1', fieldDelimiter: ',', allowJaggedRows: true },
    ...extra,
  });
  const queryJob = async (query: string, tableDefinitions: Record<string, unknown>) => {
    const client = await fakeClient(fake, { location: 'US' });
    const [job] = await client.createJob({
      configuration: { query: { query, useLegacySql: false, tableDefinitions: tableDefinitions as never } },
    });
    const [metadata] = await job.getMetadata();
    const errorResult = (metadata as { status?: { errorResult?: { reason?: string; message?: string } } }).status?.errorResult;
    if (errorResult) return { errorResult, rows: [] };
    const [rows] = await job.getQueryResults();
    return { errorResult: undefined, rows: rows as Array<Record<string, unknown>> };
  };
  const failure = (err: unknown) => {
    const e = err as { errors?: Array<{ reason?: string; message?: string }>; message?: string };
    return { errorResult: e.errors?.[0] ?? { message: e.message }, rows: [] };
  };

  it('names the object of each row in _FILE_NAME, selected by alias; SELECT * leaves it out', async () => {
    const { rows } = await queryJob('SELECT id, name, _FILE_NAME AS source FROM objects ORDER BY id', {
      objects: csvTable('gs://exports/q/*.csv'),
    });
    assert.deepEqual(rows, [
      { id: '1', name: 'x', source: 'gs://exports/q/1.csv' },
      { id: '2', name: 'y', source: 'gs://exports/q/1.csv' },
      { id: '3', name: 'z', source: 'gs://exports/q/2.csv' },
    ]);
    const qualified = await queryJob('SELECT t._FILE_NAME AS f, COUNT(*) AS n FROM objects AS t GROUP BY f ORDER BY f', {
      objects: csvTable('gs://exports/q/*.csv'),
    });
    assert.deepEqual(qualified.rows, [
      { f: 'gs://exports/q/1.csv', n: 2 },
      { f: 'gs://exports/q/2.csv', n: 1 },
    ]);
    const star = await queryJob('SELECT * FROM objects ORDER BY id', { objects: csvTable('gs://exports/q/1.csv') });
    assert.deepEqual(star.rows, [
      { id: '1', name: 'x' },
      { id: '2', name: 'y' },
    ]);
    // Through a SELECT * the pseudo-column is gone, as in BigQuery.
    const lost = await queryJob('SELECT s._FILE_NAME AS f FROM (SELECT * FROM objects) AS s', {
      objects: csvTable('gs://exports/q/1.csv'),
    }).catch(failure);
    assert.equal(lost.errorResult?.reason, 'invalidQuery');
    assert.match(lost.errorResult?.message ?? '', /Unrecognized name: _FILE_NAME|Name _FILE_NAME not found/);
  });

  it('resolves the temporary table name for its own job only', async () => {
    const other = await queryJob('SELECT COUNT(*) AS n FROM objects', {}).catch(failure);
    assert.equal(other.errorResult?.reason, 'invalidQuery');
    assert.match(other.errorResult?.message ?? '', /must be qualified with a dataset/);
  });

  it('fails the job notFound for a URI that matches nothing, and accessDenied for a caller who may not read the bucket', async () => {
    for (const uri of ['gs://exports/none/*.csv', 'gs://no-bucket/x.csv']) {
      const outcome = await queryJob('SELECT id FROM objects', { objects: csvTable(uri) }).catch(failure);
      assert.equal(outcome.errorResult?.reason, 'notFound', uri);
      assert.equal(outcome.errorResult?.message, `Not found: URI ${uri}`);
    }
    gcs.deny('exports');
    try {
      const outcome = await queryJob('SELECT id FROM objects', { objects: csvTable('gs://exports/q/1.csv') }).catch(failure);
      assert.equal(outcome.errorResult?.reason, 'accessDenied');
      assert.equal(outcome.errorResult?.message, 'Access Denied: File gs://exports/q/1.csv: Access Denied');
    } finally {
      gcs.allow('exports');
    }
  });

  it('refuses load-job settings that ExternalDataConfiguration does not have', async () => {
    const outcome = await queryJob('SELECT id FROM objects', {
      objects: { ...csvTable('gs://exports/q/1.csv'), skipLeadingRows: 1 },
    }).catch(failure);
    assert.equal(outcome.errorResult?.reason, 'invalid');
    assert.match(outcome.errorResult?.message ?? '', /Unknown name "skipLeadingRows"/);
  });
});
