import type { FieldSpec, FieldType } from '../../backends/warehouse/port.ts';
import type { TableSchemaFile } from '../../domain/pipeline.ts';
import { IDENTIFIER_PATTERN } from '../../domain/ids.ts';
import { validationError } from '../../lib/errors.ts';
import { BOOKKEEPING_COLUMNS } from '../../backends/warehouse/staged.ts';

/** BigQuery's legacy type names in schema files, mapped to the warehouse's standard ones. */
const TYPE_ALIASES: Record<TableSchemaFile[number]['type'], FieldType> = {
  STRING: 'STRING',
  INT64: 'INT64',
  INTEGER: 'INT64',
  FLOAT64: 'FLOAT64',
  FLOAT: 'FLOAT64',
  NUMERIC: 'NUMERIC',
  BOOL: 'BOOL',
  BOOLEAN: 'BOOL',
  TIMESTAMP: 'TIMESTAMP',
  DATE: 'DATE',
  JSON: 'JSON',
  BYTES: 'BYTES',
};

export function fieldsFromSchema(schema: TableSchemaFile): FieldSpec[] {
  const fields = schema.map((f) => ({
    name: f.name,
    type: TYPE_ALIASES[f.type],
    ...(f.mode ? { mode: f.mode } : {}),
    ...(f.description ? { description: f.description } : {}),
  }));
  assertUsableNames(fields.map((f) => f.name));
  return fields;
}

/** A destination column may not shadow the bookkeeping columns the load relies on. */
function assertUsableNames(names: string[]): void {
  const clash = names.find((n) => (BOOKKEEPING_COLUMNS as readonly string[]).includes(n));
  if (clash) throw validationError(`column "${clash}" clashes with a bookkeeping column of the staging files; rename it`);
}

/** The type two samples of one column agree on: numbers widen to FLOAT64, dates to TIMESTAMP, anything else to STRING. */
export function widerType(a: FieldType, b: FieldType): FieldType {
  if (a === b) return a;
  const pair = new Set([a, b]);
  if (pair.has('INT64') && pair.has('FLOAT64')) return 'FLOAT64';
  if (pair.has('DATE') && pair.has('TIMESTAMP')) return 'TIMESTAMP';
  return 'STRING';
}

/**
 * Source column names become warehouse identifiers (letters, digits, `_`): "Cost (USD)" becomes
 * `Cost_USD`. Used only when there is no schema file; with one, the schema's names win.
 */
function identifierFor(raw: string, position: number): string {
  const reserved = (n: string) => (BOOKKEEPING_COLUMNS as readonly string[]).includes(n);
  if (IDENTIFIER_PATTERN.test(raw) && !reserved(raw)) return raw;
  let name = raw
    .trim()
    .replace(/[^A-Za-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (name === '') name = `column_${position + 1}`;
  if (/^[0-9]/.test(name)) name = `_${name}`;
  if (reserved(name)) name = `source${name}`;
  return name.slice(0, 128);
}

/** An identifier for a raw name that is not yet in `used` (compared case-insensitively, as BigQuery does). */
export function uniqueIdentifier(raw: string, position: number, used: Set<string>): string {
  const base = identifierFor(raw, position);
  let name = base;
  for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base}_${n}`;
  used.add(name.toLowerCase());
  return name;
}

/** Maps raw names to unique identifiers; `renamed` lists what changed, for a warning. */
export function identifiersFor(rawNames: string[]): { names: string[]; renamed: string[] } {
  const used = new Set<string>();
  const names = rawNames.map((raw, i) => uniqueIdentifier(raw, i, used));
  const renamed = rawNames.flatMap((raw, i) => (names[i] === raw ? [] : [`"${raw}" -> ${names[i]}`]));
  return { names, renamed };
}

/** Finds the source column for a schema field: the exact name, else a case-insensitive or identifier match. */
export function matchColumn(field: string, columns: string[]): string | undefined {
  if (columns.includes(field)) return field;
  const lower = field.toLowerCase();
  return columns.find((c) => c.toLowerCase() === lower) ?? columns.find((c, i) => identifierFor(c, i).toLowerCase() === lower);
}
