/**
 * The expression check through DuckDB's parser (no warehouse file is opened: parsing happens on a
 * private in-memory database), and rule naming.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDbWarehouse } from '../../../src/backends/warehouse/duckdb/index.ts';
import { checkExpression, expressionOrigin } from '../../../src/engine/dq/expression.ts';
import { bigqueryDialect } from '../../../src/backends/warehouse/bigquery/dialect.ts';
import { duckdbDialect } from '../../../src/backends/warehouse/duckdb/dialect.ts';
import { maskLiterals } from '../../../src/backends/warehouse/expression-columns.ts';
import { nameRules, parseRules } from '../../../src/engine/dq/rules.ts';
import { ConvergenceError, ExitCode } from '../../../src/lib/errors.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

const wh = new DuckDbWarehouse({ file: path.join(await makeTempDir('dq-expr'), 'never-opened.duckdb') });
after(() => wh.close());
const TABLE = { dataset: 'acme_corp', table: 'usage' };
const check = (expr: string) => checkExpression(wh, 'my_rule', expr, TABLE);

const refused = async (expr: string, reason: RegExp) => {
  await assert.rejects(
    check(expr),
    (err: unknown) => {
      assert.ok(err instanceof ConvergenceError);
      assert.equal(err.exitCode, ExitCode.usage);
      assert.match(err.code, /^TENANT_SQL_/);
      assert.ok(err.message.startsWith(`${expressionOrigin('my_rule', expr)}: `), err.message);
      assert.match(err.message, reason);
      assert.equal(err.data?.['rule'], 'my_rule');
      return true;
    },
    expr,
  );
};

describe('checkExpression (DuckDB)', () => {
  it("accepts ordinary row conditions and returns DuckDB's restatement of them", async () => {
    for (const expr of [
      'input_tokens >= 0',
      "status != 'DELETE'",
      "status NOT IN ('drop', 'select from')",
      'cost_usd BETWEEN 0 AND 100 OR cost_usd IS NULL',
      "coalesce(lower(email), '') LIKE '%@%'",
      "CASE WHEN kind = 'a' THEN x > 0 ELSE TRUE END",
      "replace(model, '-', '_') <> 'x'",
      'abs(a - b) < 0.01',
      'updated_at >= created_at',
      "note = 'it''s fine'",
      'selection_count > 0 AND from_date <= to_date',
      "status = 'a; DROP TABLE x -- (SELECT 1)'",
    ]) {
      const restated = await check(`  ${expr}\n`);
      // The restatement is one parenthesised-safe expression that parses back to the same tree.
      assert.equal(await check(restated), restated, expr);
    }
    assert.equal(await check('input_tokens >= 0'), '(input_tokens >= 0)');
    assert.equal(await check("note = 'it''s fine'"), "(note = 'it''s fine')");
  });

  it('drops comments: the restatement has none, so nothing can hide after the expression', async () => {
    assert.equal(await check('input_tokens > 0 -- c'), '(input_tokens > 0)');
    assert.equal(await check('input_tokens > 0 /* ) OR (1=1 */'), '(input_tokens > 0)');
  });

  it('refuses statements, text that escapes its parentheses, and syntax errors', async () => {
    await refused('1=1; DROP TABLE x', /DuckDB cannot parse it/);
    await refused('x > 0) AS y, (z', /not one expression/);
    await refused('x > 0) AS ok --', /not one expression|DuckDB cannot parse it/);
    await refused(`x > 0) FROM "acme_corp"."usage" WHERE (1=1`, /DuckDB cannot parse it|not one expression/);
    await refused('(x > 0', /DuckDB cannot parse it/);
    await refused('   ', /is empty/);
    await refused(`x IN (${Array.from({ length: 2000 }, (_, i) => i).join(',')})`, /longer than/);
  });

  it('refuses subqueries, whatever they read', async () => {
    await refused('(SELECT 1) = 1', /subquery/);
    await refused('x IN (select id from acme_corp.other)', /subquery/);
    await refused('EXISTS (FROM globex_inc.payroll)', /subquery/);
    await refused("input_tokens IN (SELECT 1 FROM read_csv('/etc/passwd'))", /subquery/);
  });

  it('refuses functions that read settings, the environment, files or the catalog, however they are spelled', async () => {
    await refused("length(current_setting('home_directory')) > 0", /current_setting\(\)/);
    await refused('"current_setting"(\'temp_directory\') IS NOT NULL', /current_setting\(\)/);
    await refused("pg_catalog.current_setting('x') = ''", /pg_catalog\.current_setting/);
    await refused("getenv('HOME') = ''", /getenv\(\)/);
    await refused("read_text('.convergence/keyring.key') IS NULL", /read_text\(\)/);
    await refused("version() = 'x'", /version\(\)/);
    await refused("nextval('globex_inc.seq') > 0", /nextval\(\)/);
  });

  it("refuses parameters: the engine's bound values are not the tenant's", async () => {
    await refused('x > $1', /parameter/);
    await refused('x > $p0', /parameter/);
    await refused('x > ?', /parameter/);
  });
});

describe('expression reporting', () => {
  it('masks only single-quoted literals', () => {
    assert.equal(maskLiterals("a = 'SELECT' AND \"b\" = 'x'"), "a = '' AND \"b\" = ''");
    assert.equal(maskLiterals("a = 'it''s'"), "a = ''''");
    assert.equal(maskLiterals("a = 'x\\'"), "a = 'x\\'");
  });

  it('finds the table columns an expression mentions, ignoring functions and literals', () => {
    const fields = [
      { name: 'input_tokens', type: 'INT64' as const },
      { name: 'Status', type: 'STRING' as const },
      { name: 'abs', type: 'INT64' as const },
      { name: 'quoted col', type: 'INT64' as const },
    ];
    assert.deepEqual(duckdbDialect.referencedColumns("abs(INPUT_TOKENS) > 0 AND status != 'input_tokens'", fields), [
      'input_tokens',
      'Status',
    ]);
    assert.deepEqual(duckdbDialect.referencedColumns('"quoted col" > 0 AND `abs` > 1', fields), ['quoted col']);
    assert.deepEqual(bigqueryDialect.referencedColumns('"quoted col" > 0 AND `abs` > 1', fields), ['abs']);
  });
});

describe('rule names', () => {
  it('defaults to check and columns, and suffixes repeats', () => {
    const rules = parseRules([
      { check: 'not_null', columns: ['date', 'model'] },
      { check: 'range', column: 'cost', min: 0 },
      { check: 'range', column: 'cost', max: 9 },
      { check: 'range', column: 'cost', min: 1, name: 'range_cost_2' },
      { check: 'row_count', min: 1 },
      { check: 'expression', expr: 'a > 0' },
      { check: 'expression', expr: 'b > 0' },
    ]);
    assert.deepEqual(nameRules(rules), [
      'not_null_date_model',
      'range_cost',
      'range_cost_3',
      'range_cost_2',
      'row_count',
      'expression',
      'expression_2',
    ]);
  });

  it('applies the schema defaults (severity error) to raw rules', () => {
    const [rule] = parseRules([{ check: 'row_count', min: 1 }]);
    assert.equal(rule!.severity, 'error');
  });
});
