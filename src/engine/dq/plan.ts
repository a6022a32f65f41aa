import type { SqlDialect } from '../../backends/warehouse/dialect.ts';
import type { Params } from '../../backends/warehouse/params.ts';
import type { Row, Scalar } from '../../backends/warehouse/port.ts';
import { parseDuration } from '../../lib/duration.ts';
import type { ResolvedRule } from './rules.ts';

/**
 * Turns resolved rules into one aggregate statement plus, per rule, how to read its metrics back
 * and how to fetch a sample of failing values.
 *
 * Null handling, chosen to match SQL constraints (and dbt's tests): only not_null counts nulls.
 * range, accepted_values and regex skip null values; unique skips rows with a null in any key
 * column (NULLs are distinct, as in a UNIQUE constraint); expression fails a row only when the
 * expression is FALSE — a NULL result passes, as in a CHECK constraint, and is reported in
 * details.null_results. Combine with not_null (or coalesce in the expression) to be strict.
 */
interface Verdict {
  passed: boolean;
  failingCount: number;
  details: Record<string, unknown>;
}

interface SampleQuery {
  sql: string;
  params: Record<string, Scalar>;
  read(rows: Row[]): unknown[];
}

interface RulePlan {
  rule: ResolvedRule;
  evaluate(row: Row, totalRows: number): Verdict;
  /** Undefined for checks whose failure has no values to show (not_null, row_count, freshness). */
  sample?(limit: number): SampleQuery;
}

export interface AggregatePlan {
  sql: string;
  params: Record<string, Scalar>;
  rules: RulePlan[];
}

export interface PlanContext {
  /** The warehouse's SQL dialect (warehouse.dialect). */
  dialect: SqlDialect;
  /** Quoted table reference from warehouse.qualify. */
  ref: string;
  now: Date;
}

export const TOTAL = 'total_rows';

export const toCount = (value: Scalar | undefined): number => {
  const n = typeof value === 'number' ? value : typeof value === 'bigint' || typeof value === 'string' ? Number(value) : 0;
  return Number.isFinite(n) ? n : 0;
};

/** Tenant text enters SQL only as the warehouse's check returned it. */
function checkedExpression(rule: ResolvedRule): string {
  if (rule.checkedExpr === undefined) throw new Error(`dq rule "${rule.name}": its expression was not checked by the warehouse`);
  return rule.checkedExpr;
}

/** True when the plan's SQL holds tenant text (an expression) and must run through the tenant SQL gate. */
export const holdsTenantText = (rules: readonly ResolvedRule[]) => rules.some((r) => r.rule.check === 'expression');

/** SQL that is TRUE exactly for the rows failing a row-level rule. */
function failing(rule: ResolvedRule, d: SqlDialect, p: Params): string | undefined {
  const r = rule.rule;
  const cols = rule.columns.map((c) => d.column(c));
  switch (r.check) {
    case 'not_null':
      return cols.map((c) => `${c} IS NULL`).join(' OR ');
    case 'range': {
      const parts: string[] = [];
      if (r.min !== undefined) parts.push(`${cols[0]} < ${p.add(r.min)}`);
      if (r.max !== undefined) parts.push(`${cols[0]} > ${p.add(r.max)}`);
      return parts.join(' OR ');
    }
    case 'accepted_values': {
      const bind = (v: Scalar) => (rule.types[0] === 'DATE' ? d.date(p.add(v)) : p.add(v));
      return `${cols[0]} NOT IN (${rule.values!.map(bind).join(', ')})`;
    }
    case 'regex':
      return `NOT ${d.regexContains(cols[0]!, p.add(r.pattern))}`;
    case 'expression':
      return `NOT (${checkedExpression(rule)})`;
    default:
      return undefined;
  }
}

function freshnessThreshold(rule: ResolvedRule, now: Date): { value: Scalar; shown: string } {
  if (rule.rule.check !== 'freshness') throw new Error('not a freshness rule');
  const at = new Date(now.getTime() - parseDuration(rule.rule.max_age, `dq rule "${rule.name}" max_age`));
  // A DATE covers its whole (UTC) day, so the day the threshold falls in still counts as fresh.
  if (rule.types[0] === 'DATE') {
    const day = at.toISOString().slice(0, 10);
    return { value: day, shown: day };
  }
  return { value: at, shown: at.toISOString() };
}

const uniqueAlias = (base: string, taken: string[]) => {
  let alias = base;
  while (taken.some((c) => c.toLowerCase() === alias.toLowerCase())) alias += '_';
  return alias;
};

export function planChecks(rules: readonly ResolvedRule[], ctx: PlanContext): AggregatePlan {
  const { dialect: d, ref } = ctx;
  const params = d.params();
  const select: string[] = [`count(*) AS ${TOTAL}`];
  const ctes: string[] = [];
  const joined: string[] = [];

  const plans = rules.map((rule, index): RulePlan => {
    const m = `m${index}`;
    const cols = rule.columns.map((c) => d.column(c));
    const r = rule.rule;
    const condition = failing(rule, d, params);

    const predicateSample =
      (shape: 'value' | 'row') =>
      (limit: number): SampleQuery => {
        const p = d.params();
        const where = failing(rule, d, p)!;
        // BigQuery cannot DISTINCT or ORDER BY JSON, so those columns stay out of samples.
        const shown = rule.columns.filter((_, i) => rule.types[i] !== 'JSON');
        if (shape === 'value') {
          return {
            sql: `SELECT DISTINCT ${cols[0]} AS dq_value FROM ${ref} WHERE ${where} ORDER BY dq_value LIMIT ${p.add(limit)}`,
            params: p.values,
            read: (rows) => rows.map((row) => row['dq_value']),
          };
        }
        const list = shown.map((c) => d.column(c)).join(', ');
        return {
          sql: shown.length
            ? `SELECT DISTINCT ${list} FROM ${ref} WHERE ${where} ORDER BY ${list} LIMIT ${p.add(limit)}`
            : `SELECT * FROM ${ref} WHERE ${where} LIMIT ${p.add(limit)}`,
          params: p.values,
          read: (rows) => rows,
        };
      };

    switch (r.check) {
      case 'not_null': {
        select.push(`${d.countIf(condition!)} AS ${m}`);
        if (cols.length > 1) cols.forEach((c, i) => select.push(`${d.countIf(`${c} IS NULL`)} AS ${m}_null_${i}`));
        return {
          rule,
          evaluate: (row) => {
            const failingCount = toCount(row[m]);
            const details: Record<string, unknown> = {};
            if (cols.length > 1)
              details['null_counts'] = Object.fromEntries(rule.columns.map((c, i) => [c, toCount(row[`${m}_null_${i}`])]));
            return { passed: failingCount === 0, failingCount, details };
          },
        };
      }
      case 'range':
      case 'accepted_values':
      case 'regex': {
        select.push(`${d.countIf(condition!)} AS ${m}`);
        const details =
          r.check === 'range'
            ? { min: r.min ?? null, max: r.max ?? null }
            : r.check === 'regex'
              ? { pattern: r.pattern }
              : { values: rule.values };
        return {
          rule,
          evaluate: (row) => ({ passed: toCount(row[m]) === 0, failingCount: toCount(row[m]), details }),
          sample: predicateSample('value'),
        };
      }
      case 'expression': {
        select.push(`${d.countIf(condition!)} AS ${m}`, `${d.countIf(`(${checkedExpression(rule)}) IS NULL`)} AS ${m}_nulls`);
        return {
          rule,
          evaluate: (row) => ({
            passed: toCount(row[m]) === 0,
            failingCount: toCount(row[m]),
            details: { expr: rule.expr, null_results: toCount(row[`${m}_nulls`]) },
          }),
          sample: predicateSample('row'),
        };
      }
      case 'unique': {
        const keys = cols.join(', ');
        const present = cols.map((c) => `${c} IS NOT NULL`).join(' AND ');
        const groups = `SELECT count(*) AS dq_n FROM ${ref} WHERE ${present} GROUP BY ${keys} HAVING count(*) > 1`;
        ctes.push(`u${index} AS (SELECT count(*) AS ${m}_keys, coalesce(sum(dq_n), 0) AS ${m} FROM (${groups}) AS g${index})`);
        joined.push(`u${index}`);
        return {
          rule,
          evaluate: (row) => ({
            passed: toCount(row[m]) === 0,
            failingCount: toCount(row[m]),
            details: { duplicate_keys: toCount(row[`${m}_keys`]) },
          }),
          sample: (limit) => {
            const p = d.params();
            const n = uniqueAlias('dq_count', rule.columns);
            return {
              sql:
                `SELECT ${keys}, count(*) AS ${n} FROM ${ref} WHERE ${present} GROUP BY ${keys} HAVING count(*) > 1 ` +
                `ORDER BY ${n} DESC, ${keys} LIMIT ${p.add(limit)}`,
              params: p.values,
              read: (rows) =>
                rows.map((row) => ({ key: Object.fromEntries(rule.columns.map((c) => [c, row[c]])), count: toCount(row[n]) })),
            };
          },
        };
      }
      case 'freshness': {
        const threshold = freshnessThreshold(rule, ctx.now);
        const bound = rule.types[0] === 'DATE' ? d.date(params.add(threshold.value)) : d.timestamp(params.add(threshold.value));
        select.push(`max(${cols[0]}) AS ${m}_max`, `CASE WHEN max(${cols[0]}) < ${bound} THEN 1 ELSE 0 END AS ${m}_stale`);
        return {
          rule,
          evaluate: (row, total) => {
            const max = row[`${m}_max`] ?? null;
            const details = { max_value: max, threshold: threshold.shown, max_age: r.max_age };
            // An empty table has nothing stale (row_count is the check for emptiness); rows without
            // any value, though, cannot show they are recent.
            const stale = total > 0 && (max === null || toCount(row[`${m}_stale`]) === 1);
            return { passed: !stale, failingCount: stale ? 1 : 0, details };
          },
        };
      }
      case 'row_count': {
        return {
          rule,
          evaluate: (_row, total) => {
            const passed = (r.min === undefined || total >= r.min) && (r.max === undefined || total <= r.max);
            return { passed, failingCount: passed ? 0 : 1, details: { row_count: total, min: r.min ?? null, max: r.max ?? null } };
          },
        };
      }
    }
  });

  const aggregate = `SELECT ${select.join(', ')} FROM ${ref}`;
  const sql = ctes.length
    ? `WITH ${ctes.join(', ')} SELECT agg.*, ${joined.map((u) => `${u}.*`).join(', ')} FROM (${aggregate}) AS agg${joined.map((u) => ` CROSS JOIN ${u}`).join('')}`
    : aggregate;
  return { sql, params: params.values, rules: plans };
}
