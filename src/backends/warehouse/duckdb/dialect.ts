import { assertIdentifier } from '../../../domain/ids.ts';
import { percentileFraction, type SqlDialect } from '../dialect.ts';
import { mentionedColumns } from '../expression-columns.ts';
import { Params } from '../params.ts';
import { q } from './session.ts';

/** DuckDB's SQL for the engine's own statements: double-quoted names, count_if, regexp_matches. */
export const duckdbDialect: SqlDialect = {
  name: 'duckdb',
  column: (name) => q(assertIdentifier('column', name)),
  countIf: (condition) => `count_if(${condition})`,
  regexContains: (value, pattern) => `regexp_matches(${value}, ${pattern})`,
  percentileOver: (value, fraction, partitionBy) =>
    `quantile_cont(${value}, ${percentileFraction(fraction)}) OVER (PARTITION BY ${partitionBy})`,
  date: (param) => `CAST(${param} AS DATE)`,
  timestamp: (param) => `CAST(${param} AS TIMESTAMPTZ)`,
  params: () => new Params(),
  referencedColumns: (expr, fields) => mentionedColumns(expr, fields, '"'),
};
