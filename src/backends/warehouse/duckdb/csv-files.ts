import { listValue, type DuckDBValue } from '@duckdb/node-api';
import { assertIdentifier } from '../../../domain/ids.ts';
import type { CsvFilesSource, FieldSpec, FieldType } from '../port.ts';
import { q, SQL_TYPE } from './session.ts';

/**
 * DuckDB reads a `csv-files` source itself: its parallel CSV reader gives every column as text,
 * and SQL types it. This path lands only what the engine's own staging (polars, see
 * engine/staging/typing.ts) would land unchanged, so a file loads the same rows whichever way it
 * goes; the checks below are therefore stricter than DuckDB's casts, which also read `1.5` as
 * the integer 2, `2025/01/05` as a date or `t` as true:
 *   INT64      the text of the number exactly as DuckDB prints it back (so `+5`, `007`, `1.0`,
 *              `1e3`, `0x10` go to the engine, which decides);
 *   FLOAT64    a finite number without `_` or spaces around it;
 *   DATE       YYYY-MM-DD, exactly as DuckDB prints the date back;
 *   BOOL       true, false, 1, 0 in any case;
 *   TIMESTAMP  the engine's shapes with at most millisecond digits (the engine keeps milliseconds)
 *              and an offset of Z, ±HH:MM or ±HHMM, or none (UTC);
 *   NUMERIC    the engine's decimal shape, cast as the engine's staged text is;
 *   STRING     as read, without a `"` in it; an empty unquoted field is null, `""` the empty string,
 *              as polars reads them.
 * An empty unquoted field is null for every type; any other blank, or text with spaces around it,
 * is left to the engine. A REQUIRED field must have a value. The first row that passes none of this stops the statement
 * (error() with NEEDS_STAGING), as does DuckDB's reader at the first ragged line, stray quote or
 * byte that is not UTF-8: the transaction then rolls back and the engine stages the files.
 */
export const CSV_FILE_TYPES: readonly FieldType[] = ['STRING', 'INT64', 'FLOAT64', 'NUMERIC', 'BOOL', 'DATE', 'TIMESTAMP'];

const NEEDS_STAGING = 'convergence: row needs the engine';

const TIMESTAMP_SHAPE = String.raw`[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?(Z|[+-][0-9]{2}:?[0-9]{2})?)?`;
const NUMERIC_SHAPE = String.raw`[+-]?([0-9]{1,29}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?`;

const sqlText = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * The typed value of raw text column `c`, and when it is exactly the engine's. The value is
 * computed once in an inner SELECT (`x`) and checked in the outer one: the check reads it back
 * instead of casting again. Text with spaces around it is left to the engine, which trims it.
 */
function typed(c: string, x: string, field: FieldSpec): { value?: string; exact?: string } {
  switch (field.type) {
    case 'STRING':
      // A quote inside a value: DuckDB reads `a"b` as text where polars refuses the file; "" inside
      // a quoted field is fine for both, but cannot be told apart here. Either way the engine decides.
      return { exact: `NOT contains(${c}, '"')` };
    case 'INT64':
      return { value: `TRY_CAST(${c} AS BIGINT)`, exact: `CAST(${x} AS VARCHAR) = ${c}` };
    case 'FLOAT64':
      return { value: `TRY_CAST(${c} AS DOUBLE)`, exact: `isfinite(${x}) AND NOT contains(${c}, '_') AND ${c} = trim(${c})` };
    case 'DATE':
      return { value: `TRY_CAST(${c} AS DATE)`, exact: `strftime(${x}, '%Y-%m-%d') = ${c}` };
    case 'BOOL':
      return {
        value: `CASE lower(${c}) WHEN 'true' THEN true WHEN '1' THEN true WHEN 'false' THEN false WHEN '0' THEN false END`,
        exact: `${x} IS NOT NULL`,
      };
    case 'TIMESTAMP':
      return { value: `TRY_CAST(${c} AS TIMESTAMPTZ)`, exact: `${x} IS NOT NULL AND regexp_full_match(${c}, ${sqlText(TIMESTAMP_SHAPE)})` };
    case 'NUMERIC':
      return {
        value: `TRY_CAST(${c} AS ${SQL_TYPE.NUMERIC})`,
        exact: `${x} IS NOT NULL AND regexp_full_match(${c}, ${sqlText(NUMERIC_SHAPE)})`,
      };
    default:
      throw new Error(`a csv-files load cannot type ${field.type}`);
  }
}

/** The rows of files laid out alike, typed, as one SELECT; `param` names their bound paths. */
function filesSelect(source: CsvFilesSource, file: Pick<CsvFilesSource['files'][number], 'columns'>, param: string): string {
  const raw = file.columns.map((_, i) => `c${i + 1}`);
  const columns = `{${raw.map((c) => `'${c}': 'VARCHAR'`).join(', ')}}`;
  const inner: string[] = [...raw];
  const outer: string[] = [];
  const checks: string[] = [];
  source.fields.forEach((field, i) => {
    const at = file.columns.indexOf(field.name);
    if (at < 0) {
      outer.push(`CAST(NULL AS ${SQL_TYPE[field.type]}) AS ${q(field.name)}`);
      if (field.mode === 'REQUIRED') checks.push('false');
      return;
    }
    const c = raw[at]!;
    const x = `x${i + 1}`;
    const t = typed(c, x, field);
    if (t.value) inner.push(`${t.value} AS ${x}`);
    outer.push(`${t.value ? x : c} AS ${q(field.name)}`);
    // A blank field is null (empty and unquoted: DuckDB reads it as null, as polars does).
    if (field.mode === 'REQUIRED') checks.push(`${c} IS NOT NULL${t.exact ? ` AND ${t.exact}` : ''}`);
    else if (t.exact) checks.push(`(${c} IS NULL OR (${t.exact}))`);
  });
  const reader =
    `read_csv($${param}, columns = ${columns}, header = ${source.hasHeader}, delim = $__delim, quote = '"', escape = '"', ` +
    `auto_detect = false, strict_mode = true, null_padding = false, allow_quoted_nulls = false)`;
  const where = checks.length > 0 ? ` WHERE CASE WHEN ${checks.join(' AND ')} THEN true ELSE error(${sqlText(NEEDS_STAGING)}) END` : '';
  return `SELECT ${outer.join(', ')} FROM (SELECT ${inner.join(', ')} FROM ${reader})${where}`;
}

/** The files' rows as one relation for the load's INSERT, with the bound paths and delimiter. */
export function csvFilesRelation(source: CsvFilesSource): { sql: string; params: Record<string, DuckDBValue> } {
  for (const field of source.fields) {
    assertIdentifier('column', field.name);
    if (!CSV_FILE_TYPES.includes(field.type)) throw new Error(`a csv-files load cannot type ${field.type}`);
  }
  if ([...source.delimiter].length !== 1) throw new Error('a csv-files load needs a one-character delimiter');
  const params: Record<string, DuckDBValue> = { __delim: source.delimiter };
  // Files laid out alike share one reader, which splits the work over the threads best.
  const groups = new Map<string, { columns: Array<string | null>; paths: string[] }>();
  for (const file of source.files) {
    const key = JSON.stringify(file.columns);
    const group = groups.get(key) ?? { columns: file.columns, paths: [] };
    group.paths.push(file.path);
    groups.set(key, group);
  }
  const selects = [...groups.values()].map((group, i) => {
    params[`__files${i}`] = listValue(group.paths);
    return filesSelect(source, group, `__files${i}`);
  });
  const empty = `SELECT ${source.fields.map((f) => `CAST(NULL AS ${SQL_TYPE[f.type]}) AS ${q(f.name)}`).join(', ')} WHERE false`;
  return { sql: `(${selects.length > 0 ? selects.join(' UNION ALL ') : empty})`, params };
}

/** DuckDB errors that mean "these files need the engine": our own stop, or the reader's refusal of the text. */
export function needsStaging(err: unknown): string | undefined {
  const message = (err as Error)?.message ?? '';
  if (message.includes(NEEDS_STAGING)) return 'a value does not type as the engine types it';
  const csv = /CSV Error[^\n]*|Invalid unicode[^\n]*|Invalid Input Error: [^\n]*/i.exec(message);
  return csv ? csv[0].slice(0, 200) : undefined;
}
