/**
 * Views in the BigQuery REST fake, as BigQuery has them: made by a CREATE VIEW query job, listed
 * and read by tables.get as type VIEW with their query, queried like a table (the ZetaSQL referee
 * resolves their columns), never listed by tabledata.list, and refused when they name a query
 * parameter or an unqualified table.
 */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BigQuery } from '@google-cloud/bigquery';
import { FakeBigQuery, fakeClient } from './index.ts';

const badRequest = (pattern: RegExp) => (err: { code?: number; message?: string }) => {
  assert.equal(err.code, 400, String(err.message));
  assert.match(String(err.message), pattern);
  return true;
};

describe('BigQuery REST fake: views', () => {
  let fake: FakeBigQuery;
  let client: BigQuery;
  const query = (sql: string, params?: Record<string, unknown>) =>
    client.query({ query: sql, location: 'EU', ...(params ? { params } : {}) });

  before(async () => {
    fake = await FakeBigQuery.start({ projectId: 'proj-v' });
    client = await fakeClient(fake, { location: 'EU' });
    await client.createDataset('shop', { location: 'EU' });
    await query('CREATE TABLE `proj-v.shop.orders` (id INT64, amount NUMERIC, region STRING)');
    await query("INSERT INTO `proj-v.shop.orders` (id, amount, region) VALUES (1, 10, 'eu'), (2, 5, 'us'), (3, 7, 'eu')");
  });
  after(() => fake.stop());

  it('makes a view by CREATE VIEW, reports it as type VIEW with its query, and resolves it when read', async () => {
    const body = 'SELECT region, SUM(amount) AS total FROM `proj-v.shop.orders` GROUP BY region';
    await query(`CREATE OR REPLACE VIEW \`proj-v.shop.by_region\` AS\n${body}\n`);
    const [metadata] = await client.dataset('shop').table('by_region').getMetadata();
    assert.equal(metadata.type, 'VIEW');
    assert.deepEqual(metadata.view, { query: body, useLegacySql: false });
    assert.equal(metadata.numRows, undefined);
    assert.deepEqual(
      metadata.schema.fields.map((f: { name: string }) => f.name),
      ['region', 'total'],
    );
    const [tables] = await client.dataset('shop').getTables();
    assert.deepEqual(tables.map((t) => [t.id, t.metadata.type]).sort(), [
      ['by_region', 'VIEW'],
      ['orders', 'TABLE'],
    ]);

    await query("INSERT INTO `proj-v.shop.orders` (id, amount, region) VALUES (4, 1, 'us')");
    const [rows] = await query('SELECT region, total FROM `proj-v.shop.by_region` WHERE total > @min ORDER BY region', { min: 0 });
    assert.deepEqual(
      rows.map((r) => [r['region'], Number(r['total'])]),
      [
        ['eu', 17],
        ['us', 6],
      ],
    );
    // The referee knows the view's columns: a misspelt one is BigQuery's error, not DuckDB's.
    await assert.rejects(query('SELECT totl FROM `proj-v.shop.by_region`'), badRequest(/Unrecognized name: totl/));
    await assert.rejects(client.dataset('shop').table('by_region').getRows(), badRequest(/Cannot list a table of type VIEW/));
  });

  it('replaces a view with CREATE OR REPLACE and drops it with tables.delete', async () => {
    await query('CREATE VIEW `proj-v.shop.ids` AS SELECT id FROM `proj-v.shop.orders`');
    await query('CREATE OR REPLACE VIEW `proj-v.shop.ids` AS SELECT id, region FROM `proj-v.shop.orders`');
    const [metadata] = await client.dataset('shop').table('ids').getMetadata();
    assert.deepEqual(
      metadata.schema.fields.map((f: { name: string }) => f.name),
      ['id', 'region'],
    );
    await client.dataset('shop').table('ids').delete();
    const [exists] = await client.dataset('shop').table('ids').exists();
    assert.equal(exists, false);
  });

  it('refuses query parameters and unqualified tables in a view body', async () => {
    await assert.rejects(
      query('CREATE VIEW `proj-v.shop.p` AS SELECT id FROM `proj-v.shop.orders` WHERE region = @r', { r: 'eu' }),
      badRequest(/parameter/i),
    );
    await assert.rejects(query('CREATE VIEW `proj-v.shop.q` AS SELECT id FROM orders'), badRequest(/qualified with a dataset|not found/i));
    const [exists] = await client.dataset('shop').table('p').exists();
    assert.equal(exists, false);
  });
});
