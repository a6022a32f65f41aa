/**
 * The attack suite behind sql-sandbox-*.test.ts (split in two so each file stays short).
 * acme_corp attacks globex_inc, the metadata, the keyring and the host through the SQL it may
 * write — transform files and DQ expressions — on the local environment, with the built CLI.
 * Every attack is refused with exit 2 by `pipeline validate` (naming file:line and what was found)
 * and by `pipeline run` (before any run row), globex_inc's data, keys and credentials are unchanged,
 * and nothing it holds (nor the keyring key, nor a host file, nor the warehouse's paths) appears
 * in any output. The same checks let ordinary SQL through: CTEs named like another tenant's
 * table, string literals full of SQL, trailing comments.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runJson, show, type JsonResult } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { ATTACKER, CANARY, dqPipeline, seedAttackTargets, transformPipeline, VICTIM } from '../helpers/sql-attack-targets.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

interface SqlAttack {
  name: string;
  sql: string;
  refusal: RegExp;
  /** Line of the file the refusal names; undefined when the parser reports none (a multi-statement text). */
  line?: number;
}

/** Registers the suite: `transforms` (SQL files, and ordinary SQL still running) or `expressions` (DQ rules). */
export function sqlSandboxSuite(part: 'transforms' | 'expressions'): void {
  after(cleanupAll);

  /** First line of /etc/passwd on any Linux: must never be printed. */
  const PASSWD = 'root:x:0:0';

  let root: string;
  let outside: string;
  /** Text that must not leak: globex's API key, the keyring key, the warehouse's folder. */
  const secrets: string[] = [];

  const acme = (...parts: string[]) => path.join(root, 'configs', ATTACKER, ...parts);

  before(async () => {
    root = await newBootstrappedWorkspace('sql-sandbox');
    outside = await makeTempDir('sql-outside');
    secrets.push(await withContext(root, seedAttackTargets));
    secrets.push((await readFile(path.join(root, '.convergence', 'keyring.key'), 'utf8')).trim());
    // The warehouse's folder: current_setting('temp_directory') would have printed it.
    secrets.push(path.join(root, '.convergence'));
  });

  /** What acme_corp must not change: globex's rows and tables, its keys and credentials, the metadata tables. */
  async function guarded() {
    return withWarehouse(root, async (w) => ({
      victimTables: await w.listTables(VICTIM),
      payroll: await w.select(VICTIM, 'payroll'),
      keys: await w.select(METADATA_DATASET, T.apiKeys, {
        where: { tenant_id: VICTIM },
        columns: ['api_key_hash', 'encrypted_api_key', 'status'],
      }),
      credentials: await w.select(METADATA_DATASET, T.credentials, {
        where: { tenant_id: VICTIM },
        columns: ['credential_name', 'status', 'encrypted_value'],
      }),
      metadata: await w.listTables(METADATA_DATASET),
      attackerTables: await w.listTables(ATTACKER),
    }));
  }

  const runsOf = (tenantId: string) => withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs, { tenant_id: tenantId }));

  /** Every problem `pipeline validate --json` listed, one per line. */
  function reportText(r: JsonResult<unknown>): string {
    const report = (r.envelope.error?.data as { report?: { files: Array<{ errors: string[] }> } } | undefined)?.report;
    return (report?.files ?? []).flatMap((f) => f.errors).join('\n');
  }

  function assertNothingLeaked(r: JsonResult<unknown>, label: string) {
    for (const text of [CANARY.payroll, CANARY.credential, PASSWD, ...secrets]) {
      assert.ok(!r.all.includes(text), `${label}: output holds ${text.slice(0, 16)}...\n${show(r)}`);
    }
  }

  const COPY_TARGET = () => path.join(outside, 'copied.csv');

  /** Transform files: the attacks of the issue, then variants. `{{ ref('events') }}` is acme's own table. */
  const sqlAttacks: Array<Omit<SqlAttack, 'sql'> & { sql: string | (() => string) }> = [
    {
      name: "globex's payroll",
      sql: `-- attack\nSELECT *\nFROM ${VICTIM}.payroll\n`,
      refusal: /reads globex_inc\.payroll, outside the tenant's dataset acme_corp/,
      line: 3,
    },
    {
      name: 'the API keys',
      sql: 'SELECT api_key_hash, status FROM tenants.tenant_api_keys',
      refusal: /reads tenants\.tenant_api_keys/,
      line: 1,
    },
    {
      name: 'the cloud credentials',
      sql: '\n\nSELECT * FROM tenants.tenant_cloud_credentials',
      refusal: /reads tenants\.tenant_cloud_credentials/,
      line: 3,
    },
    {
      name: 'the keyring with read_text()',
      sql: "SELECT content FROM read_text('.convergence/keyring.key')",
      refusal: /table function read_text\(\)/,
      line: 1,
    },
    { name: '/etc/passwd with read_csv()', sql: "SELECT * FROM read_csv('/etc/passwd')", refusal: /table function read_csv\(\)/, line: 1 },
    {
      name: "COPY … TO a file of globex's rows",
      sql: () => `-- export\nCOPY (SELECT * FROM ${VICTIM}.payroll) TO '${COPY_TARGET()}' (HEADER)`,
      refusal: /found a COPY statement, not a query/,
      line: 2,
    },
    {
      name: 'the wrapper-closing injection that revoked keys and dropped a schema',
      sql:
        `SELECT * FROM {{ ref('events') }} WHERE id IN (1\n)); COMMIT; UPDATE tenants.tenant_api_keys SET status = 'REVOKED' ` +
        `WHERE tenant_id = '${VICTIM}'; DROP SCHEMA ${VICTIM} CASCADE; SELECT (1`,
      refusal: /DuckDB cannot parse it: syntax error at or near "\)"/,
      line: 2,
    },
    {
      name: 'well-formed statements after a query',
      sql: `SELECT 1 AS x;\nUPDATE tenants.tenant_api_keys SET status = 'REVOKED' WHERE tenant_id = '${VICTIM}';\nDROP SCHEMA ${VICTIM} CASCADE;`,
      refusal: /holds 3 statements; tenant SQL is exactly one query/,
    },
    { name: 'two queries', sql: `SELECT 1 AS x;\nSELECT * FROM ${VICTIM}.payroll`, refusal: /holds 2 statements/, line: 2 },
    { name: 'a trailing comment closing the wrapper', sql: `SELECT 1 AS x) --\n`, refusal: /DuckDB cannot parse it/, line: 1 },
    {
      name: 'ATTACH of the warehouse file',
      sql: () => `ATTACH '${path.join(root, '.convergence', 'warehouse.duckdb')}' AS w`,
      refusal: /found an ATTACH statement/,
      line: 1,
    },
    { name: 'PRAGMA', sql: `PRAGMA table_info('${VICTIM}.payroll')`, refusal: /found a PRAGMA statement/, line: 1 },
    { name: 'SET to reopen external access', sql: 'SET enable_external_access = true', refusal: /found a SET statement/, line: 1 },
    { name: 'duckdb_tables()', sql: 'SELECT * FROM duckdb_tables()', refusal: /table function duckdb_tables\(\)/, line: 1 },
    {
      name: 'information_schema',
      sql: 'SELECT table_schema, table_name FROM information_schema.tables',
      refusal: /reads information_schema\.tables/,
      line: 1,
    },
    { name: 'pg_catalog', sql: 'SELECT * FROM pg_catalog.pg_tables', refusal: /reads pg_catalog\.pg_tables/, line: 1 },
    { name: 'getenv()', sql: "SELECT getenv('HOME') AS home", refusal: /calls getenv\(\)/, line: 1 },
    { name: 'current_setting()', sql: "SELECT current_setting('temp_directory') AS dir", refusal: /calls current_setting\(\)/, line: 1 },
    {
      name: 'a quoted function name',
      sql: `SELECT "current_setting"('temp_directory') AS dir`,
      refusal: /calls current_setting\(\)/,
      line: 1,
    },
    {
      name: 'a schema-qualified function',
      sql: "SELECT pg_catalog.current_setting('temp_directory') AS dir",
      refusal: /calls pg_catalog\.current_setting\(\)/,
      line: 1,
    },
    { name: 'quoted identifiers', sql: `SELECT * FROM "${VICTIM}"."payroll"`, refusal: /reads globex_inc\.payroll/, line: 1 },
    { name: 'upper-case identifiers', sql: `SELECT * FROM "GLOBEX_INC".PAYROLL`, refusal: /reads GLOBEX_INC\.PAYROLL, outside/, line: 1 },
    {
      name: 'a look-alike (Cyrillic) dataset name',
      sql: 'SELECT * FROM "globex_in\u0441".payroll',
      refusal: /outside the tenant's dataset acme_corp/,
      line: 1,
    },
    {
      name: "a CTE named like acme's own table that reads globex",
      sql: `WITH events AS (SELECT * FROM ${VICTIM}.payroll)\nSELECT * FROM events`,
      refusal: /reads globex_inc\.payroll/,
      line: 1,
    },
    {
      name: "a CTE named like globex's table",
      sql: `WITH payroll AS (SELECT * FROM ${VICTIM}.payroll) SELECT * FROM payroll`,
      refusal: /reads globex_inc\.payroll/,
      line: 1,
    },
    {
      name: 'a recursive CTE that joins globex',
      sql: `WITH RECURSIVE r(n) AS (\n  SELECT 1\n  UNION ALL\n  SELECT n + 1 FROM r, ${VICTIM}.payroll WHERE n < 2\n)\nSELECT * FROM r`,
      refusal: /reads globex_inc\.payroll/,
      line: 4,
    },
    {
      name: 'a lateral join',
      sql: `SELECT * FROM {{ ref('events') }} e,\n  LATERAL (SELECT * FROM ${VICTIM}.payroll p WHERE p.id = e.id)`,
      refusal: /reads globex_inc\.payroll/,
      line: 2,
    },
    {
      name: 'a subquery in WHERE',
      sql: `SELECT * FROM {{ ref('events') }}\nWHERE id IN (SELECT 1 FROM tenants.tenant_api_keys)`,
      refusal: /reads tenants\.tenant_api_keys/,
      line: 2,
    },
    {
      name: 'a UNION',
      sql: `SELECT id FROM {{ ref('events') }} UNION ALL SELECT id FROM ${VICTIM}.payroll`,
      refusal: /reads globex_inc\.payroll/,
      line: 1,
    },
    {
      name: 'a subquery inside a lambda',
      sql: `SELECT list_transform([1], x -> (SELECT max(salary) FROM ${VICTIM}.payroll)) AS l`,
      refusal: /reads globex_inc\.payroll/,
      line: 1,
    },
    {
      // DuckDB expands a PIVOT without an IN list into statements of its own (it first reads the values).
      name: 'a PIVOT of globex',
      sql: `SELECT * FROM (PIVOT ${VICTIM}.payroll ON id USING first(salary))`,
      refusal: /holds 2 statements|reads globex_inc\.payroll/,
    },
    {
      name: 'a PIVOT of globex with its values listed',
      sql: `SELECT * FROM ${VICTIM}.payroll PIVOT (first(salary) FOR id IN (1, 2))`,
      refusal: /reads globex_inc\.payroll/,
      line: 1,
    },
    {
      name: 'a three-part name through the catalog',
      sql: `SELECT * FROM warehouse.${VICTIM}.payroll`,
      refusal: /reads warehouse\.globex_inc\.payroll, in another database/,
      line: 1,
    },
    {
      name: 'a file path as a table',
      sql: "SELECT * FROM '/etc/passwd'",
      refusal: /reads "\/etc\/passwd", which is neither a CTE nor a table of the tenant's dataset/,
      line: 1,
    },
    {
      name: 'an unqualified table name',
      sql: 'SELECT * FROM payroll',
      refusal: /reads "payroll", which is neither a CTE nor a table/,
      line: 1,
    },
    { name: 'query()', sql: `SELECT * FROM query('SELECT * FROM ${VICTIM}.payroll')`, refusal: /table function query\(\)/, line: 1 },
    {
      name: 'json_execute_serialized_sql()',
      sql: `SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT * FROM ${VICTIM}.payroll'))`,
      refusal: /table function json_execute_serialized_sql\(\)/,
      line: 1,
    },
    { name: 'DESCRIBE', sql: `DESCRIBE ${VICTIM}.payroll`, refusal: /uses DESCRIBE, SHOW or SUMMARIZE/, line: 1 },
    {
      name: 'EXPORT DATABASE',
      sql: () => `EXPORT DATABASE '${path.join(outside, 'export')}'`,
      refusal: /found an EXPORT statement/,
      line: 1,
    },
    { name: 'INSTALL of an extension', sql: 'INSTALL httpfs', refusal: /found an INSTALL statement/, line: 1 },
    { name: 'CALL', sql: 'CALL duckdb_tables()', refusal: /found a CALL statement/, line: 1 },
    {
      name: 'a parameter that is no template variable',
      sql: `SELECT * FROM {{ ref('events') }} WHERE status = $secret_name`,
      refusal: /uses the parameter \$secret_name/,
      line: 1,
    },
    { name: "a sequence's nextval()", sql: `SELECT nextval('${VICTIM}.seq') AS n`, refusal: /calls nextval\(\)/, line: 1 },
  ];

  /** DQ expressions on acme's own table. */
  const dqAttacks: Array<{ name: string; expr: string; refusal: RegExp }> = [
    {
      name: 'current_setting through a quoted name',
      expr: `"current_setting"('temp_directory') IS NOT NULL`,
      refusal: /calls current_setting\(\)/,
    },
    { name: 'getenv()', expr: "getenv('HOME') <> ''", refusal: /calls getenv\(\)/ },
    { name: "a subquery reading globex's payroll", expr: `amount > (SELECT count(*) FROM ${VICTIM}.payroll)`, refusal: /holds a subquery/ },
    { name: 'a subquery of its own table', expr: 'amount > (SELECT 1 FROM acme_corp.events LIMIT 1)', refusal: /holds a subquery/ },
    { name: 'the keyring with read_text()', expr: "read_text('.convergence/keyring.key') IS NULL", refusal: /calls read_text\(\)/ },
    {
      name: 'text that closes the aggregate and reads globex',
      expr: `amount > 0) AS m0, (SELECT count(*) FROM ${VICTIM}.payroll) AS m9 FROM acme_corp.events --`,
      refusal: /not one expression|DuckDB cannot parse it/,
    },
    { name: 'a second statement', expr: `amount > 0; DROP SCHEMA ${VICTIM} CASCADE`, refusal: /DuckDB cannot parse it/ },
    { name: "the engine's own parameters", expr: 'amount > $p0', refusal: /uses a query parameter/ },
  ];

  /** The attack files acme_corp holds, written once: `pipeline validate --tenant` judges them all in one call. */
  const attackFiles: string[] = [];
  let validated: JsonResult<unknown>;
  let validatedBefore: Awaited<ReturnType<typeof guarded>>;

  async function writeAttack(file: string, text: string): Promise<void> {
    await writeFile(acme(file), text);
    attackFiles.push(file);
  }

  /** The problems validate listed at `where` (file and line), one per line. */
  function problemsAt(where: RegExp): string[] {
    return reportText(validated)
      .split('\n')
      .filter((line) => where.test(line));
  }

  /**
   * `pipeline validate --tenant` (every file of acme_corp, each attack's SQL file and pipeline among
   * them) reported this attack, and `pipeline run` refuses it with exit 2; nothing guarded changes,
   * nothing leaks.
   */
  async function refusedEverywhere(id: string, refusal: RegExp, where: RegExp): Promise<void> {
    assert.equal(validated.exitCode, 2, show(validated));
    const problems = problemsAt(where);
    assert.ok(
      problems.some((line) => refusal.test(line)),
      `validate names ${where} with ${refusal}:\n${problems.join('\n') || reportText(validated)}`,
    );
    const invalid = (validated.envelope.error?.data as { report: { files: Array<{ file: string; ok: boolean }> } }).report.files.filter(
      (f) => !f.ok,
    );
    assert.ok(
      invalid.some((f) => f.file === `configs/acme_corp/pipelines/${id}.yml`),
      `the pipeline is reported too\n${show(validated)}`,
    );

    const before = await guarded();
    const runsBefore = await runsOf(ATTACKER);
    const ran = await runJson(['pipeline', 'run', id, '--tenant', ATTACKER], { cwd: root });
    assert.equal(ran.exitCode, 2, show(ran));
    assert.match(ran.envelope.error?.message ?? '', refusal, show(ran));
    assert.match(ran.envelope.error?.code ?? '', /^TENANT_SQL_(REFUSED|INVALID)$/, show(ran));
    assertNothingLeaked(ran, 'run');

    assert.equal(await runsOf(ATTACKER), runsBefore, 'refused before any run row');
    assert.deepEqual(await guarded(), before, "globex's data, keys and credentials and the metadata are unchanged");
  }

  describe(`a tenant's SQL reads only its own dataset (local warehouse, ${part})`, () => {
    before(async () => {
      for (const [index, attack] of part === 'transforms' ? sqlAttacks.entries() : []) {
        await writeAttack(`sql/attack_${index}.sql`, typeof attack.sql === 'function' ? attack.sql() : attack.sql);
        await writeAttack(`pipelines/p_sql_${index}.yml`, transformPipeline(`p_sql_${index}`, `sql/attack_${index}.sql`));
      }
      for (const [index, attack] of dqAttacks.entries())
        await writeAttack(`pipelines/p_dq_${index}.yml`, dqPipeline(`p_dq_${index}`, attack.expr));
      validatedBefore = await guarded();
      validated = await runJson(['pipeline', 'validate', '--tenant', ATTACKER], { cwd: root });
    });

    it('validate judges every attack file without running any of it, and shows nothing it guards', async () => {
      assert.equal(validated.exitCode, 2, show(validated));
      assertNothingLeaked(validated, 'validate');
      assert.deepEqual(await guarded(), validatedBefore);
      assert.equal(await runsOf(ATTACKER), 0);
    });

    for (const [index, attack] of part === 'transforms' ? sqlAttacks.entries() : []) {
      it(`refuses ${attack.name} in a transform (exit 2), running nothing`, async () => {
        const where = new RegExp(`configs/acme_corp/sql/attack_${index}\\.sql${attack.line ? `:${attack.line}` : ''}: `);
        await refusedEverywhere(`p_sql_${index}`, attack.refusal, where);
        assert.ok(!existsSync(COPY_TARGET()), 'COPY wrote nothing');
        assert.ok(!existsSync(path.join(outside, 'export')), 'EXPORT wrote nothing');
      });
    }

    for (const [index, attack] of part === 'expressions' ? dqAttacks.entries() : []) {
      it(`refuses ${attack.name} in a DQ expression (exit 2), running nothing`, async () => {
        const id = `p_dq_${index}`;
        const where = new RegExp(`configs/acme_corp/pipelines/${id}\\.yml: steps\\.0 \\(check\\): dq rule`);
        await refusedEverywhere(id, attack.refusal, where);
      });
    }

    if (part === 'transforms')
      it('runs ordinary SQL: its own tables by ref, CTEs named like other tables, literals full of SQL, trailing comments', async () => {
        for (const file of attackFiles.splice(0)) await rm(acme(file));
        const before = await guarded();
        await writeFile(
          acme('sql', 'ok_literal.sql'),
          `-- totals\nSELECT id, amount, 'x; DROP SCHEMA ${VICTIM} CASCADE; --' AS note\nFROM {{ ref('events') }}\nWHERE status <> ') ; COMMIT' -- trailing\n`,
        );
        await writeFile(
          acme('sql', 'ok_cte.sql'),
          `WITH payroll AS (SELECT id, amount AS salary FROM {{ ref('events') }}),\n  tenant_api_keys AS (SELECT * FROM payroll)\nSELECT * FROM tenant_api_keys WHERE salary > CAST({{ min_amount }} AS DOUBLE)`,
        );
        await writeFile(
          acme('pipelines', 'p_ok.yml'),
          [
            'pipeline_id: p_ok',
            'params: { min_amount: "3" }',
            'steps:',
            '  - { name: literal, type: transform, sql: sql/ok_literal.sql, destination: { table: ok_literal, write_mode: replace } }',
            '  - { name: cte, type: transform, sql: sql/ok_cte.sql, destination: { table: ok_cte, write_mode: replace } }',
            '  - name: check',
            '    type: dq',
            '    table: ok_literal',
            '    rules:',
            `      - { check: expression, expr: "note LIKE '%DROP SCHEMA%' AND amount > 0 -- fine" }`,
            '',
          ].join('\n'),
        );
        const ok = await runJson(['pipeline', 'validate', '--tenant', ATTACKER], { cwd: root });
        assert.equal(ok.exitCode, 0, show(ok));
        const ran = await runJson<{ status: string }>(['pipeline', 'run', 'p_ok', '--tenant', ATTACKER], { cwd: root });
        assert.equal(ran.exitCode, 0, show(ran));
        assert.equal(ran.envelope.result?.status, 'COMPLETE');
        assertNothingLeaked(ran, 'run');
        const [literal, cte] = await withWarehouse(root, async (w) => [
          await w.select(ATTACKER, 'ok_literal', { orderBy: [['id', 'asc']] }),
          await w.select(ATTACKER, 'ok_cte'),
        ]);
        assert.deepEqual(literal, [
          { id: 1, amount: 2.5, note: `x; DROP SCHEMA ${VICTIM} CASCADE; --` },
          { id: 2, amount: 4, note: `x; DROP SCHEMA ${VICTIM} CASCADE; --` },
        ]);
        assert.deepEqual(cte, [{ id: 2, salary: 4 }], "the CTE named payroll is acme's own rows");
        const after = await guarded();
        assert.deepEqual({ ...after, attackerTables: undefined }, { ...before, attackerTables: undefined });
      });
  });
}
