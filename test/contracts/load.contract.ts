/**
 * What every Warehouse adapter promises about `load`: atomic write modes, quarantine, schema
 * evolution and state committed with the data. Staged input is real Parquet written by polars,
 * as the engine stages it; query sources use SQL both dialects speak.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FieldSpec, LoadRequest, Row, Warehouse } from '../../src/backends/warehouse/port.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { writeStaged, type StagedRow } from '../helpers/staged.ts';
import type { WarehouseFixture } from './warehouse.contract.ts';

const USAGE: FieldSpec[] = [
  { name: 'day', type: 'DATE' },
  { name: 'model', type: 'STRING' },
  { name: 'tokens', type: 'INT64' },
];
const row = (day: string, model: string, tokens: number | null, reason?: string): StagedRow => ({
  values: { day, model, tokens },
  ...(reason ? { reason } : {}),
});
const byDayModel = (rows: Row[]) => rows.map((r) => `${String(r['day'])}/${String(r['model'])}=${String(r['tokens'])}`).sort();

export function loadContract(name: string, make: () => Promise<WarehouseFixture>): void {
  describe(`Warehouse load contract: ${name}`, () => {
    let fixture: WarehouseFixture;
    let wh: Warehouse;
    let ds: string;
    let dir: string;
    let n = 0;

    beforeEach(async () => {
      fixture = await make();
      wh = fixture.subject;
      ds = `lc_${randomBytes(4).toString('hex')}`;
      dir = await mkdtemp(path.join(os.tmpdir(), 'convergence-load-'));
      await wh.createDataset(ds);
    });
    afterEach(async () => {
      await wh.dropDataset(ds).catch(() => undefined);
      await wh.close();
      await fixture.cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    const staged = async (rows: StagedRow[], fields = USAGE) => ({
      kind: 'parquet' as const,
      files: [await writeStaged(dir, `part-${n++}`, fields, rows)],
      fields,
    });
    const load = (over: Partial<LoadRequest> & Pick<LoadRequest, 'source'>) =>
      wh.load({ dataset: ds, table: 'usage', writeMode: 'append', runId: 'run-1', ...over });
    const contents = async () => byDayModel(await wh.select(ds, 'usage'));

    it('creates the destination on first append and quarantines rejected rows with their reason', async () => {
      const result = await load({
        source: await staged([
          row('2025-01-01', 'a', 1),
          row('2025-01-01', 'b', null, "tokens: 'x' is not INT64"),
          row('2025-01-02', 'a', 3),
        ]),
      });
      assert.deepEqual(
        { loaded: result.rowsLoaded, inserted: result.rowsInserted, quarantined: result.rowsQuarantined, created: result.created },
        { loaded: 2, inserted: 2, quarantined: 1, created: true },
      );
      assert.deepEqual(await contents(), ['2025-01-01/a=1', '2025-01-02/a=3']);
      const [q] = await wh.select(ds, 'usage__quarantine');
      assert.equal(q?.['_reason'], "tokens: 'x' is not INT64");
      assert.equal(q?.['_run_id'], 'run-1');
      assert.equal(q?.['_source_file'], 'data/in.csv');
      assert.equal(q?.['_source_row'], 3);
      assert.match(String(q?.['record']), /"model":\s*"b"/);
    });

    it('quarantines a rejected row once: the same file, line, reason and values read again are not added again', async () => {
      const rejected = (tokens: string) => row('2025-01-01', 'b', null, `tokens: '${tokens}' is not INT64`);
      const first = await load({ source: await staged([row('2025-01-01', 'a', 1), rejected('x')]) });
      const again = await load({ writeMode: 'replace', source: await staged([row('2025-01-01', 'a', 1), rejected('x')]) });
      assert.deepEqual([first.rowsQuarantined, again.rowsQuarantined], [1, 0]);
      assert.equal((await wh.select(ds, 'usage__quarantine')).length, 1);
      const changed = await load({ writeMode: 'replace', source: await staged([row('2025-01-01', 'a', 1), rejected('y')]) });
      assert.equal(changed.rowsQuarantined, 1, 'the line now says something else: a new rejection');
      assert.equal((await wh.select(ds, 'usage__quarantine')).length, 2);
    });

    it('appends, replaces, and merges on keys with the last staged occurrence winning', async () => {
      await load({ source: await staged([row('2025-01-01', 'a', 1), row('2025-01-01', 'b', 2)]) });
      await load({ source: await staged([row('2025-01-01', 'a', 1)]) });
      assert.equal((await contents()).length, 3);

      await load({ writeMode: 'replace', source: await staged([row('2025-01-01', 'a', 10), row('2025-01-01', 'b', 20)]) });
      assert.deepEqual(await contents(), ['2025-01-01/a=10', '2025-01-01/b=20']);

      const merged = await load({
        writeMode: 'merge',
        mergeKeys: ['day', 'model'],
        source: await staged([row('2025-01-01', 'b', 21), row('2025-01-02', 'c', 5), row('2025-01-01', 'b', 22)]),
      });
      assert.deepEqual(await contents(), ['2025-01-01/a=10', '2025-01-01/b=22', '2025-01-02/c=5']);
      assert.equal(merged.rowsUpdated, 1);
      assert.equal(merged.rowsInserted, 1);
    });

    it('merges a row whose key is NULL onto the row with the same NULL key, and counts updates and inserts', async () => {
      const merge = (sql: string) =>
        load({ table: 'by_region', writeMode: 'merge', mergeKeys: ['region', 'day'], source: { kind: 'query', sql } });
      await merge(
        "SELECT CAST(NULL AS STRING) AS region, DATE '2025-01-01' AS day, 1 AS total UNION ALL SELECT 'eu', DATE '2025-01-01', 2",
      );
      const again = await merge(
        "SELECT CAST(NULL AS STRING) AS region, DATE '2025-01-01' AS day, 10 AS total UNION ALL SELECT 'us', DATE '2025-01-01', 3",
      );
      assert.deepEqual([again.rowsUpdated, again.rowsInserted], [1, 1]);
      const rows = (await wh.select(ds, 'by_region')).map((r) => `${String(r['region'])}/${String(r['total'])}`).sort();
      assert.deepEqual(rows, ['eu/2', 'null/10', 'us/3']);
    });

    it('replace with nothing staged empties the destination', async () => {
      await load({ source: await staged([row('2025-01-01', 'a', 1)]) });
      await load({ writeMode: 'replace', source: { kind: 'parquet', files: [], fields: USAGE } });
      assert.deepEqual(await contents(), []);
    });

    it('loads a query result with bound parameters', async () => {
      const result = await load({
        source: { kind: 'query', sql: 'SELECT @model AS model, 7 AS tokens', params: { model: "it's" } },
        table: 'from_query',
      });
      assert.equal(result.rowsLoaded, 1);
      assert.deepEqual(await wh.select(ds, 'from_query'), [{ model: "it's", tokens: 7 }]);
    });

    it('refuses a merge whose query repeats a key and leaves the destination as it was', async () => {
      await load({ source: { kind: 'query', sql: "SELECT 'a' AS model, 1 AS tokens" }, table: 'q' });
      await rejectsWith(
        load({
          table: 'q',
          writeMode: 'merge',
          mergeKeys: ['model'],
          source: { kind: 'query', sql: "SELECT 'b' AS model, 1 AS tokens UNION ALL SELECT 'b' AS model, 2 AS tokens" },
        }),
        3,
        /repeat the merge key/,
      );
      assert.deepEqual(await wh.select(ds, 'q'), [{ model: 'a', tokens: 1 }]);
    });

    it('adds new columns and keeps older rows null in them', async () => {
      await load({ source: await staged([row('2025-01-01', 'a', 1)]) });
      const wider: FieldSpec[] = [...USAGE, { name: 'cost_usd', type: 'FLOAT64' }];
      const result = await load({ source: await staged([{ values: { day: '2025-01-02', model: 'b', tokens: 2, cost_usd: 0.5 } }], wider) });
      assert.deepEqual(result.columnsAdded, ['cost_usd']);
      const rows = await wh.select(ds, 'usage', { orderBy: [['day', 'asc']] });
      assert.deepEqual(
        rows.map((r) => r['cost_usd']),
        [null, 0.5],
      );
    });

    it('writes INT64 into a FLOAT64 column but refuses an incompatible type, changing nothing', async () => {
      const floaty: FieldSpec[] = [
        { name: 'model', type: 'STRING' },
        { name: 'tokens', type: 'FLOAT64' },
      ];
      await load({ source: await staged([{ values: { model: 'a', tokens: 1.5 } }], floaty) });
      await load({ source: await staged([{ values: { model: 'b', tokens: 2 } }], [floaty[0]!, { name: 'tokens', type: 'INT64' }]) });
      const err = await rejectsWith(
        load({ source: await staged([{ values: { model: 'c', tokens: 'three' } }], [floaty[0]!, { name: 'tokens', type: 'STRING' }]) }),
        3,
        /tokens is FLOAT64 .* new data has STRING/,
      );
      assert.equal(err.code, 'SCHEMA_INCOMPATIBLE');
      assert.equal(await wh.count(ds, 'usage'), 2);
    });

    it('commits alsoWrite with the data, and rolls the data back when it fails', async () => {
      await wh.createTable(ds, { name: 'state', fields: [{ name: 'cursor', type: 'STRING' }] });
      await load({
        source: await staged([row('2025-01-01', 'a', 1)]),
        alsoWrite: [{ kind: 'insert', dataset: ds, table: 'state', rows: [{ cursor: '2025-01-01' }] }],
      });
      assert.deepEqual(await wh.select(ds, 'state'), [{ cursor: '2025-01-01' }]);
      await assert.rejects(
        load({
          source: await staged([row('2025-01-02', 'b', 2)]),
          alsoWrite: [{ kind: 'insert', dataset: ds, table: 'state', rows: [{ no_such_column: 'x' }] }],
        }),
      );
      assert.deepEqual(await contents(), ['2025-01-01/a=1']);
      assert.deepEqual(await wh.select(ds, 'state'), [{ cursor: '2025-01-01' }]);
    });

    it('decodes staged BYTES (base64 text) into binary values', async () => {
      const fields: FieldSpec[] = [
        { name: 'name', type: 'STRING' },
        { name: 'blob', type: 'BYTES' },
      ];
      await load({
        table: 'blobs',
        source: await staged([{ values: { name: 'hi', blob: Buffer.from('hi').toString('base64') } }], fields),
      });
      assert.deepEqual(await wh.select(ds, 'blobs'), [{ name: 'hi', blob: Buffer.from('hi').toString('base64') }]);
    });

    it('refuses merge keys that are not columns, before writing', async () => {
      await rejectsWith(
        load({ writeMode: 'merge', mergeKeys: ['nope'], source: await staged([row('2025-01-01', 'a', 1)]) }),
        2,
        /merge key "nope"/,
      );
      assert.equal(await wh.tableExists(ds, 'usage'), false);
    });
  });
}
