import { percentileFraction, type SqlDialect } from '../dialect.ts';
import { mentionedColumns } from '../expression-columns.ts';
import { Params } from '../params.ts';
import { bq } from './sql.ts';

/** BigQuery's SQL for the engine's own statements: backquoted names, COUNTIF, REGEXP_CONTAINS. */
export const bigqueryDialect: SqlDialect = {
  name: 'bigquery',
  column: (name) => bq(name, 'column'),
  countIf: (condition) => `COUNTIF(${condition})`,
  regexContains: (value, pattern) => `REGEXP_CONTAINS(${value}, ${pattern})`,
  percentileOver: (value, fraction, partitionBy) =>
    `PERCENTILE_CONT(${value}, ${percentileFraction(fraction)}) OVER (PARTITION BY ${partitionBy})`,
  date: (param) => `CAST(${param} AS DATE)`,
  timestamp: (param) => `CAST(${param} AS TIMESTAMP)`,
  params: () => new Params(),
  referencedColumns: (expr, fields) => mentionedColumns(expr, fields, '`'),
};
