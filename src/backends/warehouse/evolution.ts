import { assertIdentifier } from '../../domain/ids.ts';
import { ConvergenceError, ExitCode, validationError } from '../../lib/errors.ts';
import type { FieldSpec, FieldType } from './port.ts';

/**
 * How incoming columns meet an existing destination. Both warehouses follow the same rules so a
 * pipeline that loads locally loads the same way into BigQuery: new columns are added (nullable),
 * a column may only be written by its own type or one BigQuery coerces without loss, and nothing
 * is ever dropped or narrowed.
 */
const COERCIBLE: Partial<Record<FieldType, FieldType[]>> = {
  INT64: ['FLOAT64', 'NUMERIC'],
  NUMERIC: ['FLOAT64'],
};

export interface SchemaPlan {
  /** The destination does not exist yet and is created with `fields`. */
  create: boolean;
  /** Destination columns after the load. */
  fields: FieldSpec[];
  /** Columns added to an existing destination. */
  add: FieldSpec[];
  /** Pairs of (incoming name, destination name) the load writes. */
  columns: Array<{ from: string; to: string; type: FieldType }>;
}

const key = (name: string) => name.toLowerCase();

export function planSchema(
  target: { dataset: string; table: string },
  existing: FieldSpec[] | undefined,
  incoming: FieldSpec[],
  mergeKeys: string[] = [],
): SchemaPlan {
  const where = `${target.dataset}.${target.table}`;
  if (incoming.length === 0) throw validationError(`the load into ${where} has no columns`);
  const seen = new Set<string>();
  for (const field of incoming) {
    assertIdentifier('column', field.name);
    if (seen.has(key(field.name))) throw validationError(`the load into ${where} repeats column "${field.name}"`);
    seen.add(key(field.name));
  }
  for (const k of mergeKeys) {
    assertIdentifier('merge key', k);
    if (!seen.has(key(k))) {
      throw validationError(`merge key "${k}" is not a column of the data loaded into ${where}`, {
        suggestion: `merge_keys must name columns of the source; it has: ${incoming.map((f) => f.name).join(', ')}`,
      });
    }
  }

  if (!existing) {
    // A fresh table is nullable throughout: REQUIRED is enforced at staging, where bad rows go to quarantine.
    const fields = incoming.map((f) => ({ name: f.name, type: f.type, mode: 'NULLABLE' as const }));
    return { create: true, fields, add: [], columns: incoming.map((f) => ({ from: f.name, to: f.name, type: f.type })) };
  }

  const byName = new Map(existing.map((f) => [key(f.name), f]));
  const problems: string[] = [];
  const add: FieldSpec[] = [];
  const columns: SchemaPlan['columns'] = [];
  for (const field of incoming) {
    const current = byName.get(key(field.name));
    if (!current) {
      add.push({ name: field.name, type: field.type, mode: 'NULLABLE' });
      columns.push({ from: field.name, to: field.name, type: field.type });
    } else if (current.type === field.type || COERCIBLE[field.type]?.includes(current.type)) {
      columns.push({ from: field.name, to: current.name, type: current.type });
    } else {
      problems.push(`column ${current.name} is ${current.type} in ${where} but the new data has ${field.type}`);
    }
  }
  for (const field of existing) {
    if (field.mode === 'REQUIRED' && !seen.has(key(field.name)))
      problems.push(`required column ${field.name} is missing from the new data`);
  }
  if (problems.length > 0) {
    throw new ConvergenceError('SCHEMA_INCOMPATIBLE', ExitCode.pipelineFailed, `cannot load into ${where}: ${problems.join('; ')}`, {
      suggestion: 'type the column in the source schema file as the destination has it, or load into a new table',
      data: { table: where, problems },
    });
  }
  return { create: false, fields: [...existing, ...add], add, columns };
}
