/**
 * The dq engine against a real DuckDB file: every check passing and failing with exact counts and
 * samples, null handling, severities, the single aggregate statement, and the errors a tenant sees.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DuckDbWarehouse } from '../../../src/backends/warehouse/duckdb/index.ts';
import type { FieldSpec } from '../../../src/backends/warehouse/port.ts';
import { runDataQuality, type DqRuleInput, type RuleResult } from '../../../src/engine/dq/index.ts';
import { ExitCode } from '../../../src/lib/errors.ts';
import { rejectsWith } from '../../helpers/assertions.ts';
import { cleanupAll } from '../../helpers/tmp.ts';
import { DATASET, freshWarehouse, makeTable, NOW, recording } from './helpers.ts';

let wh: DuckDbWarehouse;
before(async () => {
  wh = await freshWarehouse('run');
});
after(cleanupAll);

const USAGE_FIELDS: FieldSpec[] = [
  { name: 'date', type: 'DATE' },
  { name: 'model', type: 'STRING' },
  { name: 'provider', type: 'STRING' },
  { name: 'cost_usd', type: 'FLOAT64' },
  { name: 'user_email', type: 'STRING' },
  { name: 'input_tokens', type: 'INT64' },
  { name: 'loaded_at', type: 'TIMESTAMP' },
];

/** The DESIGN example rules, all of which hold on CLEAN_ROWS. */
const DESIGN_RULES: DqRuleInput[] = [
  { check: 'not_null', columns: ['date', 'model'] },
  { check: 'unique', columns: ['date', 'model'] },
  { check: 'range', column: 'cost_usd', min: 0, severity: 'warn' },
  { check: 'accepted_values', column: 'provider', values: ['anthropic', 'openai', 'cursor'] },
  { check: 'regex', column: 'user_email', pattern: '^[^@]+@[^@]+$' },
  { check: 'row_count', min: 1 },
  { check: 'freshness', column: 'date', max_age: '2d' },
  { check: 'expression', expr: 'input_tokens >= 0' },
];

const CLEAN_ROWS = [
  {
    date: '2025-01-09',
    model: 'claude',
    provider: 'anthropic',
    cost_usd: 1.5,
    user_email: 'a@x.com',
    input_tokens: 100,
    loaded_at: new Date('2025-01-09T10:00:00Z'),
  },
  {
    date: '2025-01-09',
    model: 'gpt',
    provider: 'openai',
    cost_usd: 0,
    user_email: "o'brien@x.com",
    input_tokens: 0,
    loaded_at: new Date('2025-01-09T10:00:00Z'),
  },
  { date: '2025-01-08', model: 'claude', provider: 'cursor', cost_usd: 2, user_email: null, input_tokens: null, loaded_at: null },
];

const run = (table: string, rules: DqRuleInput[], sampleSize?: number) =>
  runDataQuality(wh, { dataset: DATASET, table, rules, now: NOW, ...(sampleSize === undefined ? {} : { sampleSize }) });

const byName = (results: RuleResult[], name: string): RuleResult => {
  const found = results.find((r) => r.ruleName === name);
  assert.ok(found, `no result named ${name} among ${results.map((r) => r.ruleName).join(', ')}`);
  return found;
};

describe('runDataQuality on DuckDB', () => {
  before(async () => {
    await makeTable(wh, 'usage_clean', USAGE_FIELDS, CLEAN_ROWS);
  });

  it('passes every check of the DESIGN example on clean data, with default names', async () => {
    const outcome = await run('usage_clean', DESIGN_RULES);
    assert.equal(outcome.totalRows, 3);
    assert.deepEqual(
      outcome.results.map((r) => [r.ruleName, r.check, r.passed, r.failingCount, r.totalCount]),
      [
        ['not_null_date_model', 'not_null', true, 0, 3],
        ['unique_date_model', 'unique', true, 0, 3],
        ['range_cost_usd', 'range', true, 0, 3],
        ['accepted_values_provider', 'accepted_values', true, 0, 3],
        ['regex_user_email', 'regex', true, 0, 3],
        ['row_count', 'row_count', true, 0, 3],
        ['freshness_date', 'freshness', true, 0, 3],
        ['expression', 'expression', true, 0, 3],
      ],
    );
    assert.ok(outcome.results.every((r) => r.sampleValues.length === 0));
    assert.deepEqual(outcome.failedErrors, []);
    assert.deepEqual(outcome.failedWarnings, []);
    assert.equal(byName(outcome.results, 'range_cost_usd').severity, 'warn');
    assert.equal(byName(outcome.results, 'not_null_date_model').severity, 'error');
    assert.deepEqual(byName(outcome.results, 'expression').columns, ['input_tokens']);
    assert.deepEqual(byName(outcome.results, 'expression').details, { expr: 'input_tokens >= 0', null_results: 1 });
    assert.deepEqual(byName(outcome.results, 'freshness_date').details, {
      max_value: '2025-01-09',
      threshold: '2025-01-08',
      max_age: '2d',
    });
  });

  it('computes all metrics in one statement, then one sample query per failed rule that has values', async () => {
    await makeTable(
      wh,
      'usage_mixed',
      [
        { name: 'id', type: 'INT64' },
        { name: 'cost_usd', type: 'FLOAT64' },
        { name: 'provider', type: 'STRING' },
      ],
      [
        { id: 1, cost_usd: -1, provider: 'anthropic' },
        { id: 1, cost_usd: 2, provider: 'nope' },
        { id: 2, cost_usd: 3, provider: 'openai' },
      ],
    );
    const { warehouse, statements } = recording(wh);
    const outcome = await runDataQuality(warehouse, {
      dataset: DATASET,
      table: 'usage_mixed',
      now: NOW,
      rules: [
        { check: 'unique', columns: ['id'] }, // fails: sample
        { check: 'range', column: 'cost_usd', min: 0 }, // fails: sample
        { check: 'accepted_values', column: 'provider', values: ['anthropic', 'openai'] }, // fails: sample
        { check: 'not_null', columns: ['id'] }, // passes
        { check: 'row_count', max: 2 }, // fails, no values to sample
        { check: 'expression', expr: 'id > 0' }, // passes
      ],
    });
    assert.deepEqual(
      outcome.results.map((r) => r.passed),
      [false, false, false, true, false, true],
    );
    assert.equal(statements.length, 1 + 3, statements.join('\n---\n'));
    const [aggregate] = statements;
    // The expression enters as DuckDB's restatement of it: "(id > 0)".
    for (const piece of ['count(*) AS total_rows', 'count_if("cost_usd" < @p', 'NOT ((id > 0))', 'GROUP BY "id" HAVING count(*) > 1']) {
      assert.ok(aggregate!.includes(piece), `aggregate lacks ${piece}: ${aggregate}`);
    }
    assert.ok(!aggregate!.includes(';'));
    assert.equal(aggregate!.match(/\bWITH\b/g)?.length, 1, 'unique joins the aggregate as a CTE of the same statement');
  });

  it('counts not_null failures per row and per column', async () => {
    await makeTable(
      wh,
      'nulls',
      [
        { name: 'date', type: 'DATE' },
        { name: 'model', type: 'STRING' },
      ],
      [
        { date: '2025-01-01', model: 'a' },
        { date: null, model: 'a' },
        { date: '2025-01-01', model: null },
        { date: null, model: null },
      ],
    );
    const outcome = await run('nulls', [
      { check: 'not_null', columns: ['date', 'model'] },
      { check: 'not_null', columns: ['model'] },
    ]);
    const both = byName(outcome.results, 'not_null_date_model');
    assert.equal(both.passed, false);
    assert.equal(both.failingCount, 3);
    assert.equal(both.totalCount, 4);
    assert.deepEqual(both.details, { null_counts: { date: 2, model: 2 } });
    assert.deepEqual(both.sampleValues, []);
    const one = byName(outcome.results, 'not_null_model');
    assert.equal(one.failingCount, 2);
    assert.deepEqual(one.details, {});
  });

  it('finds duplicates over two columns, ignoring keys with a null, and samples the keys with their counts', async () => {
    await makeTable(
      wh,
      'dupes',
      [
        { name: 'date', type: 'DATE' },
        { name: 'model', type: 'STRING' },
      ],
      [
        { date: '2025-01-01', model: 'a' },
        { date: '2025-01-01', model: 'a' },
        { date: '2025-01-01', model: 'a' },
        { date: '2025-01-01', model: 'b' },
        { date: '2025-01-02', model: 'a' },
        { date: '2025-01-02', model: 'a' },
        { date: '2025-01-03', model: 'a' },
        { date: null, model: 'a' },
        { date: null, model: 'a' },
        { date: '2025-01-03', model: null },
        { date: '2025-01-03', model: null },
      ],
    );
    const outcome = await run('dupes', [
      { check: 'unique', columns: ['date', 'model'] },
      { check: 'unique', columns: ['model'], name: 'model_unique' },
    ]);
    const pair = byName(outcome.results, 'unique_date_model');
    assert.equal(pair.passed, false);
    assert.equal(pair.failingCount, 5);
    assert.deepEqual(pair.details, { duplicate_keys: 2 });
    assert.deepEqual(pair.sampleValues, [
      { key: { date: '2025-01-01', model: 'a' }, count: 3 },
      { key: { date: '2025-01-02', model: 'a' }, count: 2 },
    ]);
    const single = byName(outcome.results, 'model_unique');
    // Rows without a date still count here; rows without a model do not.
    assert.equal(single.failingCount, 8);
    assert.deepEqual(single.details, { duplicate_keys: 1 });
    assert.deepEqual(single.sampleValues, [{ key: { model: 'a' }, count: 8 }]);
  });

  it('checks ranges with min, max or both, skipping nulls, and samples distinct offending values', async () => {
    await makeTable(
      wh,
      'ranges',
      [{ name: 'cost_usd', type: 'FLOAT64' }],
      [-1, 0, 5, 10, 10.5, null, -1, 11].map((cost_usd) => ({ cost_usd })),
    );
    const outcome = await run('ranges', [
      { check: 'range', column: 'cost_usd', min: 0, max: 10 },
      { check: 'range', column: 'cost_usd', min: 0 },
      { check: 'range', column: 'cost_usd', max: 10.5 },
      { check: 'range', column: 'cost_usd', min: -1, max: 11 },
    ]);
    assert.deepEqual(
      outcome.results.map((r) => [r.ruleName, r.failingCount, r.sampleValues, r.details]),
      [
        ['range_cost_usd', 4, [-1, 10.5, 11], { min: 0, max: 10 }],
        ['range_cost_usd_2', 2, [-1], { min: 0, max: null }],
        ['range_cost_usd_3', 1, [11], { min: null, max: 10.5 }],
        ['range_cost_usd_4', 0, [], { min: -1, max: 11 }],
      ],
    );
  });

  it('checks accepted values of strings, numbers, booleans and dates, skipping nulls', async () => {
    await makeTable(
      wh,
      'accepted',
      [
        { name: 'provider', type: 'STRING' },
        { name: 'tier', type: 'INT64' },
        { name: 'active', type: 'BOOL' },
        { name: 'day', type: 'DATE' },
      ],
      [
        { provider: 'anthropic', tier: 1, active: true, day: '2025-01-01' },
        { provider: 'mistral', tier: 2, active: false, day: '2025-01-02' },
        { provider: 'mistral', tier: 3, active: null, day: null },
        { provider: "o'reilly", tier: null, active: true, day: '2025-01-03' },
        { provider: null, tier: 1, active: true, day: '2025-01-01' },
      ],
    );
    const outcome = await run('accepted', [
      { check: 'accepted_values', column: 'provider', values: ['anthropic', 'openai', 'cursor'] },
      { check: 'accepted_values', column: 'tier', values: ['1', 2] },
      { check: 'accepted_values', column: 'active', values: [true] },
      { check: 'accepted_values', column: 'day', values: ['2025-01-01', '2025-01-03'] },
      { check: 'accepted_values', column: 'provider', values: ['anthropic', 'mistral', "o'reilly"], name: 'quoted_ok' },
    ]);
    assert.deepEqual(
      outcome.results.map((r) => [r.ruleName, r.failingCount, r.sampleValues]),
      [
        ['accepted_values_provider', 3, ['mistral', "o'reilly"]],
        ['accepted_values_tier', 1, [3]],
        ['accepted_values_active', 1, [false]],
        ['accepted_values_day', 1, ['2025-01-02']],
        ['quoted_ok', 0, []],
      ],
    );
    assert.deepEqual(byName(outcome.results, 'accepted_values_tier').details, { values: [1, 2] });
  });

  it('matches regexes anywhere in the value, binds patterns holding a quote, and skips nulls', async () => {
    await makeTable(
      wh,
      'emails',
      [{ name: 'user_email', type: 'STRING' }],
      ['a@x.com', "o'brien@x.com", 'bad', null, 'a@@b', 'bad'].map((user_email) => ({ user_email })),
    );
    const outcome = await run('emails', [
      { check: 'regex', column: 'user_email', pattern: '^[^@]+@[^@]+$' },
      { check: 'regex', column: 'user_email', pattern: "^o'", name: 'starts_with_o_quote' },
      { check: 'regex', column: 'user_email', pattern: '@' },
    ]);
    assert.deepEqual(
      outcome.results.map((r) => [r.ruleName, r.failingCount, r.sampleValues]),
      [
        ['regex_user_email', 3, ['a@@b', 'bad']],
        ['starts_with_o_quote', 4, ['a@@b', 'a@x.com', 'bad']],
        ['regex_user_email_2', 2, ['bad']],
      ],
    );
  });

  it('fails an expression only where it is false, reports null results, and samples the referenced columns', async () => {
    await makeTable(
      wh,
      'tokens',
      [
        { name: 'input_tokens', type: 'INT64' },
        { name: 'output_tokens', type: 'INT64' },
        { name: 'status', type: 'STRING' },
      ],
      [
        { input_tokens: 100, output_tokens: 5, status: 'ok' },
        { input_tokens: -5, output_tokens: 1, status: 'ok' },
        { input_tokens: null, output_tokens: 1, status: 'DELETE' },
        { input_tokens: 0, output_tokens: 0, status: 'ok' },
        { input_tokens: -1, output_tokens: 2, status: 'ok' },
        { input_tokens: -1, output_tokens: 2, status: 'ok' },
      ],
    );
    const outcome = await run('tokens', [
      { check: 'expression', expr: 'input_tokens >= 0' },
      { check: 'expression', expr: "input_tokens + output_tokens > 0 OR status = 'skipped'", name: 'has_tokens' },
      { check: 'expression', expr: "status != 'DELETE'", name: 'keyword_in_literal' },
      { check: 'expression', expr: 'coalesce(input_tokens, -1) >= 0', name: 'strict' },
    ]);
    const first = byName(outcome.results, 'expression');
    assert.equal(first.failingCount, 3);
    assert.deepEqual(first.details, { expr: 'input_tokens >= 0', null_results: 1 });
    assert.deepEqual(first.sampleValues, [{ input_tokens: -5 }, { input_tokens: -1 }]);
    const sum = byName(outcome.results, 'has_tokens');
    assert.deepEqual(sum.columns, ['input_tokens', 'output_tokens', 'status']);
    assert.equal(sum.failingCount, 2);
    assert.deepEqual(sum.sampleValues, [
      { input_tokens: -5, output_tokens: 1, status: 'ok' },
      { input_tokens: 0, output_tokens: 0, status: 'ok' },
    ]);
    assert.equal(byName(outcome.results, 'keyword_in_literal').failingCount, 1);
    assert.equal(byName(outcome.results, 'strict').failingCount, 4);
  });

  it('judges freshness of a DATE column by whole days', async () => {
    await makeTable(wh, 'daily', [{ name: 'date', type: 'DATE' }], [{ date: '2025-01-07' }, { date: '2025-01-08' }, { date: null }]);
    // now is 2025-01-10T06:00Z: 2d back is 2025-01-08T06:00, a time inside the day 2025-01-08;
    // 54h back is 2025-01-08T00:00 exactly and 55h back falls on 2025-01-07.
    const outcome = await run('daily', [
      { check: 'freshness', column: 'date', max_age: '2d' },
      { check: 'freshness', column: 'date', max_age: '1d' },
      { check: 'freshness', column: 'date', max_age: '54h' },
      { check: 'freshness', column: 'date', max_age: '55h' },
    ]);
    assert.deepEqual(
      outcome.results.map((r) => [r.passed, r.failingCount, r.details]),
      [
        [true, 0, { max_value: '2025-01-08', threshold: '2025-01-08', max_age: '2d' }],
        [false, 1, { max_value: '2025-01-08', threshold: '2025-01-09', max_age: '1d' }],
        [true, 0, { max_value: '2025-01-08', threshold: '2025-01-08', max_age: '54h' }],
        [true, 0, { max_value: '2025-01-08', threshold: '2025-01-07', max_age: '55h' }],
      ],
    );
    const older = await run('daily', [{ check: 'freshness', column: 'date', max_age: '3d' }]);
    assert.equal(older.results[0]!.passed, true);
    const tooOld = await runDataQuality(wh, {
      dataset: DATASET,
      table: 'daily',
      rules: [{ check: 'freshness', column: 'date', max_age: '1d' }],
      now: new Date('2025-01-09T23:59:59Z'),
    });
    assert.equal(tooOld.results[0]!.passed, true, 'a day stays fresh until max_age after it ends');
  });

  it('judges freshness of TIMESTAMP columns to the instant, with and without time zone', async () => {
    await makeTable(
      wh,
      'events_tz',
      [{ name: 'loaded_at', type: 'TIMESTAMP' }],
      [{ loaded_at: new Date('2025-01-08T00:00:00Z') }, { loaded_at: new Date('2025-01-09T05:00:00Z') }, { loaded_at: null }],
    );
    await wh.query(`CREATE TABLE ${wh.qualify(DATASET, 'events_naive')} AS SELECT TIMESTAMP '2025-01-09 05:00:00' AS loaded_at`);
    const rules: DqRuleInput[] = [
      { check: 'freshness', column: 'loaded_at', max_age: '1d' },
      { check: 'freshness', column: 'loaded_at', max_age: '25h' },
      { check: 'freshness', column: 'loaded_at', max_age: '2d' },
    ];
    for (const table of ['events_tz', 'events_naive']) {
      const outcome = await run(table, rules);
      assert.deepEqual(
        outcome.results.map((r) => [r.passed, r.failingCount, r.details['max_value'], r.details['threshold']]),
        [
          [false, 1, '2025-01-09T05:00:00.000Z', '2025-01-09T06:00:00.000Z'],
          [true, 0, '2025-01-09T05:00:00.000Z', '2025-01-09T05:00:00.000Z'],
          [true, 0, '2025-01-09T05:00:00.000Z', '2025-01-08T06:00:00.000Z'],
        ],
        table,
      );
    }
  });

  it('fails freshness when the table has rows but the column has no value', async () => {
    await makeTable(wh, 'no_dates', [{ name: 'date', type: 'DATE' }], [{ date: null }]);
    const outcome = await run('no_dates', [{ check: 'freshness', column: 'date', max_age: '2d' }]);
    assert.deepEqual(
      [outcome.results[0]!.passed, outcome.results[0]!.failingCount, outcome.results[0]!.details['max_value']],
      [false, 1, null],
    );
  });

  it('checks the row count against min and max', async () => {
    const outcome = await run('usage_clean', [
      { check: 'row_count', min: 3, max: 3 },
      { check: 'row_count', min: 4 },
      { check: 'row_count', max: 2, severity: 'warn' },
    ]);
    assert.deepEqual(
      outcome.results.map((r) => [r.ruleName, r.passed, r.failingCount, r.details]),
      [
        ['row_count', true, 0, { row_count: 3, min: 3, max: 3 }],
        ['row_count_2', false, 1, { row_count: 3, min: 4, max: null }],
        ['row_count_3', false, 1, { row_count: 3, min: null, max: 2 }],
      ],
    );
  });

  it('on an empty table fails only row_count min 1', async () => {
    await makeTable(wh, 'usage_empty', USAGE_FIELDS, []);
    const { warehouse, statements } = recording(wh);
    const outcome = await runDataQuality(warehouse, { dataset: DATASET, table: 'usage_empty', rules: DESIGN_RULES, now: NOW });
    assert.equal(outcome.totalRows, 0);
    assert.deepEqual(
      outcome.results.filter((r) => !r.passed).map((r) => r.ruleName),
      ['row_count'],
    );
    assert.ok(outcome.results.every((r) => r.totalCount === 0 && (r.passed ? r.failingCount === 0 : r.failingCount === 1)));
    assert.deepEqual(
      outcome.failedErrors.map((r) => r.ruleName),
      ['row_count'],
    );
    assert.equal(statements.length, 1);
  });

  it('splits failures into errors and warnings', async () => {
    const outcome = await run('usage_clean', [
      { check: 'row_count', min: 10, severity: 'warn', name: 'enough_rows' },
      { check: 'accepted_values', column: 'provider', values: ['anthropic'] },
      { check: 'range', column: 'cost_usd', max: 1, severity: 'warn' },
      { check: 'not_null', columns: ['model'] },
    ]);
    assert.deepEqual(
      outcome.failedErrors.map((r) => r.ruleName),
      ['accepted_values_provider'],
    );
    assert.deepEqual(
      outcome.failedWarnings.map((r) => r.ruleName),
      ['enough_rows', 'range_cost_usd'],
    );
    assert.equal(outcome.results.length, 4);
  });

  it('keeps sampleSize samples, and none (without sample queries) for 0', async () => {
    const rules: DqRuleInput[] = [{ check: 'range', column: 'cost_usd', min: 100 }];
    assert.deepEqual((await run('usage_clean', rules, 2)).results[0]!.sampleValues, [0, 1.5]);
    const { warehouse, statements } = recording(wh);
    const none = await runDataQuality(warehouse, { dataset: DATASET, table: 'usage_clean', rules, now: NOW, sampleSize: 0 });
    assert.deepEqual([none.results[0]!.failingCount, none.results[0]!.sampleValues], [3, []]);
    assert.equal(statements.length, 1);
    await rejectsWith(run('usage_clean', rules, -1), ExitCode.usage, /sample size/);
  });
});

describe('runDataQuality refusals', () => {
  it('refuses a rule on a missing column before any SQL, naming the rule and the columns', async () => {
    const { warehouse, statements } = recording(wh);
    const err = await rejectsWith(
      runDataQuality(warehouse, {
        dataset: DATASET,
        table: 'usage_clean',
        now: NOW,
        rules: [
          { check: 'not_null', columns: ['date'] },
          { check: 'range', column: 'costs', min: 0 },
        ],
      }),
      ExitCode.usage,
      /dq rule "range_costs": column "costs" is not in acme_corp\.usage_clean/,
    );
    assert.match(err.suggestion ?? '', /date, model, provider, cost_usd, user_email, input_tokens, loaded_at/);
    assert.deepEqual(err.data?.['available'], ['date', 'model', 'provider', 'cost_usd', 'user_email', 'input_tokens', 'loaded_at']);
    assert.deepEqual(statements, []);
  });

  it('reports a missing table as DQ_TABLE_MISSING (exit 3) naming dataset.table', async () => {
    const err = await rejectsWith(
      run('no_such_table', [{ check: 'row_count', min: 1 }]),
      ExitCode.pipelineFailed,
      /acme_corp\.no_such_table does not exist/,
    );
    assert.equal(err.code, 'DQ_TABLE_MISSING');
  });

  it('refuses checks on columns of the wrong type', async () => {
    await rejectsWith(
      run('usage_clean', [{ check: 'regex', column: 'input_tokens', pattern: '^1' }]),
      ExitCode.usage,
      /regex cannot check column input_tokens of type INT64/,
    );
    await rejectsWith(run('usage_clean', [{ check: 'range', column: 'model', min: 0 }]), ExitCode.usage, /range cannot check column model/);
    await rejectsWith(
      run('usage_clean', [{ check: 'freshness', column: 'model', max_age: '1d' }]),
      ExitCode.usage,
      /freshness cannot check/,
    );
    await rejectsWith(
      run('usage_clean', [{ check: 'accepted_values', column: 'input_tokens', values: ['many'] }]),
      ExitCode.usage,
      /accepted value "many" cannot be compared with input_tokens \(INT64\)/,
    );
  });

  it('refuses invalid rules and patterns RE2 cannot run', async () => {
    await rejectsWith(
      run('usage_clean', [{ check: 'range', column: 'cost_usd' } as DqRuleInput]),
      ExitCode.usage,
      /dq rule 1 is invalid: range needs min, max or both/,
    );
    await rejectsWith(
      run('usage_clean', [{ check: 'regex', column: 'user_email', pattern: '^(?!admin)' }]),
      ExitCode.usage,
      /dq rule "regex_user_email": pattern .* lookaround/,
    );
  });

  it('refuses two rules with the same explicit name', async () => {
    await rejectsWith(
      run('usage_clean', [
        { check: 'row_count', min: 1, name: 'dup' },
        { check: 'not_null', columns: ['date'], name: 'dup' },
      ]),
      ExitCode.usage,
      /two dq rules are named "dup"/,
    );
  });

  for (const expr of [
    '1=1; DROP TABLE x',
    'input_tokens > 0) AS m0 --',
    '(SELECT 1) = 1',
    '"current_setting"(\'temp_directory\') IS NOT NULL',
    "input_tokens IN (SELECT 1 FROM read_csv('/etc/passwd'))",
  ]) {
    it(`refuses the expression ${JSON.stringify(expr)} before any SQL`, async () => {
      const { warehouse, statements } = recording(wh);
      await rejectsWith(
        runDataQuality(warehouse, {
          dataset: DATASET,
          table: 'usage_clean',
          now: NOW,
          rules: [{ check: 'expression', expr, name: 'tokens_ok' }],
        }),
        ExitCode.usage,
        /dq rule "tokens_ok": expression/,
      );
      assert.deepEqual(statements, []);
    });
  }

  it('names the rule when the warehouse rejects an expression', async () => {
    const err = await rejectsWith(
      run('usage_clean', [
        { check: 'not_null', columns: ['date'] },
        { check: 'expression', expr: 'no_such_column > 0', name: 'bad_expr' },
      ]),
      ExitCode.usage,
      /dq rule "bad_expr": the warehouse rejected its expression "no_such_column > 0": .*no_such_column/,
    );
    assert.equal(err.data?.['rule'], 'bad_expr');
  });
});
