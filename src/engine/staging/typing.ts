import pl from 'nodejs-polars';
import type { DataType, Expr } from 'nodejs-polars';
import type { FieldSpec, FieldType } from '../../backends/warehouse/port.ts';
import { validationError } from '../../lib/errors.ts';

/**
 * How every source turns raw columns into the destination's types, as polars expressions (so the
 * work streams inside polars, never row by row in JS). A value that cannot be typed becomes null
 * and leaves a reason; the row is then quarantined by the load instead of failing the run.
 *
 * Staged Parquet types stay simple so DuckDB's read_parquet and BigQuery load jobs read them as is:
 * NUMERIC is staged as validated decimal text (exact; Float64 would round money), JSON as validated
 * JSON text, BYTES as validated base64 text (nodejs-polars cannot hand Binary columns to JS), and
 * TIMESTAMP as Datetime(us, UTC).
 */
const TIMESTAMP_TYPE = pl.Datetime('us', 'UTC');
export const POLARS_TYPE: Record<FieldType, DataType> = {
  STRING: pl.Utf8,
  INT64: pl.Int64,
  FLOAT64: pl.Float64,
  NUMERIC: pl.Utf8,
  BOOL: pl.Bool,
  TIMESTAMP: TIMESTAMP_TYPE,
  DATE: pl.Date,
  JSON: pl.Utf8,
  BYTES: pl.Utf8,
};

/** Text accepted per type (also used to infer types from samples, so inference and parsing agree). */
export const PATTERNS = {
  integer: /^[+-]?(0|[1-9][0-9]{0,17})$/,
  float: /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/,
  /** BigQuery NUMERIC holds 29 integer digits. */
  numeric: /^[+-]?([0-9]{1,29}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/,
  bool: /^(true|false)$/i,
  date: /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/,
  /** ISO 8601 with Z or an offset, or 'YYYY-MM-DD HH:MM:SS[.f]' read as UTC. */
  timestamp: /^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$/,
};
const rx = (re: RegExp) => re.source;

const INTEGER_VARIANTS = new Set(['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64']);
const FLOAT_VARIANTS = new Set(['Float32', 'Float64']);
const TEXT_VARIANTS = new Set(['Utf8', 'String', 'Categorical']);

/** A source column as polars sees it: `text` for columns read as strings (CSV, JSON records). */
export interface RawColumn {
  expr: Expr;
  dtype: DataType | 'text';
}

export const nullOf = (type: DataType) => pl.lit(null).cast(type);
const variantOf = (dtype: DataType | 'text') => (dtype === 'text' ? 'Utf8' : dtype.variant);

/** The warehouse type a polars column maps to when there is no schema file; undefined when unsupported. */
export function fieldTypeOf(dtype: DataType): FieldType | undefined {
  const v = dtype.variant;
  if (INTEGER_VARIANTS.has(v)) return 'INT64';
  if (FLOAT_VARIANTS.has(v)) return 'FLOAT64';
  if (v === 'Decimal') return 'NUMERIC';
  if (v === 'Bool') return 'BOOL';
  if (v === 'Date') return 'DATE';
  if (v === 'Datetime') return 'TIMESTAMP';
  if (v === 'Struct' || v === 'List' || v === 'FixedSizeList') return 'JSON';
  if (TEXT_VARIANTS.has(v) || v === 'Null' || v === 'Time' || v === 'Duration') return 'STRING';
  return undefined;
}

/** Any column as text: nested values as JSON, timestamps as ISO 8601. */
export function asText(expr: Expr, dtype: DataType | 'text'): Expr {
  const v = variantOf(dtype);
  if (v === 'Utf8' || v === 'String') return expr;
  if (v === 'Struct') return expr.struct.jsonEncode();
  // polars encodes structs only: wrap the list in one and unwrap the text.
  if (v === 'List' || v === 'FixedSizeList')
    return pl
      .struct([expr.alias('v')])
      .struct.jsonEncode()
      .str.replace('^\\{"v":(.*)\\}$', '${1}');
  if (v === 'Datetime') {
    return hasTimeZone(dtype)
      ? expr.dt.convertTimeZone('UTC').dt.strftime('%Y-%m-%dT%H:%M:%S%.fZ')
      : expr.dt.strftime('%Y-%m-%dT%H:%M:%S%.f');
  }
  return expr.cast(pl.Utf8, false);
}

const hasTimeZone = (dtype: DataType | 'text') => dtype !== 'text' && Boolean((dtype as { timeZone?: string | null }).timeZone);

/**
 * Text ready for parseText: trimmed, and null when blank (an empty field means "no value" for every
 * type but STRING, which keeps its text exactly; for JSON the literal null is no value too).
 */
export function preparedText(text: Expr, type: FieldType): Expr {
  if (type === 'STRING') return text;
  const trimmed = text.str.strip();
  const blank = type === 'JSON' ? trimmed.eq(pl.lit('')).or(trimmed.eq(pl.lit('null'))) : trimmed.eq(pl.lit(''));
  return pl.when(blank).then(nullOf(pl.Utf8)).otherwise(trimmed);
}

/** Parses prepared text into the type; null where it does not parse. */
export function parseText(text: Expr, type: FieldType): Expr {
  switch (type) {
    case 'STRING':
      return text;
    case 'INT64':
      return text.cast(pl.Int64, false);
    case 'FLOAT64':
      return text.cast(pl.Float64, false);
    case 'NUMERIC':
      return pl
        .when(text.str.contains(rx(PATTERNS.numeric)))
        .then(text)
        .otherwise(nullOf(pl.Utf8));
    case 'BOOL': {
      const lower = text.str.toLowerCase();
      return pl
        .when(lower.eq(pl.lit('true')).or(lower.eq(pl.lit('1'))))
        .then(pl.lit(true))
        .when(lower.eq(pl.lit('false')).or(lower.eq(pl.lit('0'))))
        .then(pl.lit(false))
        .otherwise(nullOf(pl.Bool));
    }
    case 'DATE':
      // strptime alone also accepts a date followed by junk: the pattern makes the match exact.
      return pl
        .when(text.str.contains(rx(PATTERNS.date)))
        .then(text.str.strptime(pl.Date, '%Y-%m-%d'))
        .otherwise(nullOf(pl.Date));
    case 'TIMESTAMP': {
      // One canonical shape, one parse: 'T' between date and time, Z when no offset is given; a bare
      // date is midnight UTC. Literal and anchored replacements: regex work dominates the cost here.
      const canonical = text.str.replace(' ', 'T', true).str.replace('(:[0-9]{2}(\\.[0-9]+)?)$', '${1}Z');
      const dateTime = canonical.str.strptime(pl.Datetime('ms'), '%Y-%m-%dT%H:%M:%S%.f%#z').cast(TIMESTAMP_TYPE);
      const dateOnly = text.str.strptime(pl.Date, '%Y-%m-%d').cast(TIMESTAMP_TYPE);
      return pl
        .when(text.str.contains(rx(PATTERNS.timestamp)))
        .then(dateTime)
        .when(text.str.contains(rx(PATTERNS.date)))
        .then(dateOnly)
        .otherwise(nullOf(TIMESTAMP_TYPE));
    }
    case 'JSON':
      return pl.when(text.str.jsonPathMatch('$').isNotNull()).then(text).otherwise(nullOf(pl.Utf8));
    case 'BYTES':
      return pl.when(text.str.decode('base64', false).isNotNull()).then(text).otherwise(nullOf(pl.Utf8));
  }
}

/** Casts that need no text round trip because the source already has a compatible type. */
export function directCast(expr: Expr, dtype: DataType | 'text', type: FieldType): Expr | undefined {
  const v = variantOf(dtype);
  const utc = hasTimeZone(dtype) ? expr.dt.convertTimeZone('UTC') : expr;
  switch (type) {
    case 'INT64':
      if (INTEGER_VARIANTS.has(v)) return expr.cast(pl.Int64, false);
      // A float is an integer only when it has no fraction (a plain cast would truncate 1.5 to 1).
      if (FLOAT_VARIANTS.has(v)) return pl.when(expr.eq(expr.floor())).then(expr.cast(pl.Int64, false)).otherwise(nullOf(pl.Int64));
      return undefined;
    case 'FLOAT64':
      return INTEGER_VARIANTS.has(v) || FLOAT_VARIANTS.has(v) || v === 'Decimal' ? expr.cast(pl.Float64, false) : undefined;
    case 'NUMERIC':
      return INTEGER_VARIANTS.has(v) || v === 'Decimal' ? expr.cast(pl.Utf8) : undefined;
    case 'BOOL':
      return v === 'Bool' ? expr : undefined;
    case 'DATE':
      return v === 'Date' ? expr : v === 'Datetime' ? utc.cast(pl.Date) : undefined;
    case 'TIMESTAMP':
      return v === 'Datetime' || v === 'Date' ? utc.cast(TIMESTAMP_TYPE) : undefined;
    default:
      return undefined;
  }
}

const CURSOR_TYPES: FieldType[] = ['STRING', 'INT64', 'FLOAT64', 'NUMERIC', 'DATE', 'TIMESTAMP'];

/** The incremental cursor's field; refuses types that cannot be ordered. */
export function cursorFieldOf(fields: FieldSpec[], cursorField: string): FieldSpec {
  const field = fields.find((f) => f.name === cursorField);
  if (!field) {
    throw validationError(`incremental cursor_field "${cursorField}" is not a column of the source`, {
      data: { columns: fields.map((f) => f.name) },
    });
  }
  if (!CURSOR_TYPES.includes(field.type)) {
    throw validationError(`incremental cursor_field "${cursorField}" is ${field.type}; a cursor must be one of ${CURSOR_TYPES.join(', ')}`);
  }
  return field;
}

/** NUMERIC is staged as text: it orders as a number. */
const ordered = (expr: Expr, type: FieldType) => (type === 'NUMERIC' ? expr.cast(pl.Float64, false) : expr);

/**
 * Keeps rows whose cursor is after `after` (compared typed, so '2025-01-10' > '2025-01-9' as dates);
 * rows without a usable cursor stay, as they carry a reason and go to quarantine.
 */
export function cursorFilter(field: FieldSpec, cursor: Expr, after: string): Expr {
  const literal = parseText(pl.lit(after.trim()), field.type);
  const parsed = pl.select(literal.alias('after')).getColumn('after');
  if (parsed.isNull().getIndex(0)) {
    throw validationError(`incremental cursor "${after}" is not a valid ${field.type} for cursor_field "${field.name}"`);
  }
  return cursor.isNull().or(ordered(cursor, field.type).gt(ordered(literal, field.type)));
}

/** Aggregate giving the greatest cursor as text that parseText reads back (the next run's `after`). */
export function cursorMaxText(column: Expr, type: FieldType): Expr {
  switch (type) {
    case 'DATE':
      return column.max().dt.strftime('%Y-%m-%d');
    case 'TIMESTAMP':
      return column.max().dt.strftime('%Y-%m-%dT%H:%M:%S%.6fZ');
    case 'NUMERIC':
      return column.gather(column.cast(pl.Float64, false).argMax());
    default:
      return column.max().cast(pl.Utf8);
  }
}
