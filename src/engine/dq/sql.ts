import type { Scalar } from '../../backends/warehouse/port.ts';
import { assertIdentifier } from '../../domain/ids.ts';

/**
 * The few places where DuckDB and BigQuery SQL differ for the checks. Everything else the engine
 * writes (CASE, IN, IS NULL, count(*), max, coalesce, GROUP BY/HAVING, LIMIT) is common to both.
 */
export interface Dialect {
  readonly name: 'duckdb' | 'bigquery';
  /** Validates, then quotes a column name. */
  column(name: string): string;
  countIf(condition: string): string;
  /** True when the pattern matches anywhere in the value (RE2 in both engines). */
  regexContains(value: string, pattern: string): string;
  date(param: string): string;
  timestamp(param: string): string;
}

const duckdb: Dialect = {
  name: 'duckdb',
  column: (name) => `"${assertIdentifier('column', name)}"`,
  countIf: (condition) => `count_if(${condition})`,
  regexContains: (value, pattern) => `regexp_matches(${value}, ${pattern})`,
  date: (param) => `CAST(${param} AS DATE)`,
  timestamp: (param) => `CAST(${param} AS TIMESTAMPTZ)`,
};

const bigquery: Dialect = {
  name: 'bigquery',
  column: (name) => `\`${assertIdentifier('column', name)}\``,
  countIf: (condition) => `COUNTIF(${condition})`,
  regexContains: (value, pattern) => `REGEXP_CONTAINS(${value}, ${pattern})`,
  date: (param) => `CAST(${param} AS DATE)`,
  timestamp: (param) => `CAST(${param} AS TIMESTAMP)`,
};

export const dialectFor = (name: 'duckdb' | 'bigquery'): Dialect => (name === 'bigquery' ? bigquery : duckdb);

/** Collects bound values for one statement; the text only ever holds `@pN` placeholders. */
export class Params {
  readonly values: Record<string, Scalar> = {};
  #next = 0;

  add(value: Scalar): string {
    const name = `p${this.#next++}`;
    this.values[name] = value;
    return `@${name}`;
  }
}
