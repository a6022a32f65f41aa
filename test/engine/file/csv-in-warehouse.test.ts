/**
 * Local CSV read by DuckDB itself (sources/file/csv-in-warehouse.ts + duckdb/csv-files.ts) must
 * land exactly what staging the file through the engine lands, or land nothing and say the file
 * needs staging. Every case loads the same file both ways into its own warehouse and compares.
 */
import assert from 'node:assert/strict';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { DuckDbWarehouse } from '../../../src/backends/warehouse/duckdb/index.ts';
import { CsvNeedsStaging, type Row } from '../../../src/backends/warehouse/port.ts';
import type { TableSchemaFile } from '../../../src/domain/pipeline.ts';
import { planCsvInWarehouse } from '../../../src/engine/sources/file/csv-in-warehouse.ts';
import { stageFileSource } from '../../../src/engine/sources/file/index.ts';
import { isConvergenceError } from '../../../src/lib/errors.ts';
import { cleanupAll, makeTempDir } from '../../helpers/tmp.ts';
import { fileSource, inData, scopeOf, workspace, type FileSource } from './workspace.ts';

after(cleanupAll);

interface Landed {
  rows: Row[];
  quarantined: number;
  notes: string[];
}

async function freshWarehouse(root: string, name: string): Promise<DuckDbWarehouse> {
  const wh = new DuckDbWarehouse({ file: path.join(root, '.convergence', `${name}.duckdb`) });
  await wh.createDataset('acme_corp');
  return wh;
}

async function tableRows(wh: DuckDbWarehouse): Promise<Row[]> {
  if (!(await wh.tableExists('acme_corp', 'events'))) return [];
  return wh.query('SELECT * FROM acme_corp.events ORDER BY ALL');
}

/** Loads through the engine's staging (the reference). */
async function staged(root: string, source: FileSource, tableSchema?: TableSchemaFile): Promise<Landed> {
  const wh = await freshWarehouse(root, `staged-${Math.random().toString(36).slice(2)}`);
  try {
    const data = await stageFileSource(source, {
      scope: scopeOf(root),
      stagingDir: path.join(root, '.convergence', 'staging', Math.random().toString(36).slice(2)),
      ...(tableSchema ? { tableSchema } : {}),
    });
    const result = await wh.load({
      dataset: 'acme_corp',
      table: 'events',
      source: { kind: 'parquet', files: data.files, fields: data.fields },
      writeMode: 'append',
      runId: 'r',
    });
    return { rows: await tableRows(wh), quarantined: result.rowsQuarantined, notes: data.warnings ?? [] };
  } finally {
    await wh.close();
  }
}

/** Loads through DuckDB's reader; undefined when the load declined (and wrote nothing). */
async function inWarehouse(root: string, source: FileSource, tableSchema?: TableSchemaFile): Promise<Landed | { declined: string }> {
  const wh = await freshWarehouse(root, `direct-${Math.random().toString(36).slice(2)}`);
  try {
    const plan = await planCsvInWarehouse(source, {
      scope: scopeOf(root),
      types: wh.csvFileTypes,
      ...(tableSchema ? { tableSchema } : {}),
    });
    if ('skip' in plan) return { declined: plan.skip };
    try {
      const result = await wh.load({ dataset: 'acme_corp', table: 'events', source: plan.source, writeMode: 'append', runId: 'r' });
      return { rows: await tableRows(wh), quarantined: result.rowsQuarantined, notes: plan.notes };
    } catch (err) {
      if (!(err instanceof CsvNeedsStaging)) throw err;
      assert.equal(await wh.tableExists('acme_corp', 'events'), false, 'a declined load leaves nothing behind');
      return { declined: err.why };
    }
  } finally {
    await wh.close();
  }
}

/** Loads `body` both ways; returns how the direct load went, after checking it agrees with staging. */
async function compare(body: string | Buffer, options: { schema?: TableSchemaFile; source?: Partial<FileSource> } = {}) {
  const root = await workspace({ 'in.csv': body });
  const source = fileSource({ path: 'in.csv', format: 'csv', ...options.source });
  const reference = await staged(root, source, options.schema);
  const direct = await inWarehouse(root, source, options.schema);
  if ('declined' in direct) {
    return { declined: direct.declined, reference };
  }
  assert.equal(
    reference.quarantined,
    0,
    `staging quarantined rows that the direct load landed: ${JSON.stringify(direct.rows, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
  );
  assert.deepEqual(direct.rows, reference.rows);
  assert.deepEqual(direct.notes, reference.notes);
  return { rows: direct.rows, reference };
}

const schemaOf = (type: TableSchemaFile[number]['type'], mode: 'NULLABLE' | 'REQUIRED' = 'NULLABLE'): TableSchemaFile => [
  { name: 'id', type: 'INT64', mode: 'NULLABLE' },
  { name: 'v', type, mode },
];

/** Each value in a file of its own (a decline of one must not hide the others), with a schema. */
async function eachValue(type: TableSchemaFile[number]['type'], values: string[], mode?: 'NULLABLE' | 'REQUIRED') {
  const outcome: Record<string, 'landed' | 'declined'> = {};
  for (const value of values) {
    const result = await compare(`id,v\n1,${value}\n2,${value}\n`, { schema: schemaOf(type, mode) });
    outcome[value] = 'declined' in result ? 'declined' : 'landed';
    if ('declined' in result) assert.ok(result.reference.quarantined > 0 || result.reference.rows.length > 0);
  }
  return outcome;
}

describe('CSV read by DuckDB lands what staging lands', () => {
  it('INT64: plain integers land; the forms DuckDB reads differently from the engine are left to it', async () => {
    const outcome = await eachValue('INT64', [
      '42',
      '-7',
      '0',
      '9223372036854775807',
      '',
      '+5',
      '007',
      '1.5',
      '1.0',
      '1e3',
      '0x10',
      '1_000',
      ' 42',
      '9223372036854775808',
      'abc',
      '"42"',
    ]);
    for (const v of ['42', '-7', '0', '9223372036854775807', '', '"42"']) assert.equal(outcome[v], 'landed', v);
    for (const v of ['1.5', '1e3', '0x10', '1_000', '9223372036854775808', 'abc']) assert.equal(outcome[v], 'declined', v);
  });

  it('FLOAT64, DATE, BOOL: exact values land, anything DuckDB would bend is left to staging', async () => {
    const floats = await eachValue('FLOAT64', [
      '1.5',
      '.5',
      '5.',
      '1e5',
      '1E-3',
      '-0.0',
      '12345678901234567890',
      'inf',
      'nan',
      '1_0.5',
      ' 2.5',
      '1e400',
      '0x1p3',
      'x',
    ]);
    for (const v of ['1.5', '1e5', '12345678901234567890']) assert.equal(floats[v], 'landed', v);
    for (const v of ['inf', 'nan', '1_0.5', '1e400', 'x']) assert.equal(floats[v], 'declined', v);
    const dates = await eachValue('DATE', [
      '2025-01-05',
      '0001-01-01',
      '9999-12-31',
      '2025-1-5',
      '2025-02-30',
      '2025/01/05',
      '2025-01-05 10:00:00',
      '+025-01-05',
      'epoch',
    ]);
    for (const v of ['2025-01-05', '9999-12-31']) assert.equal(dates[v], 'landed', v);
    for (const v of ['2025-1-5', '2025-02-30', '2025/01/05', '2025-01-05 10:00:00', '+025-01-05', 'epoch'])
      assert.equal(dates[v], 'declined', v);
    const bools = await eachValue('BOOL', ['true', 'TRUE', 'False', '1', '0', 't', 'yes', '2']);
    for (const v of ['true', 'TRUE', 'False', '1', '0']) assert.equal(bools[v], 'landed', v);
    for (const v of ['t', 'yes', '2']) assert.equal(bools[v], 'declined', v);
  });

  it('TIMESTAMP and NUMERIC: the shapes the engine reads land with the same value', async () => {
    const timestamps = await eachValue('TIMESTAMP', [
      '2025-01-05T10:00:00Z',
      '2025-01-05 10:00:00',
      '2025-01-05T10:00:00.123Z',
      '2025-01-05T10:00:00+02:00',
      '2025-01-05T10:00:00+0200',
      '2025-01-05',
      '2025-01-05T10:00:00.123456Z',
      '2025-01-05T10:00:00+02',
      '2025-01-05T25:00:00Z',
      '2025-01-05 10:00',
      '2025-01-05T10:00:00 UTC',
    ]);
    for (const v of ['2025-01-05T10:00:00Z', '2025-01-05 10:00:00', '2025-01-05T10:00:00+02:00', '2025-01-05'])
      assert.equal(timestamps[v], 'landed', v);
    for (const v of ['2025-01-05T25:00:00Z', '2025-01-05 10:00', '2025-01-05T10:00:00 UTC']) assert.equal(timestamps[v], 'declined', v);
    const numerics = await eachValue('NUMERIC', [
      '1.5',
      '123.456789',
      '-0.000000001',
      '1.1234567891',
      '1e3',
      '12345678901234567890123456789.5',
      'abc',
    ]);
    for (const v of ['1.5', '123.456789', '1e3']) assert.equal(numerics[v], 'landed', v);
    assert.equal(numerics['abc'], 'declined');
  });

  it('STRING keeps text as staging does, quoted commas, quotes and line breaks included', async () => {
    const result = await compare('id,v\n1,abc\n2,\n3,""\n4, spaced \n5,"a,b"\n6,"line\nbreak"\n', { schema: schemaOf('STRING') });
    assert.ok(!('declined' in result), 'a well-formed file loads directly');
    assert.equal(result.rows?.length, 6);
    // A quote in a value is left to staging, which lands it.
    const quoted = await compare('id,v\n7,"say ""hi"""\n', { schema: schemaOf('STRING') });
    assert.ok('declined' in quoted);
    assert.deepEqual(quoted.reference.rows, [{ id: 7, v: 'say "hi"' }]);
  });

  it('REQUIRED: a missing value, or a column missing from the file, is left to staging (it quarantines)', async () => {
    const missingValue = await compare('id,v\n1,\n', { schema: schemaOf('STRING', 'REQUIRED') });
    assert.ok('declined' in missingValue);
    assert.equal(missingValue.reference.quarantined, 1);
    const missingColumn = await compare('id\n1\n', { schema: schemaOf('STRING', 'REQUIRED') });
    assert.ok('declined' in missingColumn);
    assert.equal(missingColumn.reference.quarantined, 1);
  });

  it('a ragged line, a stray quote or bytes that are not UTF-8 stop the direct load; staging quarantines or refuses them', async () => {
    for (const body of [
      'id,v\n1,a\n2,b,extra\n3,c\n',
      'id,v\n1,a\n2\n3,c\n',
      'id,v\n1,a"b\n',
      Buffer.concat([Buffer.from('id,v\n1,caf'), Buffer.from([0xe9]), Buffer.from('\n2,ok\n')]),
    ]) {
      const root = await workspace({ 'in.csv': body });
      const source = fileSource({ path: 'in.csv', format: 'csv' });
      const direct = await inWarehouse(root, source, schemaOf('STRING'));
      assert.ok('declined' in direct, `should decline: ${String(body)}`);
      // Staging then decides: it quarantines the line, or refuses the file with its own error.
      const reference = await staged(root, source, schemaOf('STRING')).catch((err: unknown) => err);
      if (isConvergenceError(reference)) assert.equal(reference.code, 'SOURCE_MALFORMED', String(body));
      else assert.ok((reference as Landed).quarantined >= 1, String(body));
    }
  });

  it('agrees on blank lines, CRLF, no header, another delimiter, extra and missing columns, and inferred types', async () => {
    const cases: Array<[string, { schema?: TableSchemaFile; source?: Partial<FileSource> }]> = [
      ['id,v\n1,a\n\n2,b\n\n', { schema: schemaOf('STRING') }],
      ['id,v\r\n1,a\r\n2,b\r\n', { schema: schemaOf('STRING') }],
      ['1,a\n2,b\n', { schema: schemaOf('STRING'), source: { csv: { has_header: false, delimiter: ',' } } }],
      ['id;v\n1;a,b\n2;c\n', { schema: schemaOf('STRING'), source: { csv: { has_header: true, delimiter: ';' } } }],
      ['v,extra,id\nx,ignored,1\n', { schema: schemaOf('STRING') }],
      ['id\n1\n', { schema: schemaOf('STRING') }],
      ['Cost (USD),day,n,flag\n1.5,2025-01-02,3,true\n2,2025-01-03,4,false\n', {}],
    ];
    for (const [body, options] of cases) {
      const result = await compare(body, options);
      assert.ok(!('declined' in result), `should load directly: ${JSON.stringify(body)} (${'declined' in result ? result.declined : ''})`);
    }
  });

  it('a header that is not UTF-8 is left to staging, which says so', async () => {
    const body = Buffer.concat([Buffer.from('id,caf'), Buffer.from([0xe9]), Buffer.from('\n1,x\n')]);
    const result = await compare(body);
    assert.ok('declined' in result);
    assert.match(result.declined ?? '', /header line is not valid UTF-8/);
  });

  it('reads a file whose name holds quotes and SQL as a file, bound, never as SQL text', async () => {
    const name = "it's'); DROP SCHEMA acme_corp; --.csv";
    const root = await workspace({ [name]: 'id,v\n1,a\n' });
    const source = fileSource({ path: name, format: 'csv' });
    const direct = await inWarehouse(root, source, schemaOf('STRING'));
    assert.ok(!('declined' in direct));
    assert.deepEqual(direct.rows, [{ id: 1, v: 'a' }]);
  });

  it('refuses a symlink out of the tenant folder before DuckDB reads anything (the same check as staging)', async () => {
    const outside = await makeTempDir('outside');
    await writeFile(path.join(outside, 'secret.csv'), 'id,v\n1,other tenant\n');
    const root = await workspace({});
    await symlink(path.join(outside, 'secret.csv'), inData(root, 'link.csv'));
    const wh = await freshWarehouse(root, 'attack');
    try {
      await assert.rejects(
        planCsvInWarehouse(fileSource({ path: 'link.csv', format: 'csv' }), { scope: scopeOf(root), types: wh.csvFileTypes }),
        (err: unknown) => isConvergenceError(err) && err.exitCode === 2,
      );
      assert.equal(await wh.tableExists('acme_corp', 'events'), false);
    } finally {
      await wh.close();
    }
  });
});
