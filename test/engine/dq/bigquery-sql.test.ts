/**
 * The BigQuery dialect, checked on the SQL text sent through a stand-in warehouse: no BigQuery is
 * needed to see that identifiers are backquoted, that COUNTIF/REGEXP_CONTAINS are used, and that
 * every literal travels as an @parameter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bigqueryDialect } from '../../../src/backends/warehouse/bigquery/dialect.ts';
import type { FieldSpec, Row, Scalar } from '../../../src/backends/warehouse/port.ts';
import { runDataQuality, type DqRuleInput, type DqWarehouse } from '../../../src/engine/dq/index.ts';
import { NOW } from './helpers.ts';

const FIELDS: FieldSpec[] = [
  { name: 'date', type: 'DATE' },
  { name: 'model', type: 'STRING' },
  { name: 'provider', type: 'STRING' },
  { name: 'cost_usd', type: 'NUMERIC' },
  { name: 'user_email', type: 'STRING' },
  { name: 'input_tokens', type: 'INT64' },
  { name: 'loaded_at', type: 'TIMESTAMP' },
];

const RULES: DqRuleInput[] = [
  { check: 'not_null', columns: ['date', 'model'] },
  { check: 'unique', columns: ['date', 'model'] },
  { check: 'range', column: 'cost_usd', min: 0, max: 1000 },
  { check: 'accepted_values', column: 'provider', values: ['anthropic', 'openai', 'cursor'] },
  { check: 'regex', column: 'user_email', pattern: "^[^@']+@[^@]+$" },
  { check: 'row_count', min: 1 },
  { check: 'freshness', column: 'date', max_age: '2d' },
  { check: 'freshness', column: 'loaded_at', max_age: '1d' },
  { check: 'expression', expr: 'input_tokens >= 0' },
];

interface Call {
  sql: string;
  params: Record<string, Scalar>;
}

/** Records every statement; `gated` holds those sent through the tenant SQL gate (queryTenant). */
function fakeBigQuery(responses: Row[][]): { warehouse: DqWarehouse; calls: Call[]; gated: string[] } {
  const calls: Call[] = [];
  const gated: string[] = [];
  const answer = (sql: string, params: Record<string, Scalar>) => {
    calls.push({ sql, params });
    const rows = responses.shift();
    assert.ok(rows, `unexpected query: ${sql}`);
    return rows;
  };
  return {
    calls,
    gated,
    warehouse: {
      dialect: bigqueryDialect,
      qualify: (dataset, table) => `\`proj-1.${dataset}.${table}\``,
      getTableFields: async () => FIELDS,
      checkTenantExpression: async (expr) => expr.trim(),
      query: async (sql, params = {}) => answer(sql, params),
      queryTenant: async (sql, scope) => {
        assert.equal(scope.dataset, 'acme_corp');
        gated.push(sql);
        return answer(sql, scope.params ?? {});
      },
    },
  };
}

const placeholders = (sql: string) => [...new Set([...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!))].sort();

describe('BigQuery SQL generation', () => {
  it('writes one aggregate with backquoted columns, COUNTIF, REGEXP_CONTAINS and bound values', async () => {
    // BigQuery's client returns INT64 as text; the engine counts it as a number.
    const aggregate: Row = {
      total_rows: '10',
      m0: 0,
      m0_null_0: 0,
      m0_null_1: 0,
      m1: 0,
      m1_keys: 0,
      m2: 0,
      m3: 0,
      m4: '2',
      m6_max: '2025-01-09',
      m6_stale: 0,
      m7_max: new Date('2025-01-09T07:00:00Z'),
      m7_stale: 0,
      m8: 0,
      m8_nulls: 0,
    };
    const { warehouse, calls, gated } = fakeBigQuery([[aggregate], [{ dq_value: 'bad' }, { dq_value: 'worse' }]]);
    const outcome = await runDataQuality(warehouse, { dataset: 'acme_corp', table: 'usage', rules: RULES, now: NOW });

    assert.equal(calls.length, 2);
    const { sql, params } = calls[0]!;
    // The aggregate holds the tenant's expression, so it goes through the gate; the regex sample does not.
    assert.deepEqual(gated, [sql]);
    assert.ok(sql.includes('FROM `proj-1.acme_corp.usage`'), sql);
    assert.ok(sql.includes('COUNTIF(`date` IS NULL OR `model` IS NULL)'), sql);
    assert.ok(sql.includes('GROUP BY `date`, `model` HAVING count(*) > 1'), sql);
    assert.match(sql, /COUNTIF\(`cost_usd` < @p\d+ OR `cost_usd` > @p\d+\)/);
    assert.match(sql, /COUNTIF\(`provider` NOT IN \(@p\d+, @p\d+, @p\d+\)\)/);
    assert.match(sql, /COUNTIF\(NOT REGEXP_CONTAINS\(`user_email`, @p\d+\)\)/);
    assert.match(sql, /max\(`date`\) < CAST\(@p\d+ AS DATE\)/);
    assert.match(sql, /max\(`loaded_at`\) < CAST\(@p\d+ AS TIMESTAMP\)/);
    assert.ok(sql.includes('COUNTIF(NOT (input_tokens >= 0))'), sql);
    assert.ok(!/count_if|regexp_matches|"|'/i.test(sql), `DuckDB syntax or a spliced literal in: ${sql}`);
    assert.deepEqual(placeholders(sql), Object.keys(params).sort());
    assert.deepEqual(
      Object.values(params).map((v) => (v instanceof Date ? v.toISOString() : v)),
      [0, 1000, 'anthropic', 'openai', 'cursor', "^[^@']+@[^@]+$", '2025-01-08', '2025-01-09T06:00:00.000Z'],
    );

    assert.deepEqual(calls[1], {
      sql: 'SELECT DISTINCT `user_email` AS dq_value FROM `proj-1.acme_corp.usage` WHERE NOT REGEXP_CONTAINS(`user_email`, @p0) ORDER BY dq_value LIMIT @p1',
      params: { p0: "^[^@']+@[^@]+$", p1: 5 },
    });

    assert.equal(outcome.totalRows, 10);
    assert.deepEqual(
      outcome.results.filter((r) => !r.passed).map((r) => [r.ruleName, r.failingCount, r.totalCount, r.sampleValues]),
      [['regex_user_email', 2, 10, ['bad', 'worse']]],
    );
    assert.deepEqual(outcome.results.find((r) => r.ruleName === 'freshness_loaded_at')!.details, {
      max_value: '2025-01-09T07:00:00.000Z',
      threshold: '2025-01-09T06:00:00.000Z',
      max_age: '1d',
    });
  });

  it('samples duplicated keys and failing expressions in BigQuery syntax', async () => {
    const { warehouse, calls, gated } = fakeBigQuery([
      [{ total_rows: 4, m0: 2, m0_keys: 1, m1: 1, m1_nulls: 0 }],
      [{ date: '2025-01-01', model: 'a', dq_count: 2 }],
      [{ input_tokens: -3 }],
    ]);
    const outcome = await runDataQuality(warehouse, {
      dataset: 'acme_corp',
      table: 'usage',
      now: NOW,
      sampleSize: 3,
      rules: [
        { check: 'unique', columns: ['date', 'model'] },
        { check: 'expression', expr: 'input_tokens >= 0' },
      ],
    });
    assert.equal(
      calls[0]!.sql,
      'WITH u0 AS (SELECT count(*) AS m0_keys, coalesce(sum(dq_n), 0) AS m0 FROM (SELECT count(*) AS dq_n FROM `proj-1.acme_corp.usage` ' +
        'WHERE `date` IS NOT NULL AND `model` IS NOT NULL GROUP BY `date`, `model` HAVING count(*) > 1) AS g0) ' +
        'SELECT agg.*, u0.* FROM (SELECT count(*) AS total_rows, COUNTIF(NOT (input_tokens >= 0)) AS m1, ' +
        'COUNTIF((input_tokens >= 0) IS NULL) AS m1_nulls FROM `proj-1.acme_corp.usage`) AS agg CROSS JOIN u0',
    );
    assert.deepEqual(calls[1], {
      sql:
        'SELECT `date`, `model`, count(*) AS dq_count FROM `proj-1.acme_corp.usage` WHERE `date` IS NOT NULL AND `model` IS NOT NULL ' +
        'GROUP BY `date`, `model` HAVING count(*) > 1 ORDER BY dq_count DESC, `date`, `model` LIMIT @p0',
      params: { p0: 3 },
    });
    assert.deepEqual(calls[2], {
      sql: 'SELECT DISTINCT `input_tokens` FROM `proj-1.acme_corp.usage` WHERE NOT (input_tokens >= 0) ORDER BY `input_tokens` LIMIT @p0',
      params: { p0: 3 },
    });
    assert.deepEqual(
      outcome.failedErrors.map((r) => r.sampleValues),
      [[{ key: { date: '2025-01-01', model: 'a' }, count: 2 }], [{ input_tokens: -3 }]],
    );
    assert.deepEqual(gated, [calls[0]!.sql, calls[2]!.sql]);
  });
});
