/**
 * Types and values on both sides of the fake: BigQuery's REST forms (legacy type names, f/v rows
 * with every scalar as text, base64 BYTES, TIMESTAMP as int64 microseconds or float seconds) and
 * the DuckDB types that hold the data.
 */
import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBListType,
  DuckDBListValue,
  DuckDBStructType,
  DuckDBStructValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  listValue,
  type DuckDBDecimalType,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';
import { invalid, invalidQuery } from './errors.ts';

export interface Field {
  name: string;
  type: string;
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
  description?: string;
  fields?: Field[];
}

export interface TableSchema {
  fields: Field[];
}

/** The names tables.get answers with, whichever spelling created the column. */
const CANONICAL: Record<string, string> = {
  STRING: 'STRING',
  BYTES: 'BYTES',
  INTEGER: 'INTEGER',
  INT64: 'INTEGER',
  FLOAT: 'FLOAT',
  FLOAT64: 'FLOAT',
  NUMERIC: 'NUMERIC',
  BIGNUMERIC: 'BIGNUMERIC',
  BOOLEAN: 'BOOLEAN',
  BOOL: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMP',
  DATE: 'DATE',
  TIME: 'TIME',
  DATETIME: 'DATETIME',
  GEOGRAPHY: 'GEOGRAPHY',
  JSON: 'JSON',
  RECORD: 'RECORD',
  STRUCT: 'RECORD',
};

export function canonicalType(type: string | undefined): string {
  const canonical = CANONICAL[String(type ?? '').toUpperCase()];
  if (!canonical) throw invalid(`Invalid value for type: ${type} is not a valid value`);
  return canonical;
}

const DUCK_TYPE: Record<string, string> = {
  STRING: 'VARCHAR',
  BYTES: 'BLOB',
  INTEGER: 'BIGINT',
  FLOAT: 'DOUBLE',
  NUMERIC: 'DECIMAL(38,9)',
  BIGNUMERIC: 'DECIMAL(38,9)',
  BOOLEAN: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMPTZ',
  DATE: 'DATE',
  TIME: 'TIME',
  DATETIME: 'TIMESTAMP',
  GEOGRAPHY: 'VARCHAR',
  JSON: 'JSON',
};

export function duckType(field: Pick<Field, 'type' | 'mode' | 'fields' | 'name'>): string {
  const type = canonicalType(field.type);
  let sql: string;
  if (type === 'RECORD') {
    if (!field.fields?.length) throw invalid(`Field ${field.name} is type RECORD but has no schema`);
    sql = `STRUCT(${field.fields.map((f) => `"${f.name}" ${duckType(f)}`).join(', ')})`;
  } else {
    sql = DUCK_TYPE[type]!;
  }
  return field.mode === 'REPEATED' ? `${sql}[]` : sql;
}

/** Normalised copy of a schema from a request (validates names and types). */
export function normaliseFields(fields: Field[] | undefined, where: string): Field[] {
  if (!Array.isArray(fields)) return [];
  const seen = new Set<string>();
  return fields.map((f) => {
    if (typeof f?.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,299}$/.test(f.name)) {
      throw invalid(
        `Invalid field name "${f?.name}". Fields must contain only letters, numbers, and underscores, start with a letter or underscore, and be at most 300 characters long.`,
      );
    }
    if (seen.has(f.name.toLowerCase())) throw invalid(`Field ${f.name} already exists in schema of ${where}`);
    seen.add(f.name.toLowerCase());
    const mode = String(f.mode ?? 'NULLABLE').toUpperCase();
    if (!['NULLABLE', 'REQUIRED', 'REPEATED'].includes(mode)) throw invalid(`Invalid mode ${f.mode} for field ${f.name}`);
    const type = canonicalType(f.fields?.length && !f.type ? 'RECORD' : f.type);
    return {
      name: f.name,
      type,
      mode: mode as Field['mode'],
      ...(f.description ? { description: f.description } : {}),
      ...(type === 'RECORD' ? { fields: normaliseFields(f.fields, where) } : {}),
    };
  });
}

/** BigQuery field for a DuckDB result column. */
export function fieldFromDuck(name: string, type: DuckDBType): Field {
  if (type instanceof DuckDBListType) return { ...fieldFromDuck(name, type.valueType), mode: 'REPEATED' };
  if (type instanceof DuckDBStructType) {
    return { name, type: 'RECORD', mode: 'NULLABLE', fields: type.entryNames.map((n, i) => fieldFromDuck(n, type.entryTypes[i]!)) };
  }
  return { name, type: bigQueryType(type), mode: 'NULLABLE' };
}

function bigQueryType(type: DuckDBType): string {
  if (type.alias === 'JSON') return 'JSON';
  switch (type.typeId) {
    case DuckDBTypeId.VARCHAR:
    case DuckDBTypeId.UUID:
    case DuckDBTypeId.ENUM:
      return 'STRING';
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UTINYINT:
      return 'INTEGER';
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
      return 'FLOAT';
    case DuckDBTypeId.DECIMAL:
      return (type as DuckDBDecimalType).scale > 9 ? 'BIGNUMERIC' : 'NUMERIC';
    case DuckDBTypeId.BOOLEAN:
      return 'BOOLEAN';
    case DuckDBTypeId.TIMESTAMP_TZ:
      return 'TIMESTAMP';
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_NS:
      return 'DATETIME';
    case DuckDBTypeId.DATE:
      return 'DATE';
    case DuckDBTypeId.TIME:
      return 'TIME';
    case DuckDBTypeId.BLOB:
      return 'BYTES';
    case DuckDBTypeId.INTERVAL:
      return 'INTERVAL';
    case DuckDBTypeId.SQLNULL:
      return 'INT64';
    default:
      return 'STRING';
  }
}

/** BigQuery field for a catalog column, from duckdb_columns().data_type. */
export function fieldFromDataType(name: string, dataType: string, nullable: boolean): Field {
  const t = dataType.toUpperCase();
  let type = 'STRING';
  if (t === 'JSON') type = 'JSON';
  else if (/^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)$/.test(t)) type = 'INTEGER';
  else if (t === 'DOUBLE' || t === 'FLOAT') type = 'FLOAT';
  else if (t.startsWith('DECIMAL')) type = /,\s*(\d+)\)/.exec(t) && Number(/,\s*(\d+)\)/.exec(t)![1]) > 9 ? 'BIGNUMERIC' : 'NUMERIC';
  else if (t === 'BOOLEAN') type = 'BOOLEAN';
  else if (t === 'TIMESTAMP WITH TIME ZONE') type = 'TIMESTAMP';
  else if (t.startsWith('TIMESTAMP')) type = 'DATETIME';
  else if (t === 'DATE') type = 'DATE';
  else if (t === 'TIME') type = 'TIME';
  else if (t === 'BLOB') type = 'BYTES';
  return { name, type, mode: nullable ? 'NULLABLE' : 'REQUIRED' };
}

export interface Cell {
  v: unknown;
}
export interface FvRow {
  f: Cell[];
}

export interface EncodeOptions {
  /** formatOptions.useInt64Timestamp: microseconds since the epoch instead of float seconds. */
  int64Timestamp: boolean;
}

const trimDecimal = (text: string) => (text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text);

function encodeScalar(value: DuckDBValue, field: Field, options: EncodeOptions): unknown {
  if (value === null) return null;
  switch (field.type) {
    case 'INTEGER':
      return String(value);
    case 'FLOAT':
      return typeof value === 'number' ? String(value) : String(Number(value));
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return value instanceof DuckDBDecimalValue ? trimDecimal(value.toString()) : trimDecimal(String(value));
    case 'BOOLEAN':
      return value ? 'true' : 'false';
    case 'TIMESTAMP': {
      if (!(value instanceof DuckDBTimestampTZValue || value instanceof DuckDBTimestampValue)) return String(value);
      const micros = value.micros;
      if (options.int64Timestamp) return micros.toString();
      const seconds = Number(micros) / 1e6;
      return seconds.toExponential().replace('e+', 'E').replace('e-', 'E-');
    }
    case 'DATETIME':
      return String(value).replace(' ', 'T');
    case 'DATE':
      return value instanceof DuckDBDateValue ? value.toString() : String(value);
    case 'BYTES':
      return value instanceof DuckDBBlobValue ? Buffer.from(value.bytes).toString('base64') : Buffer.from(String(value)).toString('base64');
    case 'RECORD': {
      const entries = value instanceof DuckDBStructValue ? value.entries : {};
      return { f: (field.fields ?? []).map((f) => encodeCell(entries[f.name] ?? null, f, options)) };
    }
    default:
      return String(value);
  }
}

export function encodeCell(value: DuckDBValue, field: Field, options: EncodeOptions): Cell {
  if (field.mode === 'REPEATED') {
    const items = value instanceof DuckDBListValue ? value.items : [];
    return { v: items.map((item) => ({ v: encodeScalar(item, { ...field, mode: 'NULLABLE' }, options) })) };
  }
  return { v: encodeScalar(value, field, options) };
}

export function encodeRow(values: DuckDBValue[], fields: Field[], options: EncodeOptions): FvRow {
  return { f: fields.map((field, i) => encodeCell(values[i] ?? null, field, options)) };
}

export interface QueryParameter {
  name?: string;
  parameterType?: { type?: string; arrayType?: { type?: string } };
  parameterValue?: { value?: unknown; arrayValues?: Array<{ value?: unknown }> };
}

export interface BoundParameters {
  /** Lower-cased BigQuery name -> SQL that reads the bound value with its type. */
  expressions: Map<string, string>;
  values: Record<string, DuckDBValue>;
}

function readExpression(slot: string, type: string): string {
  if (type === 'BYTES') return `from_base64(CAST($${slot} AS VARCHAR))`;
  return `CAST($${slot} AS ${DUCK_TYPE[type]})`;
}

/** queryParameters of a named-parameter query, typed the way BigQuery would type them. */
export function bindParameters(parameters: QueryParameter[] | undefined, mode: string | undefined): BoundParameters {
  const bound: BoundParameters = { expressions: new Map(), values: {} };
  if (!parameters?.length) return bound;
  if (mode && mode.toUpperCase() !== 'NAMED') throw invalidQuery('Positional query parameters are not supported by this fake');
  parameters.forEach((p, index) => {
    if (!p.name) throw invalidQuery('Named query parameters must have a name');
    const slot = `bqp_${index}`;
    const declared = String(p.parameterType?.type ?? '').toUpperCase();
    if (declared === 'ARRAY') {
      const elementType = canonicalType(p.parameterType?.arrayType?.type);
      if (elementType === 'BYTES' || elementType === 'RECORD')
        throw invalidQuery(`ARRAY<${elementType}> parameters are not supported by this fake`);
      const items = (p.parameterValue?.arrayValues ?? []).map((v) => (v.value === undefined || v.value === null ? null : String(v.value)));
      bound.values[slot] = listValue(items);
      bound.expressions.set(p.name.toLowerCase(), `CAST($${slot} AS ${DUCK_TYPE[elementType]}[])`);
      return;
    }
    const type = canonicalType(declared);
    if (type === 'RECORD') throw invalidQuery('STRUCT parameters are not supported by this fake');
    const raw = p.parameterValue?.value;
    bound.values[slot] = raw === undefined || raw === null ? null : String(raw);
    bound.expressions.set(p.name.toLowerCase(), readExpression(slot, type));
  });
  return bound;
}

/** An insertAll JSON value as text DuckDB can cast to the column's type. */
export function jsonCellText(value: unknown, field: Field): string | null {
  if (value === null || value === undefined) return null;
  if (field.type === 'TIMESTAMP' && typeof value === 'number') return new Date(value * 1000).toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export { readExpression };
