import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pl from 'nodejs-polars';

import type { FieldSpec, FieldType } from '../../../src/backends/warehouse/port.ts';
import { fieldsFromSchema, identifiersFor, widerType } from '../../../src/engine/staging/fields.ts';
import { typeFrame } from '../../../src/engine/staging/frame.ts';
import { textType, valueType } from '../../../src/engine/staging/infer.ts';
import { cursorFilter } from '../../../src/engine/staging/typing.ts';

/** Types one text column and returns [value, reason] per input, values rendered as text. */
function typeTexts(type: FieldType, values: Array<string | null>, mode?: FieldSpec['mode']) {
  const field: FieldSpec = { name: 'c', type, ...(mode ? { mode } : {}) };
  const frame = pl.DataFrame([pl.Series('raw', values, pl.Utf8)]).lazy();
  const typed = typeFrame(frame, [field], () => ({ expr: pl.col('raw'), dtype: 'text' }), {
    sourceFile: pl.lit('t'),
    sourceRow: pl.lit(1),
  });
  const shown =
    type === 'TIMESTAMP'
      ? pl.col('c').dt.strftime('%Y-%m-%dT%H:%M:%S%.6fZ')
      : type === 'DATE'
        ? pl.col('c').dt.strftime('%Y-%m-%d')
        : pl.col('c');
  return typed
    .select(shown.alias('c'), pl.col('__reason'))
    .collectSync()
    .toRecords()
    .map((r) => [r['c'], r['__reason']]);
}

describe('typing rules', () => {
  it('TIMESTAMP accepts ISO 8601 with Z or an offset, and YYYY-MM-DD HH:MM:SS as UTC', () => {
    const rows = typeTexts('TIMESTAMP', [
      '2025-01-02T03:04:05Z',
      '2025-01-02T03:04:05.123456Z',
      '2025-01-02T03:04:05+02:00',
      '2025-01-02T03:04:05-0130',
      '2025-01-02 03:04:05',
      '2025-01-02T03:04:05',
      ' 2025-01-02 03:04:05.5 ',
      '2025-01-02',
    ]);
    assert.deepEqual(
      rows.map((r) => r[0]),
      [
        '2025-01-02T03:04:05.000000Z',
        '2025-01-02T03:04:05.123456Z',
        '2025-01-02T01:04:05.000000Z',
        '2025-01-02T04:34:05.000000Z',
        '2025-01-02T03:04:05.000000Z',
        '2025-01-02T03:04:05.000000Z',
        '2025-01-02T03:04:05.500000Z',
        '2025-01-02T00:00:00.000000Z',
      ],
    );
    assert.ok(rows.every((r) => r[1] === null));
  });

  it('TIMESTAMP and DATE refuse junk that a lenient strptime would accept', () => {
    const ts = typeTexts('TIMESTAMP', ['2025-01-02T03:04:05Zjunk', 'x2025-01-02 03:04:05', '2025-02-30 00:00:00', 'yesterday']);
    assert.ok(ts.every((r) => r[0] === null));
    assert.equal(ts[0]![1], "c: '2025-01-02T03:04:05Zjunk' is not a valid TIMESTAMP");
    const dates = typeTexts('DATE', ['2025-01-02', '2025-01-02garbage', '2025-1-2', '2025-02-30', '']);
    assert.deepEqual(
      dates.map((r) => r[0]),
      ['2025-01-02', null, null, null, null],
    );
    assert.equal(dates[1]![1], "c: '2025-01-02garbage' is not a valid DATE");
    assert.equal(dates[4]![1], null, 'a blank is a null, not an error');
  });

  it('BOOL accepts true/false/1/0 in any case', () => {
    const rows = typeTexts('BOOL', ['true', 'FALSE', 'True', '1', '0', ' yes ', null]);
    assert.deepEqual(
      rows.map((r) => r[0]),
      [true, false, true, true, false, null, null],
    );
    assert.equal(rows[5]![1], "c: 'yes' is not a valid BOOL");
  });

  it('INT64, FLOAT64 and NUMERIC keep exact text where they must', () => {
    assert.deepEqual(
      typeTexts('INT64', [' 42 ', '-7', '1.5', '9223372036854775808']).map((r) => r[0]),
      [42, -7, null, null],
    );
    assert.deepEqual(
      typeTexts('FLOAT64', ['1.5', '1e3', 'abc']).map((r) => r[0]),
      [1.5, 1000, null],
    );
    const numeric = typeTexts('NUMERIC', ['12345678901234567890.123456789', '-0.10', 'abc', '1'.repeat(30)]);
    assert.deepEqual(
      numeric.map((r) => r[0]),
      ['12345678901234567890.123456789', '-0.10', null, null],
    );
  });

  it('JSON and BYTES are validated text; STRING is kept exactly, blanks included', () => {
    assert.deepEqual(
      typeTexts('JSON', ['{"a":1}', '[1,2]', '"x"', '{bad', 'null']).map((r) => r[0]),
      ['{"a":1}', '[1,2]', '"x"', null, null],
    );
    assert.deepEqual(
      typeTexts('BYTES', ['aGVsbG8=', 'not base64!']).map((r) => r[0]),
      ['aGVsbG8=', null],
    );
    assert.deepEqual(
      typeTexts('STRING', [' padded ', '']).map((r) => r[0]),
      [' padded ', ''],
    );
  });

  it('REQUIRED columns give a reason when the value is missing or blank', () => {
    const rows = typeTexts('INT64', ['1', null, '  ', 'x'], 'REQUIRED');
    assert.deepEqual(
      rows.map((r) => r[1]),
      [null, 'c: required value is missing', 'c: required value is missing', "c: 'x' is not a valid INT64"],
    );
  });

  it('compares the incremental cursor typed, and refuses an unparseable saved cursor', () => {
    const field: FieldSpec = { name: 'd', type: 'DATE' };
    const frame = pl.DataFrame({ d: ['2025-01-09', '2025-01-10', '2025-01-11'] }).select(pl.col('d').str.strptime(pl.Date, '%Y-%m-%d'));
    const kept = frame.filter(cursorFilter(field, pl.col('d'), '2025-01-10')).height;
    assert.equal(kept, 1);
    assert.throws(() => cursorFilter(field, pl.col('d'), 'last tuesday'), /not a valid DATE/);
  });
});

describe('schema and inference helpers', () => {
  it('maps BigQuery legacy type names', () => {
    const fields = fieldsFromSchema([
      { name: 'a', type: 'INTEGER', mode: 'REQUIRED' },
      { name: 'b', type: 'FLOAT', mode: 'NULLABLE' },
      { name: 'c', type: 'BOOLEAN', mode: 'NULLABLE' },
    ]);
    assert.deepEqual(
      fields.map((f) => f.type),
      ['INT64', 'FLOAT64', 'BOOL'],
    );
    assert.throws(() => fieldsFromSchema([{ name: '__reason', type: 'STRING', mode: 'NULLABLE' }]), /bookkeeping/);
  });

  it('infers from text and JSON values; leading zeros stay text', () => {
    assert.deepEqual(['42', '4.2', '007', 'TRUE', '2025-01-02', '2025-01-02 03:04:05', 'x', ' '].map(textType), [
      'INT64',
      'FLOAT64',
      'STRING',
      'BOOL',
      'DATE',
      'TIMESTAMP',
      'STRING',
      undefined,
    ]);
    assert.deepEqual([1, 1.5, true, '2025-01-02', { a: 1 }, [1], null].map(valueType), [
      'INT64',
      'FLOAT64',
      'BOOL',
      'DATE',
      'JSON',
      'JSON',
      undefined,
    ]);
    assert.equal(widerType('INT64', 'FLOAT64'), 'FLOAT64');
    assert.equal(widerType('DATE', 'INT64'), 'STRING');
  });

  it('turns headers into unique identifiers', () => {
    const { names, renamed } = identifiersFor(['Cost (USD)', 'cost_usd', '', '1st', 'ok', '__reason']);
    assert.deepEqual(names, ['Cost_USD', 'cost_usd_2', 'column_3', '_1st', 'ok', 'reason']);
    assert.equal(renamed.length, 5);
  });
});
