/**
 * The ZetaSQL referee of the BigQuery fake, through @google-cloud/bigquery: statements GoogleSQL
 * refuses fail as BigQuery fails them (HTTP 400, invalidQuery, the analyzer's message) even where
 * DuckDB would have run the translation; scripts analyze with their variables and parameters typed.
 */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BigQuery } from '@google-cloud/bigquery';
import { FakeBigQuery, fakeClient } from './index.ts';
import { refereeTally } from './referee.ts';

/** The client's error for a refused query: HTTP status, reason and message of BigQuery's envelope. */
function invalidQueryWith(message: RegExp, status: number | 'none' = 400) {
  return (err: { code?: number; errors?: Array<{ reason?: string; message?: string }> }) => {
    assert.equal(err.code, status === 'none' ? undefined : status);
    assert.equal(err.errors?.[0]?.reason, 'invalidQuery');
    assert.match(err.errors?.[0]?.message ?? '', message);
    return true;
  };
}

describe('BigQuery fake: ZetaSQL referees every statement', () => {
  let fake: FakeBigQuery;
  let client: BigQuery;
  before(async () => {
    fake = await FakeBigQuery.start({ projectId: 'proj-1' });
    client = await fakeClient(fake, { location: 'US' });
    const [dataset] = await client.createDataset('raw', { location: 'US' });
    await dataset.createTable('events', {
      schema: {
        fields: [
          { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
          { name: 'name', type: 'STRING' },
          { name: 'doc', type: 'JSON' },
        ],
      },
    });
  });
  after(() => fake.stop());

  const query = (sql: string, params?: Record<string, unknown>) =>
    client.query({ query: sql, location: 'US', ...(params ? { params } : {}) });

  it('refuses a column the table does not have, with the analyzer message and position', async () => {
    await assert.rejects(
      query('SELECT nope FROM raw.events'),
      invalidQueryWith(/^Unrecognized name: nope; Did you mean name\? \[at 1:8\]$/),
    );
  });

  it('refuses a function called with a signature GoogleSQL does not have', async () => {
    await assert.rejects(query('SELECT SUBSTR(id) FROM raw.events'), invalidQueryWith(/No matching signature for function SUBSTR/));
  });

  it('refuses an INSERT whose value does not coerce to the column type', async () => {
    await assert.rejects(
      query("INSERT INTO raw.events (id, name) VALUES ('seven', 'a')"),
      invalidQueryWith(/Value has type STRING which cannot be inserted into column id, which has type INT64/),
    );
    const [rows] = await query('SELECT COUNT(*) AS n FROM raw.events');
    assert.deepEqual(rows, [{ n: 0 }], 'nothing ran');
  });

  it('refuses DuckDB syntax and functions the translation would have run', async () => {
    await assert.rejects(query('SELECT 1::INT64 AS one'), invalidQueryWith(/^Syntax error: .*\[at 1:9\]$/));
    await assert.rejects(query('SELECT list_value(1, 2) AS l'), invalidQueryWith(/^Function not found: list_value/));
  });

  it('refuses in a dry run too', async () => {
    // The fake ends a refused dry run as a DONE job with its errorResult, which the client raises without a status.
    await assert.rejects(
      client.createQueryJob({ query: 'SELECT nope FROM raw.events', location: 'US', dryRun: true }),
      invalidQueryWith(/^Unrecognized name: nope/, 'none'),
    );
  });

  it('analyzes a script with DECLAREd variables, temporary tables and typed parameters', async () => {
    const before = refereeTally().analyzed;
    const [rows] = await query(
      `DECLARE first INT64 DEFAULT @start;
       DECLARE label STRING;
       SET label = CONCAT(@prefix, '-', CAST(first AS STRING));
       CREATE TEMP TABLE batch AS SELECT first AS id, label AS name UNION ALL SELECT first + 1, label UNION ALL SELECT first + 2, label;
       BEGIN TRANSACTION;
       INSERT INTO raw.events (id, name, doc) SELECT id, name, PARSE_JSON(@doc) FROM batch;
       ASSERT @@row_count = 3 AS 'three rows';
       COMMIT TRANSACTION;
       SELECT COUNT(*) AS n, MIN(name) AS name FROM raw.events WHERE id >= first`,
      { start: 10, prefix: 'p', doc: '{"a": 1}' },
    );
    assert.deepEqual(rows, [{ n: 3, name: 'p-10' }]);
    // DECLARE with a default, SET, CREATE TEMP TABLE, INSERT, ASSERT and SELECT: transaction control is not analyzed.
    assert.equal(refereeTally().analyzed - before, 6);
  });

  it('refuses a script statement that names an undeclared variable, and counts it', async () => {
    const before = refereeTally();
    const [analyzed, refused] = [before.analyzed, before.refused];
    await assert.rejects(query('DECLARE x INT64 DEFAULT 1;\nSELECT y + x'), invalidQueryWith(/^Unrecognized name: y/));
    assert.equal(refereeTally().refused, refused + 1);
    assert.ok(refereeTally().analyzed > analyzed);
  });
});
