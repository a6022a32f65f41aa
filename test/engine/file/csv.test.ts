import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';

import type { TableSchemaFile } from '../../../src/domain/pipeline.ts';
import { isConvergenceError } from '../../../src/lib/errors.ts';
import { cleanupAll } from '../../helpers/tmp.ts';
import { pick } from '../staging/read-staged.ts';
import { inData, scopeOf, stageIn, TENANT, workspace } from './workspace.ts';

after(cleanupAll);

const USAGE_SCHEMA: TableSchemaFile = [
  { name: 'request_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'usage_date', type: 'DATE', mode: 'REQUIRED' },
  { name: 'input_tokens', type: 'INTEGER', mode: 'NULLABLE' },
  { name: 'cost_usd', type: 'NUMERIC', mode: 'NULLABLE' },
  { name: 'at', type: 'TIMESTAMP', mode: 'NULLABLE' },
  { name: 'cached', type: 'BOOLEAN', mode: 'NULLABLE' },
];

describe('csv without a schema', () => {
  it('infers types, keeps line numbers, and quarantines a bad value past the inference sample', async () => {
    const lines = ['id,day,amount,label,at'];
    for (let i = 1; i <= 10_050; i++) lines.push(`${i},2025-01-02,${i}.5,row ${i},2025-01-02 03:04:05`);
    lines[10_020] = '10020,2025-01-02,lots,row 10020,2025-01-02 03:04:05';
    const root = await workspace({ 'in.csv': `${lines.join('\n')}\n` });
    const { staged, rows } = await stageIn(root, { path: 'in.csv', format: 'csv' });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}`),
      ['id:INT64', 'day:DATE', 'amount:FLOAT64', 'label:STRING', 'at:TIMESTAMP'],
    );
    assert.equal(staged.rows, 10_050);
    assert.equal(staged.rejected, 1);
    assert.deepEqual(rows[0], {
      id: 1,
      day: '2025-01-02',
      amount: 1.5,
      label: 'row 1',
      at: '2025-01-02T03:04:05.000000Z',
      __reason: null,
      __source_file: 'data/acme_corp/in.csv',
      __source_row: 2,
    });
    const bad = rows.find((r) => r['__reason'] !== null)!;
    assert.equal(bad['__reason'], "amount: 'lots' is not a valid FLOAT64");
    assert.equal(bad['__source_row'], 10_021, 'the line an editor shows (header is line 1)');
    assert.equal(staged.bytesRead, Buffer.byteLength(`${lines.join('\n')}\n`));
  });

  it('renames headers that are not column names, with a warning', async () => {
    const root = await workspace({ 'a.csv': 'Cost (USD),Model Name\n1.5,x\n' });
    const { staged } = await stageIn(root, { path: 'a.csv', format: 'csv' });
    assert.deepEqual(
      staged.fields.map((f) => f.name),
      ['Cost_USD', 'Model_Name'],
    );
    assert.ok(staged.warnings?.[0]?.includes('"Cost (USD)" -> Cost_USD'));
  });

  it('reads other delimiters and files without a header', async () => {
    const root = await workspace({ 'a.csv': '1;x\n2;y\n' });
    const { staged, rows } = await stageIn(root, { path: 'a.csv', format: 'csv', csv: { delimiter: ';', has_header: false } });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}`),
      ['column_1:INT64', 'column_2:STRING'],
    );
    assert.deepEqual(
      rows.map((r) => r['__source_row']),
      [1, 2],
    );
  });
});

describe('csv with a schema', () => {
  it('casts to the schema, with a reason naming column and value for every failure', async () => {
    const root = await workspace({
      'usage.csv': [
        'Request_ID,usage_date,input_tokens,cost_usd,at,cached,ignored',
        'r1,2025-01-02,100,0.0012,2025-01-02T03:04:05Z,TRUE,x',
        'r2,2025-13-45,1.5,cheap,tomorrow,maybe,x',
        ',2025-01-03,,,,,x',
        'r4,,7,12345678901234567890.123456789,2025-01-04 00:00:00,0,x',
      ].join('\n'),
    });
    const { staged, rows } = await stageIn(root, { path: 'usage.csv', format: 'csv' }, { tableSchema: USAGE_SCHEMA });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}:${f.mode}`),
      [
        'request_id:STRING:REQUIRED',
        'usage_date:DATE:REQUIRED',
        'input_tokens:INT64:NULLABLE',
        'cost_usd:NUMERIC:NULLABLE',
        'at:TIMESTAMP:NULLABLE',
        'cached:BOOL:NULLABLE',
      ],
    );
    assert.deepEqual(rows[0], {
      request_id: 'r1',
      usage_date: '2025-01-02',
      input_tokens: 100,
      cost_usd: '0.0012',
      at: '2025-01-02T03:04:05.000000Z',
      cached: true,
      __reason: null,
      __source_file: 'data/acme_corp/usage.csv',
      __source_row: 2,
    });
    assert.equal(
      rows[1]!['__reason'],
      "usage_date: '2025-13-45' is not a valid DATE; input_tokens: '1.5' is not a valid INT64; cost_usd: 'cheap' is not a valid NUMERIC; " +
        "at: 'tomorrow' is not a valid TIMESTAMP; cached: 'maybe' is not a valid BOOL",
    );
    assert.equal(rows[2]!['__reason'], 'request_id: required value is missing');
    assert.equal(rows[3]!['__reason'], 'usage_date: required value is missing');
    assert.equal(rows[3]!['cost_usd'], '12345678901234567890.123456789', 'NUMERIC stays exact');
    assert.equal(staged.rejected, 3);
    assert.deepEqual(staged.warnings, ['column "ignored" is not in the schema and was not loaded (data/acme_corp/usage.csv)']);
  });

  it('treats schema columns missing from the file as null, or as a reason when REQUIRED', async () => {
    const root = await workspace({ 'a.csv': 'request_id,usage_date\nr1,2025-01-02\n' });
    const schema: TableSchemaFile = [...USAGE_SCHEMA, { name: 'must', type: 'STRING', mode: 'REQUIRED' }];
    const { staged, rows } = await stageIn(root, { path: 'a.csv', format: 'csv' }, { tableSchema: schema });
    assert.equal(rows[0]!['input_tokens'], null);
    assert.equal(rows[0]!['__reason'], 'must: required column is missing from the source');
    assert.ok(staged.warnings?.includes('schema column must is missing from data/acme_corp/a.csv: staged as null'));
  });

  it('maps fields by position when the file has no header', async () => {
    const root = await workspace({ 'a.csv': 'r1|2025-01-02|5\n' });
    const { rows } = await stageIn(
      root,
      { path: 'a.csv', format: 'csv', csv: { delimiter: '|', has_header: false } },
      { tableSchema: USAGE_SCHEMA },
    );
    assert.deepEqual(pick(rows, 'request_id', 'usage_date', 'input_tokens', 'cost_usd'), [
      { request_id: 'r1', usage_date: '2025-01-02', input_tokens: 5, cost_usd: null },
    ]);
  });

  it('writes Parquet types the DuckDB load reads directly', async () => {
    const root = await workspace({
      'a.csv': 'request_id,usage_date,input_tokens,cost_usd,at,cached\nr1,2025-01-02,1,0.5,2025-01-02 00:00:00,true\n',
    });
    const { staged } = await stageIn(root, { path: 'a.csv', format: 'csv' }, { tableSchema: USAGE_SCHEMA });
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const reader = await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${staged.files[0]}')`);
      const types = Object.fromEntries(reader.getRows().map((r) => [String(r[0]), String(r[1])]));
      assert.deepEqual(types, {
        request_id: 'VARCHAR',
        usage_date: 'DATE',
        input_tokens: 'BIGINT',
        cost_usd: 'VARCHAR',
        at: 'TIMESTAMP WITH TIME ZONE',
        cached: 'BOOLEAN',
        __reason: 'VARCHAR',
        __source_file: 'VARCHAR',
        __source_row: 'BIGINT',
      });
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });
});

describe('csv lines that cannot be split', () => {
  it('quarantines ragged lines, skips blank ones, and counts lines of multi-line fields', async () => {
    const root = await workspace({
      'a.csv': ['id,note,n', '1,ok,1', '2,too,many,fields', '3,short', '', '4,"two', 'lines",4', '5,after,5', ''].join('\n'),
    });
    const { staged, rows } = await stageIn(
      root,
      { path: 'a.csv', format: 'csv' },
      {
        tableSchema: [
          { name: 'id', type: 'INT64', mode: 'REQUIRED' },
          { name: 'note', type: 'STRING', mode: 'NULLABLE' },
          { name: 'n', type: 'INT64', mode: 'REQUIRED' },
        ],
      },
    );
    assert.deepEqual(pick(rows, 'id', 'note', '__reason', '__source_row'), [
      { id: 1, note: 'ok', __reason: null, __source_row: 2 },
      { id: 2, note: 'too', __reason: 'line has 4 fields, expected 3', __source_row: 3 },
      { id: 3, note: 'short', __reason: 'line has 2 fields, expected 3', __source_row: 4 },
      { id: 4, note: 'two\nlines', __reason: null, __source_row: 6 },
      { id: 5, note: 'after', __reason: null, __source_row: 8 },
    ]);
    assert.equal(staged.rejected, 2);
  });

  it('fails with the file and line when quoting is broken beyond repair', async () => {
    const root = await workspace({ 'bad.csv': 'a,b\n1,2\n"ab"c,3\n4,5\n' });
    await assert.rejects(stageIn(root, { path: 'bad.csv', format: 'csv' }), (err: unknown) => {
      assert.ok(isConvergenceError(err));
      assert.equal(err.code, 'SOURCE_MALFORMED');
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /^data\/acme_corp\/bad\.csv: /);
      assert.match(err.suggestion ?? '', /line 3/);
      return true;
    });
  });

  it('fails when no line has the header width: a wrong delimiter, not bad rows', async () => {
    // A European export: ';' separates fields and ',' is the decimal mark, but the source says ','.
    const rows = Array.from({ length: 20 }, (_, i) => `${i};${i},5`).join('\n');
    const root = await workspace({ 'a.csv': `a;b\n${rows}\n` });
    await assert.rejects(stageIn(root, { path: 'a.csv', format: 'csv' }), (err: unknown) => {
      assert.ok(isConvergenceError(err));
      assert.match(err.message, /no line has as many fields as the first line \(1\)/);
      assert.match(err.suggestion ?? '', /csv\.delimiter/);
      return true;
    });
  });
});

describe('csv files and globs', () => {
  it('stages a glob over 3 files, one part each, numbering rows per file', async () => {
    const root = await workspace({
      'usage_2025-01-03.csv': 'id,v\n5,e\n6,f\n',
      'usage_2025-01-01.csv': 'id,v\n1,a\n2,b\n',
      'usage_2025-01-02.csv': 'id,v\n3,c\n\n4,d\n',
      'other.csv': 'id,v\n9,z\n',
    });
    const progress: Array<number | undefined> = [];
    const { staged, rows } = await stageIn(
      root,
      { path: 'usage_*.csv', format: 'csv' },
      { onProgress: (u) => u.rows !== undefined && progress.push(u.rows) },
    );
    assert.equal(staged.files.length, 3);
    assert.deepEqual(progress, [2, 4, 6], 'rows staged so far, after each file');
    assert.deepEqual(pick(rows, 'id', '__source_file', '__source_row'), [
      { id: 1, __source_file: 'data/acme_corp/usage_2025-01-01.csv', __source_row: 2 },
      { id: 2, __source_file: 'data/acme_corp/usage_2025-01-01.csv', __source_row: 3 },
      { id: 3, __source_file: 'data/acme_corp/usage_2025-01-02.csv', __source_row: 2 },
      { id: 4, __source_file: 'data/acme_corp/usage_2025-01-02.csv', __source_row: 4 },
      { id: 5, __source_file: 'data/acme_corp/usage_2025-01-03.csv', __source_row: 2 },
      { id: 6, __source_file: 'data/acme_corp/usage_2025-01-03.csv', __source_row: 3 },
    ]);
    assert.equal(staged.bytesRead, 'id,v\n1,a\n2,b\n'.length * 2 + 'id,v\n3,c\n\n4,d\n'.length);
  });

  it('keeps rows after the incremental cursor, compared typed, and reports the greatest', async () => {
    const root = await workspace({
      'a.csv': 'at,v\n2025-01-01 23:00:00,1\n2025-01-02T00:00:00Z,2\n2025-01-02T03:00:00+02:00,3\n2025-01-03 00:00:00,4\nnever,5\n',
    });
    const tableSchema: TableSchemaFile = [
      { name: 'at', type: 'TIMESTAMP', mode: 'NULLABLE' },
      { name: 'v', type: 'INT64', mode: 'NULLABLE' },
    ];
    const incremental = (after: string) => ({ tableSchema, incremental: { cursorField: 'at', after } });
    const { staged, rows } = await stageIn(root, { path: 'a.csv', format: 'csv' }, incremental('2025-01-01T23:30:00Z'));
    assert.deepEqual(pick(rows, 'at', 'v', '__reason'), [
      { at: '2025-01-02T00:00:00.000000Z', v: 2, __reason: null },
      { at: '2025-01-02T01:00:00.000000Z', v: 3, __reason: null },
      { at: '2025-01-03T00:00:00.000000Z', v: 4, __reason: null },
      { at: null, v: 5, __reason: "at: 'never' is not a valid TIMESTAMP" },
    ]);
    assert.equal(staged.cursorMax, '2025-01-03T00:00:00.000000Z');
    const next = await stageIn(root, { path: 'a.csv', format: 'csv' }, incremental(staged.cursorMax!));
    assert.deepEqual(pick(next.rows, 'v'), [{ v: 5 }], 'the saved cursor reads back: only the unparseable row remains');
  });

  it('stages nothing for an empty file (with a warning) or a header alone', async () => {
    const root = await workspace({ 'empty.csv': '', 'header.csv': 'a,b\n' });
    const empty = await stageIn(root, { path: 'empty.csv', format: 'csv' });
    assert.deepEqual(empty.staged, {
      files: [],
      fields: [],
      rows: 0,
      rejected: 0,
      bytesRead: 0,
      warnings: ['file is empty, no rows loaded from it: data/acme_corp/empty.csv'],
    });
    const header = await stageIn(root, { path: 'header.csv', format: 'csv' }, { incremental: { cursorField: 'a' } });
    assert.deepEqual(header.staged.files, []);
    assert.deepEqual(
      header.staged.fields.map((f) => f.name),
      ['a', 'b'],
    );
    assert.equal(header.staged.cursorMax, undefined);
  });

  it('stops when the run is cancelled', async () => {
    const root = await workspace({ 'a.csv': 'a\n1\n' });
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(stageIn(root, { path: 'a.csv', format: 'csv' }, { signal: controller.signal }), { name: 'AbortError' });
  });

  it('refuses no matching files, gs:// paths and paths leaving the data folder', async () => {
    const root = await workspace({ 'x.csv': 'a\n1\n' });
    await assert.rejects(stageIn(root, { path: 'usage_*.csv', format: 'csv' }), (err: unknown) => {
      assert.ok(isConvergenceError(err));
      assert.equal(err.code, 'SOURCE_NO_FILES');
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /no file matches "usage_\*\.csv" \(looked in data\/acme_corp\/\)/);
      return true;
    });
    await assert.rejects(
      stageIn(root, { path: 'gs://bucket/usage_*.csv', format: 'csv' }),
      /gs:\/\/ paths are listed in their bucket, not matched on disk/,
    );
    await assert.rejects(stageIn(root, { path: '../elsewhere/*.csv', format: 'csv' }), { code: 'SOURCE_PATH', exitCode: 2 });
    await assert.rejects(stageIn(root, { path: inData(root, 'x.csv'), format: 'csv' }), { code: 'SOURCE_PATH', exitCode: 2 });
  });

  it('reads paths written from the workspace root (data/<tenant>/...) and absolute paths under a listed root', async () => {
    const root = await workspace({ 'x.csv': 'a\n1\n' });
    const prefixed = await stageIn(root, { path: 'data/acme_corp/x.csv', format: 'csv' });
    assert.equal(prefixed.rows[0]!['__source_file'], 'data/acme_corp/x.csv');
    const scope = scopeOf(root, { roots: [path.join(root, 'data', TENANT)] });
    const absolute = await stageIn(root, { path: inData(root, 'x.csv'), format: 'csv' }, { scope });
    assert.equal(absolute.rows[0]!['__source_file'], 'data/acme_corp/x.csv', 'an absolute path inside the workspace is labelled relative');
  });
});
