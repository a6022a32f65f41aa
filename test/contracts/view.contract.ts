/**
 * Views, as every Warehouse adapter makes them: tenant SQL checked by the same gate as any
 * transform, stored in the tenant's dataset, resolved when read; a table of the same name is
 * replaced only on request; parameters and the product's own table names are refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Row, TableSpec, Warehouse } from '../../src/backends/warehouse/port.ts';
import type { WarehouseFixture } from './warehouse.contract.ts';

const PEOPLE: TableSpec = {
  name: 'people',
  fields: [
    { name: 'id', type: 'INT64', mode: 'REQUIRED' },
    { name: 'name', type: 'STRING' },
    { name: 'score', type: 'FLOAT64' },
  ],
};
const PEOPLE_ROWS: Row[] = [
  { id: 1, name: 'ada', score: 9.5 },
  { id: 2, name: 'bob', score: 4 },
  { id: 3, name: 'cy', score: 7.25 },
];

const code =
  (expected: string, exit = 2) =>
  (err: unknown) => {
    const e = err as { code?: string; exitCode?: number };
    assert.equal(e.code, expected, String(err));
    assert.equal(e.exitCode, exit);
    return true;
  };

export function viewContract(name: string, make: () => Promise<WarehouseFixture>): void {
  describe(`Warehouse views: ${name}`, () => {
    let fixture: WarehouseFixture;
    let wh: Warehouse;
    let ds: string;
    let other: string;

    beforeEach(async () => {
      fixture = await make();
      wh = fixture.subject;
      ds = `wv_${randomBytes(4).toString('hex')}`;
      other = `${ds}_other`;
      await wh.createDataset(ds);
      await wh.createTable(ds, PEOPLE);
      await wh.insert(ds, 'people', PEOPLE_ROWS);
    });
    afterEach(async () => {
      await wh.dropDataset(ds).catch(() => undefined);
      await wh.dropDataset(other).catch(() => undefined);
      await wh.close();
      await fixture.cleanup();
    });

    const goodSql = () => `SELECT id, name FROM ${wh.qualify(ds, 'people')} WHERE score > 5`;

    it('creates a view that reads the tables as they are when it is read', async () => {
      const made = await wh.createView({ dataset: ds, view: 'good_people', sql: goodSql(), origin: 'sql/good.sql' });
      assert.equal(made.created, true);
      assert.equal(made.replacedTable, false);
      assert.deepEqual(
        made.fields.map((f) => [f.name, f.type]),
        [
          ['id', 'INT64'],
          ['name', 'STRING'],
        ],
      );
      assert.ok((await wh.listTables(ds)).includes('good_people'));
      assert.equal(await wh.tableExists(ds, 'good_people'), true);
      assert.equal(await wh.count(ds, 'good_people'), 2);
      await wh.insert(ds, 'people', [{ id: 4, name: 'di', score: 8 }]);
      const rows = await wh.select(ds, 'good_people', { orderBy: [['id', 'asc']] });
      assert.deepEqual(
        rows.map((r) => r['name']),
        ['ada', 'cy', 'di'],
      );
      // A transform may read the view like any table of its dataset.
      const read = await wh.queryTenant(`SELECT count(*) AS n FROM ${wh.qualify(ds, 'good_people')}`, { dataset: ds });
      assert.equal(Number(read[0]?.['n']), 3);
    });

    it('replaces its own view on the next run', async () => {
      await wh.createView({ dataset: ds, view: 'v', sql: goodSql() });
      const again = await wh.createView({ dataset: ds, view: 'v', sql: `SELECT name AS who FROM ${wh.qualify(ds, 'people')}` });
      assert.equal(again.created, false);
      assert.deepEqual(
        again.fields.map((f) => f.name),
        ['who'],
      );
      assert.equal(await wh.count(ds, 'v'), 3);
      await wh.dropTable(ds, 'v');
      assert.equal(await wh.tableExists(ds, 'v'), false);
    });

    it('refuses to turn a table into a view unless asked, and keeps its rows', async () => {
      await assert.rejects(wh.createView({ dataset: ds, view: 'people', sql: goodSql() }), code('VIEW_REPLACES_TABLE'));
      assert.equal(await wh.count(ds, 'people'), 3);
      await wh.createTable(ds, { name: 'old', fields: [{ name: 'x', type: 'INT64' }] });
      await wh.insert(ds, 'old', [{ x: 1 }]);
      const replaced = await wh.createView({ dataset: ds, view: 'old', sql: goodSql(), replaceTable: true });
      assert.equal(replaced.replacedTable, true);
      assert.equal(await wh.count(ds, 'old'), 2);
    });

    it('checks the SQL with the tenant SQL gate before anything changes', async () => {
      await wh.createDataset(other);
      await wh.createTable(other, PEOPLE);
      const attempts = [
        `SELECT * FROM ${wh.qualify(other, 'people')}`,
        `SELECT p.id FROM ${wh.qualify(ds, 'people')} AS p JOIN ${wh.qualify(other, 'people')} AS o ON p.id = o.id`,
        `DELETE FROM ${wh.qualify(ds, 'people')} WHERE true`,
        `SELECT 1 AS x; DROP TABLE ${wh.qualify(ds, 'people')}`,
      ];
      for (const sql of attempts) {
        await assert.rejects(wh.createView({ dataset: ds, view: 'bad', sql, origin: 'sql/bad.sql' }), (err: unknown) => {
          const e = err as { code?: string; exitCode?: number; message?: string };
          assert.match(e.code ?? '', /^TENANT_SQL_(REFUSED|INVALID)$/, `${sql}: ${String(err)}`);
          assert.equal(e.exitCode, 2);
          assert.match(e.message ?? '', /^sql\/bad\.sql/);
          return true;
        });
      }
      assert.equal(await wh.tableExists(ds, 'bad'), false);
      assert.equal(await wh.count(ds, 'people'), 3);
    });

    it('refuses parameters, which nothing binds when a view is read', async () => {
      await assert.rejects(
        wh.createView({ dataset: ds, view: 'v', sql: `SELECT id FROM ${wh.qualify(ds, 'people')} WHERE name = @who`, origin: 'sql/v.sql' }),
        (err: unknown) =>
          code('VIEW_PARAMETERS')(err) && /sql\/v\.sql: a view cannot use template variables \(\{\{ who \}\}\)/.test(String(err)),
      );
      assert.equal(await wh.tableExists(ds, 'v'), false);
    });

    it("refuses the names of the product's own tables", async () => {
      for (const view of ['_convergence_state', '_CONVERGENCE_loads', 'people__quarantine', 'people__stage_ab12cd34_0011']) {
        await assert.rejects(wh.createView({ dataset: ds, view, sql: goodSql() }), code('VIEW_NAME_RESERVED'), view);
      }
    });
  });
}
