import type { FieldType } from '../../backends/warehouse/port.ts';
import { widerType } from './fields.ts';
import { PATTERNS } from './typing.ts';

/**
 * Type inference from samples, for sources without a schema file. It uses the same patterns the
 * parser accepts, so an inferred column always parses its own sample. Integers with a leading zero
 * (zip codes, account numbers) stay text: a number type would drop the zero.
 */
const leadingZero = /^[+-]?0[0-9]/;

/** The type a text value (a CSV field) suggests; undefined for a blank. */
export function textType(raw: string): FieldType | undefined {
  const s = raw.trim();
  if (s === '') return undefined;
  if (leadingZero.test(s)) return 'STRING';
  if (PATTERNS.integer.test(s)) return 'INT64';
  if (PATTERNS.float.test(s)) return 'FLOAT64';
  if (PATTERNS.bool.test(s)) return 'BOOL';
  if (PATTERNS.date.test(s)) return 'DATE';
  if (PATTERNS.timestamp.test(s)) return 'TIMESTAMP';
  return 'STRING';
}

/** The type a parsed JSON value suggests; undefined for null. Nested values are JSON. */
export function valueType(value: unknown): FieldType | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isSafeInteger(value) ? 'INT64' : 'FLOAT64';
    case 'bigint':
      return 'INT64';
    case 'boolean':
      return 'BOOL';
    case 'string':
      if (PATTERNS.date.test(value)) return 'DATE';
      if (PATTERNS.timestamp.test(value)) return 'TIMESTAMP';
      return 'STRING';
    case 'object':
      return value === null ? undefined : 'JSON';
    default:
      return undefined;
  }
}

/** Folds sample types into one column type; a column with no value at all is STRING. */
export class TypeVote {
  private type: FieldType | undefined;

  add(type: FieldType | undefined): void {
    if (type === undefined) return;
    this.type = this.type === undefined ? type : widerType(this.type, type);
  }

  get result(): FieldType {
    return this.type ?? 'STRING';
  }
}
