/**
 * The DuckDB warehouse's tenant SQL gate at the port: checkTenantQuery, queryTenant and a load
 * from a query refuse SQL that leaves the tenant's dataset whoever calls them, what runs is
 * DuckDB's restatement of the checked tree, and the session that runs it cannot reach a file
 * even when a table it may read is a view that tries to.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDbWarehouse } from '../../src/backends/warehouse/duckdb/index.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const OTHER = 'globex_inc';
let wh: DuckDbWarehouse;
let hostFile: string;

before(async () => {
  const dir = await makeTempDir('tenant-sql');
  hostFile = path.join(dir, 'host.csv');
  await writeFile(hostFile, 'secret\nHOST_FILE_CONTENT_1c2d\n');
  wh = new DuckDbWarehouse({ file: path.join(dir, 'warehouse.duckdb') });
  for (const dataset of [TENANT, OTHER]) await wh.createDataset(dataset);
  await wh.createTable(TENANT, { name: 'events', fields: [{ name: 'id', type: 'INT64' }] });
  await wh.insert(TENANT, 'events', [{ id: 1 }, { id: 2 }]);
  await wh.createTable(OTHER, { name: 'payroll', fields: [{ name: 'salary', type: 'STRING' }] });
  await wh.insert(OTHER, 'payroll', [{ salary: 'GLOBEX_ROW' }]);
  // Not something a tenant can make: a view in its dataset that reads a host file, to show the
  // session running tenant SQL cannot read files even when the gate lets a table through.
  await wh.query(`CREATE VIEW ${TENANT}.host_view AS SELECT * FROM read_csv('${hostFile}')`);
});
after(async () => {
  await wh.close();
  await cleanupAll();
});

const scope = { dataset: TENANT, origin: 'configs/acme_corp/sql/x.sql' };

describe('DuckDB tenant SQL gate', () => {
  it('reports the tables a query reads, CTE names resolved away', async () => {
    const sql = `WITH e AS (SELECT * FROM "acme_corp"."events") SELECT * FROM e JOIN acme_corp.events USING (id) WHERE id > @min`;
    assert.deepEqual(await wh.checkTenantQuery(sql, { ...scope, params: { min: 0 } }), { tables: ['acme_corp.events'] });
  });

  it('resolves CTE scope as DuckDB does: a CTE body does not see itself unless recursive, nor the CTEs after it', async () => {
    await rejectsWith(wh.checkTenantQuery('WITH events AS (SELECT * FROM events) SELECT * FROM events', scope), 2, /reads "events"/);
    await rejectsWith(
      wh.checkTenantQuery('WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a', scope),
      2,
      /reads "b", which is neither a CTE nor a table/,
    );
    const recursive = 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r';
    assert.deepEqual(await wh.checkTenantQuery(recursive, scope), { tables: [] });
  });

  it('refuses at every entry point, so no caller can skip the gate', async () => {
    const attack = `SELECT * FROM ${OTHER}.payroll`;
    await rejectsWith(wh.checkTenantQuery(attack, scope), 2, /x\.sql:1: reads globex_inc\.payroll, outside the tenant's dataset acme_corp/);
    await rejectsWith(wh.queryTenant(attack, scope), 2, /reads globex_inc\.payroll/);
    await rejectsWith(
      wh.load({
        dataset: TENANT,
        table: 'stolen',
        writeMode: 'replace',
        runId: 'r1',
        source: { kind: 'query', sql: attack, origin: scope.origin },
      }),
      2,
      /reads globex_inc\.payroll/,
    );
    assert.equal(await wh.tableExists(TENANT, 'stolen'), false);
    await rejectsWith(
      wh.load({
        dataset: TENANT,
        table: 'stolen',
        writeMode: 'replace',
        runId: 'r1',
        source: { kind: 'query', sql: 'SELECT 1 AS x; SELECT 2 AS x' },
      }),
      2,
      /holds 2 statements/,
    );
  });

  it('runs the restatement, so a trailing comment or semicolon cannot break the SQL built around it', async () => {
    const result = await wh.load({
      dataset: TENANT,
      table: 'copy',
      writeMode: 'replace',
      runId: 'r2',
      source: { kind: 'query', sql: 'SELECT id FROM acme_corp.events WHERE id >= @min; -- note', params: { min: 2 } },
    });
    assert.equal(result.rowsLoaded, 1);
    assert.deepEqual(await wh.select(TENANT, 'copy'), [{ id: 2 }]);
    assert.deepEqual(await wh.queryTenant('SELECT count(*) AS n FROM acme_corp.events --', scope), [{ n: 2 }]);
  });

  it('runs tenant SQL where files cannot be read, even through a table the gate lets pass', async () => {
    const err = await rejectsWith(wh.queryTenant('SELECT * FROM acme_corp.host_view', scope), 1, /file system operations are disabled/);
    assert.ok(!err.message.includes('HOST_FILE_CONTENT'));
    // The same view read as the platform (not tenant SQL) shows the file is there to be read.
    assert.deepEqual(await wh.query(`SELECT count(*) AS n FROM ${TENANT}.host_view`), [{ n: 1 }]);
  });

  it('restates a DQ expression so that it parses back to the same tree', async () => {
    assert.equal(await wh.checkTenantExpression('id > 0 -- positive', { dataset: TENANT, table: 'events' }), '(id > 0)');
    await rejectsWith(wh.checkTenantExpression('id > (SELECT 1)', { dataset: TENANT, table: 'events' }), 2, /holds a subquery/);
  });
});
