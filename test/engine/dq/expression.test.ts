/**
 * The expression guard and rule naming, without a warehouse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guardExpression, maskLiterals, referencedColumns } from '../../../src/engine/dq/expression.ts';
import { nameRules, parseRules } from '../../../src/engine/dq/rules.ts';
import { ConvergenceError, ExitCode } from '../../../src/lib/errors.ts';

const refused = (expr: string, reason: RegExp) => {
  assert.throws(
    () => guardExpression('my_rule', expr),
    (err: unknown) => {
      assert.ok(err instanceof ConvergenceError);
      assert.equal(err.exitCode, ExitCode.usage);
      assert.match(err.message, /^dq rule "my_rule": expression /);
      assert.match(err.message, reason);
      return true;
    },
    expr,
  );
};

describe('guardExpression', () => {
  it('accepts ordinary row conditions and returns them trimmed', () => {
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
    ]) {
      assert.equal(guardExpression('ok', `  ${expr}\n`), expr);
    }
  });

  it('refuses statement separators and comments, even inside literals', () => {
    refused('1=1; DROP TABLE x', /";"/);
    refused('x > 0 -- c', /comment/);
    refused('x > 0 /* c */', /comment/);
    refused('x > 0 # c', /"#"/);
    refused("x = ';'", /";"/);
  });

  it('refuses subqueries, DDL, DML and engine commands', () => {
    refused('(SELECT 1)', /SELECT/);
    refused('x IN (select id from other)', /SELECT/);
    refused('EXISTS (FROM other)', /FROM/);
    for (const word of [
      'insert',
      'DELETE',
      'Drop',
      'ATTACH',
      'COPY',
      'PRAGMA',
      'INSTALL',
      'LOAD',
      'CALL',
      'EXPORT',
      'IMPORT',
      'UNION',
      'SET',
    ]) {
      refused(`x > 0 OR ${word} y`, new RegExp(word.toUpperCase()));
    }
  });

  it('refuses functions that read outside the row, our parameters and unbalanced parentheses', () => {
    refused("read_csv('/etc/passwd') IS NOT NULL", /read_csv\(\)/);
    refused("getenv('HOME') = ''", /getenv\(\)/);
    refused("length(current_setting('home_directory')) > 0", /current_setting\(\)/);
    refused('x > @p0', /"@"/);
    refused('x > $1', /"\$"/);
    refused('x > 0) OR (1 = 1', /parenthesis/);
    refused('(x > 0', /parenthesis/);
    refused('   ', /empty/);
    refused(`x IN (${Array.from({ length: 2000 }, (_, i) => i).join(',')})`, /longer than/);
  });

  it('checks keywords inside literals when literals cannot be located reliably', () => {
    // In BigQuery \' does not end a literal; in DuckDB it does. Either way SELECT must be seen.
    refused("x = 'a\\' = (SELECT 1) OR x = ''", /SELECT/);
    // BigQuery triple-quoted strings pair quotes differently from single ones.
    refused("'''a'b''' = (SELECT 1) OR c = '''d'e'''", /SELECT/);
    refused("x = 'select", /SELECT/);
    // Quoted identifiers are never skipped: their content is checked too.
    refused("\"a'\" = (SELECT 1) OR x = ''", /SELECT/);
    refused('`select` > 0', /SELECT/);
  });

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
    assert.deepEqual(referencedColumns("abs(INPUT_TOKENS) > 0 AND status != 'input_tokens'", fields, 'duckdb'), ['input_tokens', 'Status']);
    assert.deepEqual(referencedColumns('"quoted col" > 0 AND `abs` > 1', fields, 'duckdb'), ['quoted col']);
    assert.deepEqual(referencedColumns('"quoted col" > 0 AND `abs` > 1', fields, 'bigquery'), ['abs']);
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
