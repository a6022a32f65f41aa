import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import pl from 'nodejs-polars';

import type { TableSchemaFile } from '../../../src/domain/pipeline.ts';
import { isConvergenceError } from '../../../src/lib/errors.ts';
import { cleanupAll } from '../../helpers/tmp.ts';
import { pick } from '../staging/read-staged.ts';
import { inData, stageIn, workspace } from './workspace.ts';

after(cleanupAll);

describe('ndjson', () => {
  it('infers types, keeps nested values as JSON, and quarantines malformed lines with their line number', async () => {
    const root = await workspace({
      'events/a.ndjson': [
        '{"id": 1, "at": "2025-01-02T03:04:05Z", "tags": ["x"], "user": {"email": "a@b.c"}}',
        '',
        '{"id": 2, "at": "2025-01-02T04:00:00Z", "tags": [], "user": null',
        '[1, 2]',
        '{"id": 3, "at": "2025-01-03 00:00:00"}',
        '\r',
      ].join('\n'),
    });
    const { staged, rows } = await stageIn(root, { path: 'events/*.ndjson', format: 'ndjson' });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}`),
      ['id:INT64', 'at:TIMESTAMP', 'tags:JSON', 'user:JSON'],
    );
    assert.deepEqual(pick(rows, 'id', 'tags', 'user', '__source_file', '__source_row'), [
      { id: 1, tags: '["x"]', user: '{"email":"a@b.c"}', __source_file: 'data/acme_corp/events/a.ndjson', __source_row: 1 },
      { id: null, tags: null, user: null, __source_file: 'data/acme_corp/events/a.ndjson', __source_row: 3 },
      { id: null, tags: null, user: null, __source_file: 'data/acme_corp/events/a.ndjson', __source_row: 4 },
      { id: 3, tags: null, user: null, __source_file: 'data/acme_corp/events/a.ndjson', __source_row: 5 },
    ]);
    assert.match(String(rows[1]!['__reason']), /^line is not valid JSON \(.+\): \{"id": 2, "at"/);
    assert.equal(rows[2]!['__reason'], 'record is not a JSON object: [1,2]');
    assert.equal(rows[3]!['__reason'], null);
    assert.equal(rows[3]!['at'], '2025-01-03T00:00:00.000000Z');
    assert.equal(staged.rows, 4);
    assert.equal(staged.rejected, 2);
    assert.ok(staged.bytesRead > 0);
  });

  it('casts to a schema across several files and filters on the cursor', async () => {
    const root = await workspace({
      'd/1.ndjson': '{"day": "2025-01-01", "n": 1}\n{"day": "2025-01-05", "n": 2}\n',
      'd/2.ndjson': '{"day": "2025-01-03", "n": "3", "extra": true}\n{"day": "2025-01-04", "n": "three"}\n',
    });
    const schema: TableSchemaFile = [
      { name: 'day', type: 'DATE', mode: 'REQUIRED' },
      { name: 'n', type: 'INT64', mode: 'NULLABLE' },
    ];
    const { staged, rows } = await stageIn(
      root,
      { path: 'd/*.ndjson', format: 'ndjson' },
      { tableSchema: schema, incremental: { cursorField: 'day', after: '2025-01-02' } },
    );
    assert.deepEqual(pick(rows, 'day', 'n', '__source_file', '__source_row'), [
      { day: '2025-01-05', n: 2, __source_file: 'data/acme_corp/d/1.ndjson', __source_row: 2 },
      { day: '2025-01-03', n: 3, __source_file: 'data/acme_corp/d/2.ndjson', __source_row: 1 },
      { day: '2025-01-04', n: null, __source_file: 'data/acme_corp/d/2.ndjson', __source_row: 2 },
    ]);
    assert.equal(rows[2]!['__reason'], "n: 'three' is not a valid INT64");
    assert.equal(staged.cursorMax, '2025-01-05');
    assert.deepEqual(staged.warnings, ['keys not in the schema were not loaded: extra']);
  });

  it('stages nothing for an empty file', async () => {
    const root = await workspace({ 'e.ndjson': '' });
    const { staged } = await stageIn(root, { path: 'e.ndjson', format: 'ndjson' });
    assert.deepEqual(staged.files, []);
    assert.equal(staged.rows, 0);
  });
});

/** Writes a Parquet file with types polars would not produce from text (UInt8, Decimal, tz timestamps, nested). */
async function writeParquet(file: string, sql: string) {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`COPY (${sql}) TO '${file}' (FORMAT parquet)`);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe('parquet', () => {
  it('maps Parquet types to warehouse types without a schema', async () => {
    const root = await workspace({});
    await writeParquet(
      inData(root, 'p.parquet'),
      `SELECT 1::UTINYINT AS small, 2.5::DECIMAL(10,2) AS money, TIMESTAMPTZ '2025-01-02 03:04:05+02' AS at,
              DATE '2025-01-02' AS day, {'a': 1} AS obj, [1, 2] AS list, 'x' AS s, true AS b, 1.5::FLOAT AS f`,
    );
    const { staged, rows } = await stageIn(root, { path: 'p.parquet', format: 'parquet' });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}`),
      ['small:INT64', 'money:NUMERIC', 'at:TIMESTAMP', 'day:DATE', 'obj:JSON', 'list:JSON', 's:STRING', 'b:BOOL', 'f:FLOAT64'],
    );
    assert.deepEqual(rows[0], {
      small: 1,
      money: '2.50',
      at: '2025-01-02T01:04:05.000000Z',
      day: '2025-01-02',
      obj: '{"a":1}',
      list: '[1,2]',
      s: 'x',
      b: true,
      f: 1.5,
      __reason: null,
      __source_file: 'data/acme_corp/p.parquet',
      __source_row: 1,
    });
  });

  it('casts to a schema: exact floats become integers, others are quarantined', async () => {
    const root = await workspace({});
    const frame = pl.DataFrame({ n: [1.0, 2.5, null], ts: ['2025-01-02 00:00:00', 'bad', null], keep: ['a', 'b', 'c'] });
    frame.writeParquet(inData(root, 'p.parquet'));
    const schema: TableSchemaFile = [
      { name: 'n', type: 'INT64', mode: 'REQUIRED' },
      { name: 'ts', type: 'TIMESTAMP', mode: 'NULLABLE' },
    ];
    const { staged, rows } = await stageIn(root, { path: 'p.parquet', format: 'parquet' }, { tableSchema: schema });
    assert.deepEqual(pick(rows, 'n', 'ts', '__reason', '__source_row'), [
      { n: 1, ts: '2025-01-02T00:00:00.000000Z', __reason: null, __source_row: 1 },
      { n: null, ts: null, __reason: "n: '2.5' is not a valid INT64; ts: 'bad' is not a valid TIMESTAMP", __source_row: 2 },
      { n: null, ts: null, __reason: 'n: required value is missing', __source_row: 3 },
    ]);
    assert.deepEqual(staged.warnings, ['column "keep" is not in the schema and was not loaded (data/acme_corp/p.parquet)']);
  });

  it('refuses binary columns it cannot stage, unless the schema leaves them out', async () => {
    const root = await workspace({});
    await writeParquet(inData(root, 'b.parquet'), `SELECT 'abc'::BLOB AS payload, 1 AS id`);
    await assert.rejects(stageIn(root, { path: 'b.parquet', format: 'parquet' }), (err: unknown) => {
      assert.ok(isConvergenceError(err));
      assert.equal(err.code, 'SOURCE_UNSUPPORTED_TYPE');
      assert.match(err.message, /column "payload"/);
      return true;
    });
    const { rows } = await stageIn(
      root,
      { path: 'b.parquet', format: 'parquet' },
      { tableSchema: [{ name: 'id', type: 'INT64', mode: 'NULLABLE' }] },
    );
    assert.deepEqual(pick(rows, 'id'), [{ id: 1 }]);
  });

  it('reports a file that is not Parquet', async () => {
    const root = await workspace({ 'x.parquet': 'not parquet at all' });
    await assert.rejects(stageIn(root, { path: 'x.parquet', format: 'parquet' }), { code: 'SOURCE_MALFORMED' });
  });
});
