import type { SqlDialect } from '../../backends/warehouse/dialect.ts';
import type { Row, Scalar } from '../../backends/warehouse/port.ts';
import { assertIdentifier } from '../../domain/ids.ts';
import { ConvergenceError, ExitCode, isConvergenceError, validationError } from '../../lib/errors.ts';
import { checkExpression } from './expression.ts';
import { jsonSafe } from './json.ts';
import { holdsTenantText, planChecks, TOTAL, toCount, type AggregatePlan } from './plan.ts';
import { parseRules, resolveRules, type DqRuleInput, type ResolvedRule } from './rules.ts';
import type { DqOutcome, DqWarehouse, RuleResult } from './types.ts';

export interface RunDataQualityOptions {
  dataset: string;
  table: string;
  rules: readonly DqRuleInput[];
  /** The run's clock: freshness thresholds are computed from it, never from the wall clock. */
  now: Date;
  /** Failing values kept per failed rule; 0 skips the sample queries. */
  sampleSize?: number;
}

const MAX_SAMPLE = 100;

type RunQuery = (sql: string, params: Record<string, Scalar>) => Promise<Row[]>;

/**
 * Runs a dq step: one aggregate statement computes every rule's metrics in a single pass over the
 * table, then each failed rule that has values to show gets one small sample query. Rule shape,
 * names, columns and types, and the warehouse's check of each expression, come before the first
 * statement. A statement that holds an expression runs through the tenant SQL gate as a whole.
 */
export async function runDataQuality(warehouse: DqWarehouse, options: RunDataQualityOptions): Promise<DqOutcome> {
  const { dataset, table, now } = options;
  assertIdentifier('dataset', dataset);
  assertIdentifier('table', table);
  const sampleSize = options.sampleSize ?? 5;
  if (!Number.isInteger(sampleSize) || sampleSize < 0 || sampleSize > MAX_SAMPLE) {
    throw validationError(`dq sample size must be an integer from 0 to ${MAX_SAMPLE}, got ${sampleSize}`);
  }
  if (Number.isNaN(now.getTime())) throw validationError('dq: the run time is not a valid date');
  const rules = parseRules(options.rules);

  const fields = await warehouse.getTableFields(dataset, table);
  if (!fields) {
    throw new ConvergenceError('DQ_TABLE_MISSING', ExitCode.pipelineFailed, `dq: table ${dataset}.${table} does not exist`, {
      suggestion: "check the step's table name, and that an earlier step loads it",
      data: { dataset, table },
    });
  }
  const { dialect } = warehouse;
  const resolved = resolveRules(rules, { dataset, table, dialect, fields });
  for (const rule of resolved) {
    if (rule.expr !== undefined) rule.checkedExpr = await checkExpression(warehouse, rule.name, rule.expr, { dataset, table });
  }
  const ref = warehouse.qualify(dataset, table);
  const plan = planChecks(resolved, { dialect, ref, now });
  const engineSql: RunQuery = (sql, params) => warehouse.query(sql, params);
  const tenantSql: RunQuery = (sql, params) => warehouse.queryTenant(sql, { dataset, params });
  const runFor = (rules: readonly ResolvedRule[]) => (holdsTenantText(rules) ? tenantSql : engineSql);

  let row: Row;
  try {
    const rows = await runFor(resolved)(plan.sql, plan.params);
    if (rows.length !== 1) throw new Error(`the dq aggregate returned ${rows.length} rows instead of 1`);
    row = rows[0]!;
  } catch (err) {
    if (isConvergenceError(err) && err.code.startsWith('TENANT_SQL')) throw err;
    throw await blame(runFor, resolved, { dialect, ref, now }, err);
  }

  const totalRows = toCount(row[TOTAL]);
  const results: RuleResult[] = [];
  for (const rulePlan of plan.rules) {
    const { rule } = rulePlan;
    const verdict = rulePlan.evaluate(row, totalRows);
    let sampleValues: unknown[] = [];
    if (!verdict.passed && rulePlan.sample && sampleSize > 0) {
      const sample = rulePlan.sample(sampleSize);
      sampleValues = sample.read(await runFor([rule])(sample.sql, sample.params));
    }
    results.push({
      ruleName: rule.name,
      check: rule.rule.check,
      columns: rule.columns,
      severity: rule.severity,
      passed: verdict.passed,
      failingCount: verdict.failingCount,
      totalCount: totalRows,
      sampleValues: jsonSafe(sampleValues) as unknown[],
      details: jsonSafe(verdict.details) as Record<string, unknown>,
    });
  }
  const failed = results.filter((r) => !r.passed);
  return {
    totalRows,
    results,
    failedErrors: failed.filter((r) => r.severity === 'error'),
    failedWarnings: failed.filter((r) => r.severity === 'warn'),
  };
}

/**
 * The aggregate mixes every rule, so a warehouse error does not say whose SQL it was. On this
 * (rare) path each rule is planned alone and compiled under LIMIT 0 until one is rejected; the
 * error then names that rule. When none is, the original error stands.
 */
async function blame(
  runFor: (rules: readonly ResolvedRule[]) => RunQuery,
  rules: readonly ResolvedRule[],
  ctx: { dialect: SqlDialect; ref: string; now: Date },
  original: unknown,
): Promise<unknown> {
  if (rules.length < 1) return original;
  for (const rule of rules) {
    const single: AggregatePlan = planChecks([rule], ctx);
    try {
      await runFor([rule])(`SELECT * FROM (${single.sql}) AS dq_probe LIMIT 0`, single.params);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const what = rule.rule.check === 'expression' ? `expression ${JSON.stringify(rule.expr)}` : `${rule.rule.check} check`;
      return validationError(`dq rule "${rule.name}": the warehouse rejected its ${what}: ${reason}`, {
        suggestion: rule.rule.check === 'expression' ? 'the expression may only use columns of the table and SQL functions' : undefined,
        data: { rule: rule.name },
        cause: err,
      });
    }
  }
  return original;
}
