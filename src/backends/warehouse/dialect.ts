import type { Params } from './params.ts';
import type { FieldSpec } from './columns.ts';
import { validationError } from '../../lib/errors.ts';

/**
 * The SQL a warehouse speaks, as far as the engine writes SQL itself (the data quality aggregate
 * and its samples), the way a dbt adapter carries its dialect. Each adapter provides its own as
 * `warehouse.dialect`; the engine asks it and never looks at which warehouse it is. What is not
 * here (CASE, IN, IS NULL, count(*), max, coalesce, GROUP BY/HAVING, LIMIT) every dialect shares.
 */
export interface SqlDialect {
  /** The kind of warehouse, for people: 'duckdb', 'bigquery'. */
  readonly name: string;
  /** Validates, then quotes a column name. */
  column(name: string): string;
  /** Counts the rows where the condition is TRUE. */
  countIf(condition: string): string;
  /** TRUE when the (RE2) pattern matches anywhere in the value. */
  regexContains(value: string, pattern: string): string;
  /**
   * The continuous percentile (`fraction` between 0 and 1) of `value` over the rows of each
   * `partitionBy` group, as an analytic expression: NULLs are left out, as the aggregate would.
   */
  percentileOver(value: string, fraction: number, partitionBy: string): string;
  /** A bound 'YYYY-MM-DD' as a DATE. */
  date(param: string): string;
  /** A bound Date as a TIMESTAMP (with time zone). */
  timestamp(param: string): string;
  /** A collector for the values of one statement sent through Warehouse.query (`@name` placeholders). */
  params(): Params;
  /**
   * Columns of `fields` an expression mentions, in order of first mention, read as this
   * warehouse quotes identifiers. For samples and reporting only: nothing is decided on it.
   */
  referencedColumns(expr: string, fields: readonly FieldSpec[]): string[];
}

/** A percentile's fraction as a SQL literal: the functions take a constant, so it is checked, never bound. */
export function percentileFraction(fraction: number): string {
  if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) throw validationError(`a percentile is between 0 and 1, got ${fraction}`);
  return String(fraction);
}
