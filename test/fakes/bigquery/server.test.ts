/**
 * The BigQuery REST fake itself, through @google-cloud/bigquery: the routes and error shapes the
 * warehouse adapter does not use but a test may (insertAll, tabledata.list paging, jobs.query).
 * The adapter's own behaviour is proven in test/backends/bigquery-specific.test.ts.
 */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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
