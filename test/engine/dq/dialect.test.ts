/**
 * The engine writes its SQL only through the warehouse's own dialect: a warehouse with a dialect
 * the engine has never heard of gets statements in that dialect, and the expression's columns are
 * read as that dialect quotes them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SqlDialect } from '../../../src/backends/warehouse/dialect.ts';
import { mentionedColumns } from '../../../src/backends/warehouse/expression-columns.ts';
import { Params } from '../../../src/backends/warehouse/params.ts';
import type { FieldSpec, Row, Scalar } from '../../../src/backends/warehouse/port.ts';
import { runDataQuality, type DqWarehouse } from '../../../src/engine/dq/index.ts';
import { NOW } from './helpers.ts';

/** A made-up warehouse SQL: names in brackets, its own function names. */
const bracketed: SqlDialect = {
  name: 'bracketed',
  column: (name) => `[${name}]`,
  countIf: (condition) => `COUNT_WHERE(${condition})`,
  regexContains: (value, pattern) => `MATCHES(${value}, ${pattern})`,
  percentileOver: (value, fraction, partitionBy) => `PCT(${value}, ${fraction}) OVER (PARTITION BY ${partitionBy})`,
  date: (param) => `TO_DATE(${param})`,
  timestamp: (param) => `TO_TS(${param})`,
  params: () => new Params(),
  referencedColumns: (expr, fields) => mentionedColumns(expr, fields, '"'),
};

const FIELDS: FieldSpec[] = [
  { name: 'day', type: 'DATE' },
  { name: 'email', type: 'STRING' },
  { name: 'tokens', type: 'INT64' },
];

function fakeWarehouse(responses: Row[][]): { warehouse: DqWarehouse; calls: Array<{ sql: string; params: Record<string, Scalar> }> } {
  const calls: Array<{ sql: string; params: Record<string, Scalar> }> = [];
  const answer = (sql: string, params: Record<string, Scalar>) => {
    calls.push({ sql, params });
    const rows = responses.shift();
    assert.ok(rows, `unexpected query: ${sql}`);
    return rows;
  };
  return {
    calls,
    warehouse: {
      dialect: bracketed,
      qualify: (dataset, table) => `[${dataset}].[${table}]`,
      getTableFields: async () => FIELDS,
      checkTenantExpression: async (expr) => expr.trim(),
      query: async (sql, params = {}) => answer(sql, params),
      queryTenant: async (sql, scope) => answer(sql, scope.params ?? {}),
    },
  };
}

describe('SQL through the warehouse dialect', () => {
  it('writes the aggregate and the samples in the dialect the warehouse provides', async () => {
    const { warehouse, calls } = fakeWarehouse([
      [{ total_rows: 3, m0: 0, m1: 1, m2_max: '2025-01-09', m2_stale: 0, m3: 1, m3_nulls: 0 }],
      [{ dq_value: 'nobody' }],
      [{ tokens: -1 }],
    ]);
    const outcome = await runDataQuality(warehouse, {
      dataset: 'acme_corp',
      table: 'usage',
      now: NOW,
      rules: [
        { check: 'not_null', columns: ['day'] },
        { check: 'regex', column: 'email', pattern: '@' },
        { check: 'freshness', column: 'day', max_age: '2d' },
        { check: 'expression', expr: '"tokens" >= 0' },
      ],
    });
    assert.equal(
      calls[0]!.sql,
      'SELECT count(*) AS total_rows, COUNT_WHERE([day] IS NULL) AS m0, COUNT_WHERE(NOT MATCHES([email], @p0)) AS m1, ' +
        'max([day]) AS m2_max, CASE WHEN max([day]) < TO_DATE(@p1) THEN 1 ELSE 0 END AS m2_stale, ' +
        'COUNT_WHERE(NOT ("tokens" >= 0)) AS m3, COUNT_WHERE(("tokens" >= 0) IS NULL) AS m3_nulls FROM [acme_corp].[usage]',
    );
    assert.deepEqual(calls[0]!.params, { p0: '@', p1: '2025-01-08' });
    assert.equal(
      calls[1]!.sql,
      'SELECT DISTINCT [email] AS dq_value FROM [acme_corp].[usage] WHERE NOT MATCHES([email], @p0) ORDER BY dq_value LIMIT @p1',
    );
    assert.equal(calls[2]!.sql, 'SELECT DISTINCT [tokens] FROM [acme_corp].[usage] WHERE NOT ("tokens" >= 0) ORDER BY [tokens] LIMIT @p0');
    assert.deepEqual(outcome.results.find((r) => r.check === 'expression')!.columns, ['tokens']);
  });
});
