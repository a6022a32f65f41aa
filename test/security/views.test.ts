/**
 * Views are stored tenant SQL, resolved whenever someone reads them: acme_corp must not be able to
 * make one that reaches globex_inc, the metadata or a file, nor one that stands in for the
 * product's own tables, and a view it makes must keep resolving to its own schema whoever reads it
 * later (another tenant, `serve`, the warehouse file attached under another name).
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { BigQueryWarehouse } from '../../src/backends/warehouse/bigquery/index.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { FakeBigQuery, fakeClient } from '../fakes/bigquery/index.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { ATTACKER, CANARY, seedAttackTargets, VICTIM } from '../helpers/sql-attack-targets.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

let root: string;
const acme = (...parts: string[]) => path.join(root, 'configs', ATTACKER, ...parts);

/** A pipeline whose one step makes the view `view` from `sql/<id>.sql`. */
async function viewPipeline(id: string, view: string, sql: string): Promise<void> {
  await writeFile(acme('sql', `${id}.sql`), sql);
  await writeFile(
    acme('pipelines', `${id}.yml`),
    `pipeline_id: ${id}\nsteps:\n  - name: build\n    type: transform\n    sql: sql/${id}.sql\n    destination: { table: ${view}, write_mode: view }\n`,
  );
}

async function problemsOf(id: string): Promise<string> {
  const report = await withContext(root, (ctx) => validateConfigs(ctx, { file: acme('pipelines', `${id}.yml`) }));
  return report.files.flatMap((f) => f.errors).join('\n');
}

const guarded = () =>
  withWarehouse(root, async (w) => ({
    acmeTables: await w.listTables(ATTACKER),
    victimTables: await w.listTables(VICTIM),
    payroll: await w.select(VICTIM, 'payroll'),
    runs: await w.count(METADATA_DATASET, T.runs, { tenant_id: ATTACKER }),
  }));

describe('views: stored tenant SQL stays inside the tenant', () => {
  before(async () => {
    root = await newBootstrappedWorkspace('views-sec');
    await withContext(root, seedAttackTargets);
    await mkdir(acme('sql'), { recursive: true });
    await mkdir(acme('pipelines'), { recursive: true });
  });

  const attacks: Array<{ name: string; sql: string; refusal: RegExp }> = [
    { name: "globex's table", sql: `SELECT * FROM ${VICTIM}.payroll`, refusal: /reads globex_inc\.payroll, outside the tenant's dataset/ },
    { name: 'the metadata', sql: `SELECT * FROM ${METADATA_DATASET}.${T.apiKeys}`, refusal: /reads tenants\./ },
    {
      name: "globex's table behind a CTE named like acme's",
      sql: `WITH events AS (SELECT * FROM ${VICTIM}.payroll) SELECT * FROM events`,
      refusal: /reads globex_inc\.payroll/,
    },
    { name: 'a file', sql: "SELECT * FROM read_csv('/etc/passwd')", refusal: /calls the table function read_csv\(\)/ },
    { name: 'a bare name resolved later', sql: 'SELECT * FROM payroll', refusal: /reads "payroll", which is neither a CTE nor a table/ },
    {
      name: 'a second statement',
      sql: `SELECT 1 AS x; CREATE VIEW ${ATTACKER}.v2 AS SELECT * FROM ${VICTIM}.payroll`,
      refusal: /holds 2 statements/,
    },
  ];
  for (const [index, attack] of attacks.entries()) {
    it(`refuses a view reading ${attack.name}, at validate and at run, creating nothing`, async () => {
      const id = `p_view_attack_${index}`;
      await viewPipeline(id, 'v_attack', attack.sql);
      const before = await guarded();
      const problems = await problemsOf(id);
      assert.match(problems, new RegExp(`configs/acme_corp/sql/${id}\\.sql`));
      assert.match(problems, attack.refusal);
      const err = await withContext(root, (ctx) =>
        rejectsWith(runPipeline(ctx, { tenantId: ATTACKER, pipelineId: id }), 2, attack.refusal),
      );
      assert.ok(!err.message.includes(CANARY.payroll));
      assert.deepEqual(await guarded(), before, 'no view, no run row, globex unchanged');
    });
  }

  it("refuses views named like the product's own tables, at the line that names them", async () => {
    for (const view of ['_convergence_state', 'events__quarantine']) {
      await viewPipeline('p_view_reserved', view, "SELECT id FROM {{ ref('events') }}");
      const problems = await problemsOf('p_view_reserved');
      assert.match(
        problems,
        new RegExp(`p_view_reserved\\.yml:\\d+:\\d+: steps\\.0\\.destination\\.table: a view cannot be named ${view}`),
      );
    }
  });

  it('refuses template variables in a view (nothing binds them when the view is read)', async () => {
    await viewPipeline('p_view_param', 'v_param', "SELECT id FROM {{ ref('events') }} WHERE status = '{{ run_date }}'");
    assert.match(await problemsOf('p_view_param'), /p_view_param\.sql: a view cannot use template variables \(\{\{ run_date \}\}\)/);
    await withContext(root, (ctx) =>
      rejectsWith(runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_view_param' }), 2, /a view cannot use template variables/),
    );
  });

  it("stores only the tenant's own schema, and resolves there whoever reads the view", async () => {
    await viewPipeline('p_view_ok', 'v_ok', "SELECT id, amount FROM {{ ref('events') }} WHERE status = 'ok'");
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_view_ok' }));
    assert.equal(summary.status, 'COMPLETE');

    const stored = await withWarehouse(root, async (w) => {
      const [row] = await w.query(
        "SELECT sql FROM duckdb_views() WHERE schema_name = 'acme_corp' AND view_name = 'v_ok' AND database_name = current_database()",
      );
      return String(row?.['sql']);
    });
    // The stored query, put to the gate again, reads acme_corp's events and nothing else.
    const body = stored.replace(/^CREATE VIEW \S+ AS /, '').replace(/;\s*$/, '');
    const check = await withWarehouse(root, (w) => w.checkTenantQuery(body, { dataset: ATTACKER }));
    assert.deepEqual(check.tables, ['acme_corp.events']);

    // Another tenant cannot read it: the gate sees acme_corp's schema.
    await withWarehouse(root, (w) =>
      rejectsWith(w.queryTenant(`SELECT * FROM ${w.qualify(ATTACKER, 'v_ok')}`, { dataset: VICTIM }), 2, /outside the tenant's dataset/),
    );

    // The file attached under another name, beside a decoy schema of the same name: the view still reads its own.
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    try {
      await conn.run(`ATTACH '${path.join(root, '.convergence', 'warehouse.duckdb').replaceAll("'", "''")}' AS other_name (READ_ONLY)`);
      await conn.run(`CREATE SCHEMA ${ATTACKER}; CREATE TABLE ${ATTACKER}.events AS SELECT 99 AS id, 0.0 AS amount, 'ok' AS status`);
      const rows = (await conn.runAndReadAll(`SELECT id FROM other_name.${ATTACKER}.v_ok ORDER BY id`)).getRowObjectsJS();
      assert.deepEqual(
        rows.map((r) => Number(r['id'])),
        [1, 2],
      );
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });

  it('replaces a table by a view only under --full-refresh, and says so', async () => {
    await withWarehouse(root, async (w) => {
      await w.createTable(ATTACKER, { name: 'v_table', fields: [{ name: 'id', type: 'INT64' }] });
      await w.insert(ATTACKER, 'v_table', [{ id: 7 }]);
    });
    await viewPipeline('p_view_table', 'v_table', "SELECT id FROM {{ ref('events') }}");
    const failed = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_view_table' }));
    assert.equal(failed.status, 'FAILED');
    assert.deepEqual(await withWarehouse(root, (w) => w.select(ATTACKER, 'v_table')), [{ id: 7 }], 'the table keeps its rows');
    const refreshed = await withContext(root, (ctx) =>
      runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_view_table', fullRefresh: true }),
    );
    assert.equal(refreshed.status, 'COMPLETE');
    assert.ok(refreshed.steps[0]!.notes.includes('replaced the table v_table by a view (full refresh)'));
    assert.equal(await withWarehouse(root, (w) => w.count(ATTACKER, 'v_table')), 2);
    // A later --full-refresh leaves the view a view.
    const again = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_view_table', fullRefresh: true }));
    assert.equal(again.status, 'COMPLETE');
    assert.deepEqual(again.steps[0]!.notes, []);
    const kinds = await withWarehouse(root, (w) =>
      w.query("SELECT view_name FROM duckdb_views() WHERE schema_name = 'acme_corp' AND view_name = 'v_table'"),
    );
    assert.equal(kinds.length, 1);
  });
});

describe('views on BigQuery: only dry runs see a refused view, and what is stored reads the tenant dataset', () => {
  let fake: FakeBigQuery;
  let wh: BigQueryWarehouse;
  before(async () => {
    fake = await FakeBigQuery.start({ projectId: 'views-sec' });
    wh = new BigQueryWarehouse({ client: await fakeClient(fake), project: fake.projectId, location: 'EU', retry: { baseDelayMs: 5 } });
    for (const dataset of [ATTACKER, VICTIM, METADATA_DATASET]) await wh.createDataset(dataset);
    await wh.createTable(VICTIM, { name: 'payroll', fields: [{ name: 'salary', type: 'STRING' }] });
    await wh.insert(VICTIM, 'payroll', [{ salary: CANARY.payroll }]);
    await wh.createTable(METADATA_DATASET, { name: T.apiKeys, fields: [{ name: 'api_key_hash', type: 'STRING' }] });
    await wh.createTable(ATTACKER, { name: 'events', fields: [{ name: 'id', type: 'INT64' }] });
  });
  after(() => fake.stop());

  const attacks = [
    ["globex's table", `SELECT * FROM \`views-sec.${VICTIM}.payroll\``],
    ['the metadata', `SELECT * FROM ${METADATA_DATASET}.${T.apiKeys}`],
    ['a join out of the dataset', `SELECT e.id, p.salary FROM ${ATTACKER}.events e CROSS JOIN ${VICTIM}.payroll p`],
    ['a UNION out of the dataset', `SELECT CAST(id AS STRING) AS v FROM ${ATTACKER}.events UNION ALL SELECT salary FROM ${VICTIM}.payroll`],
  ];
  for (const [index, [name, sql]] of attacks.entries()) {
    it(`refuses a view reading ${name} before any DDL job`, async () => {
      const marker = `/* view-attack-${index} */`;
      await rejectsWith(wh.createView({ dataset: ATTACKER, view: 'v_attack', sql: `${marker} ${sql}`, origin: 'sql/v.sql' }), 2);
      const executed = fake.queriesSent().filter((q) => !q.dryRun && q.query.includes(marker));
      assert.deepEqual(executed, [], 'only dry runs saw the SQL');
      assert.equal(await wh.tableExists(ATTACKER, 'v_attack'), false);
    });
  }

  it("stores the checked query, its tables named with project and dataset, in the tenant's dataset", async () => {
    const sql = `SELECT id FROM ${wh.qualify(ATTACKER, 'events')}`;
    await wh.createView({ dataset: ATTACKER, view: 'v_ids', sql });
    const [metadata] = await (await fakeClient(fake)).dataset(ATTACKER).table('v_ids').getMetadata();
    assert.equal(metadata.type, 'VIEW');
    assert.equal(metadata.view.query.trim(), sql);
    assert.match(metadata.view.query, /`views-sec\.acme_corp\.events`/);
    await rejectsWith(
      wh.queryTenant(`SELECT * FROM ${wh.qualify(ATTACKER, 'v_ids')}`, { dataset: VICTIM }),
      2,
      /outside the tenant's dataset/,
    );
  });
});
