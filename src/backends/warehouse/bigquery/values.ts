import type { QueryParameter, TableField } from '@google-cloud/bigquery';
import { validationError } from '../../../lib/errors.ts';
import type { FieldType, Row, Scalar } from '../port.ts';

/**
 * Values between the port's Scalars and BigQuery's REST forms. Rows are read raw (f/v, every
 * scalar as text) rather than through the client's parser, so INT64 stays exact past 2^53 and the
 * Scalar conventions match the DuckDB warehouse: INT64 as number (bigint beyond 2^53), NUMERIC as
 * number, TIMESTAMP as Date (ms precision), DATE as 'YYYY-MM-DD', BYTES as base64 text, JSON as
 * its text.
 */

/** The port's type for a REST schema type; legacy names (INTEGER, FLOAT, BOOLEAN) included. */
export function fieldTypeOf(type: string | undefined): FieldType {
  switch (String(type ?? '').toUpperCase()) {
    case 'INTEGER':
    case 'INT64':
      return 'INT64';
    case 'FLOAT':
    case 'FLOAT64':
      return 'FLOAT64';
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return 'NUMERIC';
    case 'BOOLEAN':
    case 'BOOL':
      return 'BOOL';
    case 'TIMESTAMP':
      return 'TIMESTAMP';
    case 'DATE':
      return 'DATE';
    case 'JSON':
      return 'JSON';
    case 'BYTES':
      return 'BYTES';
    default:
      // DATETIME, TIME, GEOGRAPHY and the like read back as their text.
      return 'STRING';
  }
}

/** Type of an untyped `query` parameter. A null has no type of its own: it binds as a STRING NULL. */
export function inferType(value: Scalar): FieldType {
  if (value === null || typeof value === 'string') return 'STRING';
  if (typeof value === 'bigint') return 'INT64';
  if (typeof value === 'number') return Number.isInteger(value) ? 'INT64' : 'FLOAT64';
  if (typeof value === 'boolean') return 'BOOL';
  if (value instanceof Date) return 'TIMESTAMP';
  throw validationError(`unsupported value of type ${typeof value}; use string, number, bigint, boolean, Date or null`);
}

/** Plain decimal text for a number (BigQuery's NUMERIC does not read exponents). */
function decimalText(value: number): string {
  if (!Number.isFinite(value)) throw validationError(`NUMERIC cannot hold ${value}`);
  const text = String(value);
  if (!/e/i.test(text)) return text;
  return value.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
}

function isoDate(value: Date): string {
  if (Number.isNaN(value.getTime())) throw validationError('invalid Date value (NaN)');
  return value.toISOString();
}

/** The text BigQuery reads for `value` as a `type` parameter; null stays null. */
function parameterText(value: Scalar, type: FieldType, what: string): string | null {
  if (value === null) return null;
  if (value !== null && !['string', 'number', 'bigint', 'boolean'].includes(typeof value) && !(value instanceof Date)) {
    throw validationError(`unsupported value of type ${typeof value} for ${what}; use string, number, bigint, boolean, Date or null`);
  }
  switch (type) {
    case 'INT64':
      if (typeof value === 'number' && !Number.isSafeInteger(value)) {
        throw validationError(`${what} is INT64 but the value ${value} is not an integer (a bigint keeps integers past 2^53 exact)`);
      }
      if (value instanceof Date || typeof value === 'boolean') throw validationError(`${what} is INT64 but got ${String(value)}`);
      return String(value);
    case 'FLOAT64':
      if (value instanceof Date || typeof value === 'boolean') throw validationError(`${what} is FLOAT64 but got ${String(value)}`);
      return String(value);
    case 'NUMERIC':
      if (value instanceof Date || typeof value === 'boolean') throw validationError(`${what} is NUMERIC but got ${String(value)}`);
      return typeof value === 'number' ? decimalText(value) : String(value);
    case 'BOOL':
      return String(value);
    case 'TIMESTAMP':
      if (value instanceof Date) return isoDate(value);
      if (typeof value === 'number') return isoDate(new Date(value));
      return String(value);
    case 'DATE':
      return value instanceof Date ? isoDate(value).slice(0, 10) : String(value);
    case 'BYTES':
    case 'JSON':
    case 'STRING':
      return value instanceof Date ? isoDate(value) : String(value);
  }
}

export function queryParameter(name: string, value: Scalar, type: FieldType, what = `parameter @${name}`): QueryParameter {
  const text = parameterText(value, type, what);
  return { name, parameterType: { type }, parameterValue: text === null ? {} : { value: text } };
}

interface Cell {
  v?: unknown;
}

function decodeTimestamp(text: string): Date {
  // formatOptions.useInt64Timestamp gives microseconds; older responses give float seconds.
  if (/^-?\d+$/.test(text)) {
    const micros = BigInt(text);
    const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
    return new Date(Number(ms));
  }
  return new Date(Math.round(Number(text) * 1000));
}

function decodeInteger(text: string): number | bigint {
  const n = BigInt(text);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

/** Nested values (RECORD, REPEATED) have no Scalar of their own: they read back as JSON text. */
function decodeNested(value: unknown, field: TableField): unknown {
  if (value === null || value === undefined) return null;
  if (field.mode === 'REPEATED') return (value as Cell[]).map((c) => decodeNested(c.v, { ...field, mode: 'NULLABLE' }));
  if (field.type === 'RECORD' || field.type === 'STRUCT') {
    const cells = (value as { f?: Cell[] }).f ?? [];
    return Object.fromEntries((field.fields ?? []).map((f, i) => [f.name, decodeNested(cells[i]?.v, f)]));
  }
  const scalar = decodeValue(value, field);
  return typeof scalar === 'bigint' ? scalar.toString() : scalar instanceof Date ? scalar.toISOString() : scalar;
}

function decodeValue(value: unknown, field: TableField): Scalar {
  if (value === null || value === undefined) return null;
  if (field.mode === 'REPEATED' || field.type === 'RECORD' || field.type === 'STRUCT') return JSON.stringify(decodeNested(value, field));
  const text = String(value);
  switch (fieldTypeOf(field.type)) {
    case 'INT64':
      return decodeInteger(text);
    case 'FLOAT64':
    case 'NUMERIC':
      return Number(text);
    case 'BOOL':
      return text === 'true';
    case 'TIMESTAMP':
      return decodeTimestamp(text);
    default:
      return text;
  }
}

/** f/v rows as Rows keyed by the schema's column names. */
export function decodeRows(fields: TableField[], rows: Array<{ f?: Cell[] }>): Row[] {
  return rows.map((row) => {
    const out: Row = {};
    fields.forEach((field, i) => {
      out[field.name!] = decodeValue(row.f?.[i]?.v, field);
    });
    return out;
  });
}
