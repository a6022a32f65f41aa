/**
 * Behaviour every Warehouse adapter promises. Run against DuckDB here and later, unchanged,
 * against BigQuery over a wire fake, so it relies only on the port, never on a dialect.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FieldSpec, Row, TableSpec, Warehouse } from '../../src/backends/warehouse/port.ts';

export interface WarehouseFixture {
  subject: Warehouse;
  cleanup(): Promise<void>;
}

const usageExit = (err: unknown) => (err as { exitCode?: number }).exitCode === 2;

const PEOPLE: TableSpec = {
  name: 'people',
  fields: [
    { name: 'id', type: 'INT64', mode: 'REQUIRED' },
    { name: 'name', type: 'STRING', mode: 'REQUIRED' },
    { name: 'team', type: 'STRING' },
    { name: 'score', type: 'FLOAT64' },
  ],
};

const PEOPLE_ROWS: Row[] = [
  { id: 1, name: 'ada', team: 'core', score: 9.5 },
  { id: 2, name: 'bob', team: 'core', score: 4 },
  { id: 3, name: 'cy', team: 'web', score: 7.25 },
  { id: 4, name: 'di', team: null, score: 1 },
  { id: 5, name: 'ed', team: 'web', score: null },
];

const ALL_TYPES: TableSpec = {
  name: 'all_types',
  fields: [
    { name: 's', type: 'STRING', mode: 'REQUIRED' },
    { name: 'i', type: 'INT64' },
    { name: 'f', type: 'FLOAT64' },
    { name: 'n', type: 'NUMERIC' },
    { name: 'b', type: 'BOOL' },
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'd', type: 'DATE' },
    { name: 'j', type: 'JSON' },
    { name: 'y', type: 'BYTES' },
  ],
};

const ids = (rows: Row[]) => rows.map((r) => r['id']);

export function warehouseContract(name: string, make: () => Promise<WarehouseFixture>): void {
  describe(`Warehouse contract: ${name}`, () => {
    let fixture: WarehouseFixture;
    let wh: Warehouse;
    let ds: string;

    beforeEach(async () => {
      fixture = await make();
      wh = fixture.subject;
      ds = `wc_${randomBytes(4).toString('hex')}`;
    });
    afterEach(async () => {
      await wh.dropDataset(ds).catch(() => undefined);
      await wh.close();
      await fixture.cleanup();
    });

    const withPeople = async () => {
      await wh.createDataset(ds);
      await wh.createTable(ds, PEOPLE);
      await wh.insert(ds, 'people', PEOPLE_ROWS);
    };

    it('creates a dataset once and reports whether it did', async () => {
      assert.equal(await wh.datasetExists(ds), false);
      assert.equal(await wh.createDataset(ds), true);
      assert.equal(await wh.createDataset(ds), false);
      assert.equal(await wh.datasetExists(ds), true);
    });

    it('drops a dataset with its tables, and dropping a missing one is fine', async () => {
      await withPeople();
      await wh.dropDataset(ds);
      assert.equal(await wh.datasetExists(ds), false);
      assert.equal(await wh.tableExists(ds, 'people'), false);
      await wh.dropDataset(ds);
      assert.equal(await wh.createDataset(ds), true);
      assert.deepEqual(await wh.listTables(ds), []);
    });

    it('creates, lists, checks and drops tables', async () => {
      await wh.createDataset(ds);
      assert.equal(await wh.tableExists(ds, 'people'), false);
      assert.equal(await wh.createTable(ds, PEOPLE), true);
      assert.equal(await wh.createTable(ds, PEOPLE), false);
      assert.equal(await wh.createTable(ds, { ...ALL_TYPES, partitionBy: 'd', clusterBy: ['s'] }), true);
      assert.deepEqual((await wh.listTables(ds)).sort(), ['all_types', 'people']);
      assert.equal(await wh.tableExists(ds, 'people'), true);
      await wh.dropTable(ds, 'people');
      assert.equal(await wh.tableExists(ds, 'people'), false);
      assert.deepEqual(await wh.listTables(ds), ['all_types']);
    });

    it('reports table fields as created, and undefined for a missing table', async () => {
      await wh.createDataset(ds);
      await wh.createTable(ds, ALL_TYPES);
      const fields = await wh.getTableFields(ds, 'all_types');
      const shape = (f: FieldSpec) => ({ name: f.name, type: f.type, mode: f.mode ?? 'NULLABLE' });
      assert.deepEqual(fields?.map(shape), ALL_TYPES.fields.map(shape));
      assert.equal(await wh.getTableFields(ds, 'nope'), undefined);
    });

    it('tells the columns of every table of a dataset: in one read where it offers one, else table by table', async () => {
      const shape = (fields: FieldSpec[] | undefined) => fields?.map((f) => ({ name: f.name, type: f.type, mode: f.mode ?? 'NULLABLE' }));
      const everyTable = async () =>
        wh.getDatasetFields
          ? wh.getDatasetFields(ds)
          : new Map(await Promise.all((await wh.listTables(ds)).map(async (t) => [t, (await wh.getTableFields(ds, t))!] as const)));
      await wh.createDataset(ds);
      assert.equal((await everyTable()).size, 0);
      await wh.createTable(ds, ALL_TYPES);
      await wh.createTable(ds, PEOPLE);
      const all = await everyTable();
      assert.deepEqual([...all.keys()].sort(), ['all_types', 'people']);
      assert.deepEqual(shape(all.get('all_types')), shape(ALL_TYPES.fields));
      assert.deepEqual(shape(all.get('people')), shape(PEOPLE.fields));
    });

    it('selects with =, !=, <, <=, >, >=, in, is null, is not null and bare values', async () => {
      await withPeople();
      const where = async (w: Parameters<Warehouse['select']>[2]) => ids(await wh.select(ds, 'people', { ...w, orderBy: [['id', 'asc']] }));
      assert.deepEqual(await where({ where: { team: 'core' } }), [1, 2]);
      assert.deepEqual(await where({ where: { team: { op: '=', value: 'web' } } }), [3, 5]);
      assert.deepEqual(await where({ where: { team: { op: '!=', value: 'core' } } }), [3, 5]);
      assert.deepEqual(await where({ where: { score: { op: '<', value: 7.25 } } }), [2, 4]);
      assert.deepEqual(await where({ where: { score: { op: '<=', value: 7.25 } } }), [2, 3, 4]);
      assert.deepEqual(await where({ where: { id: { op: '>', value: 3 } } }), [4, 5]);
      assert.deepEqual(await where({ where: { id: { op: '>=', value: 3 } } }), [3, 4, 5]);
      assert.deepEqual(await where({ where: { name: { op: 'in', values: ['ada', 'cy', 'zed'] } } }), [1, 3]);
      assert.deepEqual(await where({ where: { name: { op: 'in', values: [] } } }), []);
      assert.deepEqual(await where({ where: { team: { op: 'is null' } } }), [4]);
      assert.deepEqual(await where({ where: { team: null } }), [4]);
      assert.deepEqual(await where({ where: { score: { op: 'is not null' } } }), [1, 2, 3, 4]);
      assert.deepEqual(await where({ where: { team: 'web', score: { op: 'is null' } } }), [5]);
      assert.deepEqual(await where({}), [1, 2, 3, 4, 5]);
    });

    it('orders, limits, offsets and projects', async () => {
      await withPeople();
      const page = await wh.select(ds, 'people', {
        orderBy: [
          ['score', 'desc'],
          ['id', 'asc'],
        ],
        where: { score: { op: 'is not null' } },
        limit: 2,
        offset: 1,
      });
      assert.deepEqual(ids(page), [3, 2]);
      const byTeam = await wh.select(ds, 'people', {
        orderBy: [
          ['team', 'asc'],
          ['id', 'desc'],
        ],
        where: { team: { op: 'is not null' } },
      });
      assert.deepEqual(ids(byTeam), [2, 1, 5, 3]);
      const projected = await wh.select(ds, 'people', { columns: ['name'], where: { id: 1 } });
      assert.deepEqual(projected, [{ name: 'ada' }]);
      assert.deepEqual(ids(await wh.select(ds, 'people', { orderBy: [['id', 'asc']], limit: 0 })), []);
    });

    it('counts, updates and deletes, returning the rows affected', async () => {
      await withPeople();
      assert.equal(await wh.count(ds, 'people'), 5);
      assert.equal(await wh.count(ds, 'people', { team: 'core' }), 2);
      assert.equal(await wh.update(ds, 'people', { team: 'ops', score: 0 }, { team: 'core' }), 2);
      assert.equal(await wh.update(ds, 'people', { team: 'x' }, { team: 'nobody' }), 0);
      assert.equal(await wh.count(ds, 'people', { team: 'ops', score: 0 }), 2);
      assert.equal(await wh.update(ds, 'people', { team: null }, { id: 3 }), 1);
      assert.equal(await wh.count(ds, 'people', { team: null }), 2);
      assert.equal(await wh.delete(ds, 'people', { id: { op: 'in', values: [1, 2, 99] } }), 2);
      assert.equal(await wh.delete(ds, 'people', { id: 99 }), 0);
      assert.equal(await wh.count(ds, 'people'), 3);
      assert.equal(await wh.delete(ds, 'people', {}), 3);
      assert.equal(await wh.count(ds, 'people'), 0);
    });

    it('applies every atomic operation together', async () => {
      await withPeople();
      await wh.createTable(ds, { name: 'audit', fields: [{ name: 'what', type: 'STRING', mode: 'REQUIRED' }] });
      await wh.atomic([
        { kind: 'insert', dataset: ds, table: 'people', rows: [{ id: 6, name: 'fay', team: 'web', score: 3 }] },
        { kind: 'update', dataset: ds, table: 'people', set: { score: 10 }, where: { id: 1 } },
        { kind: 'delete', dataset: ds, table: 'people', where: { id: 2 } },
        { kind: 'insert', dataset: ds, table: 'audit', rows: [{ what: 'moved' }, { what: 'again' }] },
      ]);
      assert.deepEqual(ids(await wh.select(ds, 'people', { orderBy: [['id', 'asc']] })), [1, 3, 4, 5, 6]);
      assert.equal((await wh.select(ds, 'people', { where: { id: 1 } }))[0]?.['score'], 10);
      assert.equal(await wh.count(ds, 'audit'), 2);
    });

    for (const [label, failing] of [
      ['an unknown column', { id: 7, name: 'gus', nickname: 'g' }],
      ['a null in a REQUIRED column', { id: 7, name: null }],
    ] as const) {
      it(`rolls back every atomic operation when one fails (${label})`, async () => {
        await withPeople();
        const before = await wh.select(ds, 'people', { orderBy: [['id', 'asc']] });
        await assert.rejects(
          wh.atomic([
            { kind: 'insert', dataset: ds, table: 'people', rows: [{ id: 6, name: 'fay' }] },
            { kind: 'update', dataset: ds, table: 'people', set: { score: 0 }, where: {} },
            { kind: 'delete', dataset: ds, table: 'people', where: { id: 1 } },
            { kind: 'insert', dataset: ds, table: 'people', rows: [failing as Row] },
          ]),
        );
        assert.deepEqual(await wh.select(ds, 'people', { orderBy: [['id', 'asc']] }), before);
      });
    }

    it('round-trips a value of every field type, and nulls', async () => {
      await wh.createDataset(ds);
      await wh.createTable(ds, ALL_TYPES);
      const ts = new Date('2024-05-06T07:08:09.123Z');
      const bytes = Buffer.from([0, 1, 2, 250, 255]).toString('base64');
      await wh.insert(ds, 'all_types', [
        { s: 'full', i: 9007199254740991, f: -0.25, n: 1234.5, b: true, ts, d: '2024-02-29', j: '{"a":1,"b":[true,null]}', y: bytes },
        { s: 'nulls', i: null, f: null, n: null, b: null, ts: null, d: null, j: null, y: null },
        { s: 'small', i: -42, f: 1e-7, n: 0.1, b: false, ts: new Date(0), d: '1970-01-01' },
      ]);
      const [full, nulls, small] = await wh.select(ds, 'all_types', { orderBy: [['s', 'asc']] }).then((rows) => {
        const by = new Map(rows.map((r) => [r['s'], r]));
        return [by.get('full'), by.get('nulls'), by.get('small')];
      });
      assert.ok(full && nulls && small);
      assert.equal(full['i'], 9007199254740991);
      assert.equal(full['f'], -0.25);
      assert.equal(full['n'], 1234.5);
      assert.equal(full['b'], true);
      assert.ok(full['ts'] instanceof Date);
      assert.equal(full['ts'].getTime(), ts.getTime());
      assert.equal(full['d'], '2024-02-29');
      assert.deepEqual(JSON.parse(String(full['j'])), { a: 1, b: [true, null] });
      assert.equal(full['y'], bytes);
      for (const column of ['i', 'f', 'n', 'b', 'ts', 'd', 'j', 'y']) assert.equal(nulls[column], null, column);
      assert.equal(small['i'], -42);
      assert.equal(small['f'], 1e-7);
      assert.ok(Math.abs(Number(small['n']) - 0.1) < 1e-12);
      assert.equal(small['b'], false);
      assert.equal((small['ts'] as Date).getTime(), 0);
      assert.equal(small['d'], '1970-01-01');
      assert.equal(small['j'], null);

      assert.equal(await wh.count(ds, 'all_types', { ts }), 1);
      assert.equal(await wh.count(ds, 'all_types', { d: '2024-02-29' }), 1);
      assert.equal(await wh.count(ds, 'all_types', { d: { op: '<', value: '2000-01-01' } }), 1);
      assert.equal(await wh.count(ds, 'all_types', { b: false }), 1);
    });

    it('keeps an INT64 beyond 2^53 exact', async () => {
      await wh.createDataset(ds);
      await wh.createTable(ds, { name: 'big', fields: [{ name: 'v', type: 'INT64' }] });
      const big = 2n ** 60n + 7n;
      await wh.insert(ds, 'big', [{ v: big }]);
      const [row] = await wh.select(ds, 'big');
      assert.equal(String(row?.['v']), String(big));
      assert.equal(await wh.count(ds, 'big', { v: big }), 1);
    });

    it('stores values with quotes, semicolons and SQL verbatim', async () => {
      await withPeople();
      const nasty = ["Robert'); DROP TABLE people;--", '"; DELETE FROM people; --', "it's a \\'test\\' @name $1 ?", 'line1\nline2\ttab 🦆'];
      await wh.insert(
        ds,
        'people',
        nasty.map((name, i) => ({ id: 100 + i, name })),
      );
      for (const name of nasty) {
        const rows = await wh.select(ds, 'people', { where: { name } });
        assert.equal(rows.length, 1);
        assert.equal(rows[0]?.['name'], name);
      }
      assert.equal(await wh.update(ds, 'people', { team: nasty[0]! }, { name: nasty[1]! }), 1);
      assert.equal(await wh.count(ds, 'people', { team: nasty[0]! }), 1);
      assert.equal(await wh.count(ds, 'people'), 5 + nasty.length);
    });

    it('refuses unsafe identifiers with exit code 2 before anything runs', async () => {
      await withPeople();
      const bad = ['people; DROP TABLE people', 'a"b', "x'--", '1abc', '', 'a.b', 'a b', '../x'];
      for (const id of bad) {
        await assert.rejects(wh.createDataset(id), usageExit, `dataset ${id}`);
        await assert.rejects(wh.datasetExists(id), usageExit);
        await assert.rejects(wh.dropDataset(id), usageExit);
        await assert.rejects(wh.createTable(ds, { name: id, fields: [{ name: 'a', type: 'STRING' }] }), usageExit);
        await assert.rejects(wh.createTable(ds, { name: 'ok_table', fields: [{ name: id, type: 'STRING' }] }), usageExit);
        await assert.rejects(wh.dropTable(ds, id), usageExit);
        await assert.rejects(wh.select(ds, id), usageExit);
        await assert.rejects(wh.select(ds, 'people', { columns: [id] }), usageExit);
        await assert.rejects(wh.select(ds, 'people', { where: { [id]: 1 } }), usageExit);
        await assert.rejects(wh.select(ds, 'people', { orderBy: [[id, 'asc']] }), usageExit);
        await assert.rejects(wh.insert(ds, 'people', [{ id: 9, name: 'x', [id]: 'y' }]), usageExit);
        await assert.rejects(wh.update(ds, 'people', { [id]: 'y' }, { id: 1 }), usageExit);
        await assert.rejects(wh.delete(ds, 'people', { [id]: 1 }), usageExit);
        await assert.rejects(wh.count(id, 'people'), usageExit);
        await assert.rejects(
          wh.atomic([
            { kind: 'insert', dataset: ds, table: 'people', rows: [{ id: 9, name: 'first op' }] },
            { kind: 'delete', dataset: ds, table: id, where: {} },
          ]),
          usageExit,
        );
        assert.throws(() => wh.qualify(ds, id), usageExit);
      }
      assert.equal(await wh.tableExists(ds, 'ok_table'), false);
      assert.deepEqual(await wh.listTables(ds), ['people']);
      assert.deepEqual(ids(await wh.select(ds, 'people', { orderBy: [['id', 'asc']] })), [1, 2, 3, 4, 5]);
    });

    it('runs caller SQL with @name parameters', async () => {
      await withPeople();
      const table = wh.qualify(ds, 'people');
      assert.ok(table.includes(ds) && table.includes('people'));
      const rows = await wh.query(
        `SELECT name, 'contact@example.com' AS email FROM ${table} WHERE team = @team AND score > @min ORDER BY name`,
        { team: 'core', min: 5 },
      );
      assert.deepEqual(rows, [{ name: 'ada', email: 'contact@example.com' }]);
      const reused = await wh.query(`SELECT count(*) AS n FROM ${table} WHERE name = @who OR team = @who`, {
        who: "o'; DROP TABLE people; --",
      });
      assert.equal(Number(reused[0]?.['n']), 0);
      await assert.rejects(wh.query(`SELECT name FROM ${table} WHERE name = @missing`, {}));
      assert.equal(await wh.count(ds, 'people'), 5);
    });
  });
}
