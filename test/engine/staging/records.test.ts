import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { stageRecords, type StageRecordsOptions } from '../../../src/engine/staging/records.ts';
import { cleanupAll, makeTempDir } from '../../helpers/tmp.ts';
import { pick, readStaged, stagedTypes } from './read-staged.ts';

after(cleanupAll);

async function* from<T>(batches: T[][]): AsyncGenerator<T[]> {
  for (const batch of batches) yield batch;
}

async function stage(batches: Array<Array<Record<string, unknown>>>, options: Partial<StageRecordsOptions> = {}) {
  const stagingDir = path.join(await makeTempDir('records'), 'stage');
  const staged = await stageRecords(from(batches), { stagingDir, sourceLabel: 'https://api.test/v1/usage', ...options });
  return { staged, rows: readStaged(staged.files), stagingDir };
}

describe('stageRecords', () => {
  it('infers types from the first part and quarantines later values that do not fit', async () => {
    const { staged, rows } = await stage(
      [
        [
          { id: 1, day: '2025-01-01', cost: 1.5, ok: true, meta: { a: [1, 2] } },
          { id: 2, day: '2025-01-02', cost: 2, ok: false, meta: null },
        ],
        [{ id: 'three', day: '2025-01-03', cost: 'n/a', ok: 'yes', meta: 'plain' }],
      ],
      { rowsPerPart: 2 },
    );
    assert.deepEqual(staged.fields, [
      { name: 'id', type: 'INT64' },
      { name: 'day', type: 'DATE' },
      { name: 'cost', type: 'FLOAT64' },
      { name: 'ok', type: 'BOOL' },
      { name: 'meta', type: 'JSON' },
    ]);
    assert.equal(staged.files.length, 2, 'one part per 2 records');
    assert.equal(staged.rows, 3);
    assert.equal(staged.rejected, 1);
    assert.deepEqual(rows[0], {
      id: 1,
      day: '2025-01-01',
      cost: 1.5,
      ok: true,
      meta: '{"a":[1,2]}',
      __reason: null,
      __source_file: 'https://api.test/v1/usage',
      __source_row: 1,
    });
    assert.equal(rows[2]!['meta'], '"plain"', 'a JSON column keeps the JSON encoding of a string');
    assert.equal(
      rows[2]!['__reason'],
      "id: 'three' is not a valid INT64; cost: 'n/a' is not a valid FLOAT64; ok: 'yes' is not a valid BOOL",
    );
    assert.deepEqual(
      rows.map((r) => r['__source_row']),
      [1, 2, 3],
      'running record number across batches',
    );
    assert.deepEqual(stagedTypes(staged.files[0]!), {
      id: 'DataType(Int64)',
      day: 'DataType(Date)',
      cost: 'DataType(Float64)',
      ok: 'DataType(Bool)',
      meta: 'DataType(String)',
      __reason: 'DataType(String)',
      __source_file: 'DataType(String)',
      __source_row: 'DataType(Int64)',
    });
  });

  it('adds keys first seen in a later part as columns, backfilling earlier parts with nulls', async () => {
    const { staged, rows } = await stage([[{ id: 1 }, { id: 2 }], [{ id: 3, 'Late Key': 7, note: 'x' }]], { rowsPerPart: 2 });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}`),
      ['id:INT64', 'Late_Key:INT64', 'note:STRING'],
    );
    for (const file of staged.files) {
      assert.deepEqual(Object.keys(stagedTypes(file)), ['id', 'Late_Key', 'note', '__reason', '__source_file', '__source_row']);
    }
    assert.deepEqual(pick(rows, 'id', 'Late_Key', 'note'), [
      { id: 1, Late_Key: null, note: null },
      { id: 2, Late_Key: null, note: null },
      { id: 3, Late_Key: 7, note: 'x' },
    ]);
    assert.ok(staged.warnings?.some((w) => w.includes('Late_Key') && w.includes('became columns')));
    assert.ok(staged.warnings?.some((w) => w.includes('"Late Key" -> Late_Key')));
  });

  it('with a schema: casts to it, drops unknown keys with a warning, checks REQUIRED', async () => {
    const { staged, rows } = await stage([[{ id: '7', when: '2025-01-02 10:00:00', extra: 1 }, { when: 'soon' }]], {
      tableSchema: [
        { name: 'id', type: 'INTEGER', mode: 'REQUIRED' },
        { name: 'when', type: 'TIMESTAMP', mode: 'NULLABLE' },
      ],
    });
    assert.deepEqual(
      staged.fields.map((f) => `${f.name}:${f.type}:${f.mode}`),
      ['id:INT64:REQUIRED', 'when:TIMESTAMP:NULLABLE'],
    );
    assert.deepEqual(pick(rows, 'id', 'when', '__reason'), [
      { id: 7, when: '2025-01-02T10:00:00.000000Z', __reason: null },
      { id: null, when: null, __reason: "id: required value is missing; when: 'soon' is not a valid TIMESTAMP" },
    ]);
    assert.deepEqual(staged.warnings, ['keys not in the schema were not loaded: extra']);
  });

  it('pins known types with `fields` and quarantines records that are not objects', async () => {
    const { staged, rows } = await stage([[{ code: 1 }, 'oops' as unknown as Record<string, unknown>, { code: '0042' }]], {
      fields: [{ name: 'code', type: 'STRING' }],
    });
    assert.deepEqual(staged.fields, [{ name: 'code', type: 'STRING' }]);
    assert.deepEqual(pick(rows, 'code', '__reason'), [
      { code: '1', __reason: null },
      { code: null, __reason: 'record is not a JSON object: "oops"' },
      { code: '0042', __reason: null },
    ]);
  });

  it('filters on the incremental cursor, typed, and reports the greatest good cursor', async () => {
    const { staged, rows } = await stage(
      [
        [
          { d: '2025-01-09', v: 1 },
          { d: '2025-01-10', v: 2 },
        ],
        [
          { d: '2025-01-11', v: 3 },
          { d: null, v: 4 },
          { d: '2025-01-12', v: 'x' },
        ],
      ],
      { incremental: { cursorField: 'd', after: '2025-01-09' }, rowsPerPart: 2 },
    );
    assert.deepEqual(pick(rows, 'd', 'v', '__reason'), [
      { d: '2025-01-10', v: 2, __reason: null },
      { d: '2025-01-11', v: 3, __reason: null },
      { d: null, v: 4, __reason: 'd: incremental cursor value is missing' },
      { d: '2025-01-12', v: null, __reason: "v: 'x' is not a valid INT64" },
    ]);
    assert.equal(staged.cursorMax, '2025-01-11', 'quarantined rows do not move the cursor');
    assert.equal(staged.rows, 4);
    assert.equal(staged.rejected, 2);
  });

  it('stages nothing for no records, and drops parts the cursor filtered out entirely', async () => {
    const empty = await stage([]);
    assert.deepEqual(empty.staged, { files: [], fields: [], rows: 0, rejected: 0, bytesRead: 0 });
    const old = await stage([[{ d: 1 }], [{ d: 2 }]], { incremental: { cursorField: 'd', after: '5' }, rowsPerPart: 1 });
    assert.deepEqual(old.staged.files, []);
    assert.equal(old.staged.cursorMax, undefined);
    assert.deepEqual((await readdir(old.stagingDir)).sort(), [], 'no partial or summary files left behind');
  });

  it('refuses a cursor field the records do not have', async () => {
    await assert.rejects(stage([[{ a: 1 }]], { incremental: { cursorField: 'updated_at' } }), /cursor_field "updated_at" is not a column/);
  });

  it('reports progress and stops when aborted', async () => {
    const updates: number[] = [];
    await stage([[{ a: 1 }], [{ a: 2 }]], { rowsPerPart: 1, onProgress: (u) => u.rows !== undefined && updates.push(u.rows) });
    assert.deepEqual(updates, [1, 2]);
    const controller = new AbortController();
    async function* endless() {
      for (let i = 0; ; i++) {
        if (i === 3) controller.abort();
        yield [{ i }];
      }
    }
    const stagingDir = path.join(await makeTempDir('records'), 'stage');
    await assert.rejects(stageRecords(endless(), { stagingDir, sourceLabel: 'x', signal: controller.signal, rowsPerPart: 1 }), {
      name: 'AbortError',
    });
  });
});
