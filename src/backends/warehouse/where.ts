import { assertIdentifier } from '../../domain/ids.ts';
import { validationError } from '../../lib/errors.ts';
import type { Scalar, SelectOptions, Where } from './port.ts';

/** A column as a dialect writes it: its quoted name, and how a value compared with it is bound. */
export interface BoundColumn {
  sql: string;
  bind(value: Scalar): string;
}

/**
 * The conditions of a Where as SQL terms to AND together, the same for every dialect: a bare
 * value means equality, null means IS NULL, an empty `in` list matches nothing.
 */
export function whereTerms(where: Where | undefined, column: (name: string) => BoundColumn): string[] {
  const terms: string[] = [];
  for (const [name, condition] of Object.entries(where ?? {})) {
    const { sql: col, bind } = column(name);
    const cmp =
      condition !== null && typeof condition === 'object' && !(condition instanceof Date)
        ? condition
        : { op: '=' as const, value: condition };
    switch (cmp.op) {
      case 'is null':
        terms.push(`${col} IS NULL`);
        break;
      case 'is not null':
        terms.push(`${col} IS NOT NULL`);
        break;
      case 'in':
        if (!Array.isArray(cmp.values)) throw validationError(`"in" on column ${name} needs a values array`);
        terms.push(cmp.values.length === 0 ? 'FALSE' : `${col} IN (${cmp.values.map(bind).join(', ')})`);
        break;
      case '=':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        if (cmp.value === null) {
          if (cmp.op === '=') terms.push(`${col} IS NULL`);
          else if (cmp.op === '!=') terms.push(`${col} IS NOT NULL`);
          else throw validationError(`cannot compare column ${name} with null using ${cmp.op}`);
        } else {
          terms.push(`${col} ${cmp.op} ${bind(cmp.value)}`);
        }
        break;
      default:
        throw validationError(`unknown comparison operator on column ${name}`);
    }
  }
  return terms;
}

function assertCount(kind: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw validationError(`${kind} must be a non-negative integer, got ${value}`);
  }
}

/** Everything a select names is checked before any SQL is built, whatever the warehouse. */
export function assertSelect(dataset: string, table: string, options: SelectOptions): void {
  assertIdentifier('dataset', dataset);
  assertIdentifier('table', table);
  for (const name of [...(options.columns ?? []), ...Object.keys(options.where ?? {}), ...(options.orderBy ?? []).map((o) => o[0])]) {
    assertIdentifier('column', name);
  }
  for (const [, direction] of options.orderBy ?? []) {
    if (direction !== 'asc' && direction !== 'desc')
      throw validationError(`order direction must be asc or desc, got ${JSON.stringify(direction)}`);
  }
  assertCount('limit', options.limit);
  assertCount('offset', options.offset);
}
