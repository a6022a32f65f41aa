import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  timestampTZValue,
  type DuckDBConnection,
  type DuckDBValue,
} from '@duckdb/node-api';
import { assertIdentifier } from '../../../domain/ids.ts';
import { notFoundError, validationError } from '../../../lib/errors.ts';
import type { FieldType, Row, Scalar, Where, WriteOp } from '../port.ts';
import { Params } from '../params.ts';
import { whereTerms } from '../where.ts';

/** SQL building blocks of the DuckDB warehouse: one connection's session, bound values, DML. */
export const SQL_TYPE: Record<FieldType, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  FLOAT64: 'DOUBLE',
  NUMERIC: 'DECIMAL(38,9)',
  BOOL: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMPTZ',
  DATE: 'DATE',
  JSON: 'JSON',
  BYTES: 'BLOB',
};

export function fieldType(dataType: string): FieldType {
  if (dataType === 'VARCHAR') return 'STRING';
  if (/^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)$/.test(dataType)) return 'INT64';
  if (dataType === 'DOUBLE' || dataType === 'FLOAT') return 'FLOAT64';
  if (dataType.startsWith('DECIMAL')) return 'NUMERIC';
  if (dataType === 'BOOLEAN') return 'BOOL';
  if (dataType.startsWith('TIMESTAMP')) return 'TIMESTAMP';
  if (dataType === 'DATE') return 'DATE';
  if (dataType === 'JSON') return 'JSON';
  if (dataType === 'BLOB') return 'BYTES';
  // Tables made by `query` may hold types the port has no name for; their text form is a string.
  return 'STRING';
}

export const q = (id: string) => `"${id}"`;
/** Catalog type names we are willing to write into a CAST; anything else is bound uncast. */
const CASTABLE = /^[A-Z][A-Z0-9_ ]*(\(\d+(,\d+)?\))?$/;
export const INSERT_CHUNK = 500;

export interface Column {
  name: string;
  dataType: string;
}

/** The values of one DuckDB statement, in DuckDB's form, behind `$name` placeholders. */
export type DuckParams = Params<DuckDBValue>;

export const duckParams = (): DuckParams => new Params<DuckDBValue>({ placeholder: '$' });

/** Binds a value; with a column, the placeholder is cast to the column's type so comparisons type-check. */
export function bindValue(params: DuckParams, value: Scalar, column?: Column): string {
  const ref = params.add(toDuck(value));
  if (!column) return ref;
  if (column.dataType === 'BLOB') return `from_base64(CAST(${ref} AS VARCHAR))`;
  return CASTABLE.test(column.dataType) ? `CAST(${ref} AS ${column.dataType})` : ref;
}

export function toDuck(value: Scalar): DuckDBValue {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw validationError('invalid Date value (NaN)');
    return timestampTZValue(BigInt(ms) * 1000n);
  }
  if (value !== null && !['string', 'number', 'bigint', 'boolean'].includes(typeof value)) {
    throw validationError(`unsupported value of type ${typeof value}; use string, number, bigint, boolean, Date or null`);
  }
  return value;
}

const microsToDate = (micros: bigint) => {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  return new Date(Number(ms));
};

function fromDuck(value: DuckDBValue): Scalar {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint' && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) {
      return Number(value);
    }
    return value;
  }
  if (value instanceof DuckDBDecimalValue) return value.toDouble();
  if (value instanceof DuckDBTimestampTZValue || value instanceof DuckDBTimestampValue) {
    // 'infinity' timestamps have no Date; their text is the honest answer.
    return value.isFinite ? microsToDate(value.micros) : value.toString();
  }
  if (value instanceof DuckDBTimestampMillisecondsValue) return new Date(Number(value.millis));
  if (value instanceof DuckDBTimestampSecondsValue) return new Date(Number(value.seconds) * 1000);
  if (value instanceof DuckDBTimestampNanosecondsValue) return new Date(Number(value.nanos / 1_000_000n));
  if (value instanceof DuckDBDateValue) return value.toString();
  if (value instanceof DuckDBBlobValue) return Buffer.from(value.bytes).toString('base64');
  return String(value);
}

/**
 * Rewrites `@name` placeholders to DuckDB's `$name`, skipping string literals, quoted
 * identifiers and comments so an email address in a literal stays untouched.
 */
export function translatePlaceholders(sql: string): { sql: string; names: string[] } {
  const names: string[] = [];
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const rest = sql.slice(i);
    let skip = 0;
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) j += 2;
          else break;
        } else j++;
      }
      skip = j + 1 - i;
    } else if (rest.startsWith('--')) {
      const end = sql.indexOf('\n', i);
      skip = (end === -1 ? sql.length : end) - i;
    } else if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', i + 2);
      skip = (end === -1 ? sql.length : end + 2) - i;
    } else if (ch === '@') {
      const m = /^@([A-Za-z_][A-Za-z0-9_]*)/.exec(rest);
      if (m) {
        names.push(m[1]!);
        out += `$${m[1]}`;
        i += m[0].length;
        continue;
      }
    }
    if (skip > 0) {
      out += sql.slice(i, i + skip);
      i += skip;
    } else {
      out += ch;
      i++;
    }
  }
  return { sql: out, names: [...new Set(names)] };
}

/** One open connection; everything SQL-shaped happens here. */
export class Session {
  readonly #conn: DuckDBConnection;

  constructor(conn: DuckDBConnection) {
    this.#conn = conn;
  }

  async rows(sql: string, params: Record<string, DuckDBValue> = {}): Promise<Row[]> {
    const reader = await this.#conn.runAndReadAll(sql, params);
    const names = reader.deduplicatedColumnNames();
    return reader.getRows().map((values) => {
      const row: Row = {};
      values.forEach((value, index) => {
        row[names[index]!] = fromDuck(value);
      });
      return row;
    });
  }

  async exec(sql: string, params: Record<string, DuckDBValue> = {}): Promise<number> {
    const result = await this.#conn.run(sql, params);
    return result.rowsChanged;
  }

  async datasetExists(dataset: string): Promise<boolean> {
    const rows = await this.rows('SELECT 1 FROM duckdb_schemas() WHERE database_name = current_database() AND schema_name = $d', {
      d: dataset,
    });
    return rows.length > 0;
  }

  async columns(dataset: string, table: string): Promise<Column[] | undefined> {
    const rows = await this.rows(
      `SELECT column_name, data_type FROM duckdb_columns()
       WHERE database_name = current_database() AND schema_name = $d AND table_name = $t ORDER BY column_index`,
      { d: dataset, t: table },
    );
    if (rows.length === 0) return undefined;
    return rows.map((r) => ({ name: String(r['column_name']), dataType: String(r['data_type']) }));
  }

  /** Column lookup that reports unknown tables and columns as our errors, not DuckDB's. */
  async table(dataset: string, table: string) {
    const columns = await this.columns(dataset, table);
    if (!columns) throw notFoundError(`table ${dataset}.${table} does not exist`);
    const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
    return {
      ref: `${q(dataset)}.${q(table)}`,
      column(name: string): Column {
        assertIdentifier('column', name);
        const column = byName.get(name.toLowerCase());
        if (!column) throw validationError(`table ${dataset}.${table} has no column "${name}"`);
        return column;
      },
    };
  }
}

export type TableHandle = Awaited<ReturnType<Session['table']>>;

export function whereClause(where: Where | undefined, table: TableHandle, params: DuckParams): string {
  const terms = whereTerms(where, (name) => {
    const column = table.column(name);
    return { sql: q(column.name), bind: (value) => bindValue(params, value, column) };
  });
  return terms.length ? ` WHERE ${terms.join(' AND ')}` : '';
}

export async function insertRows(s: Session, dataset: string, table: string, rows: Row[]): Promise<void> {
  const t = await s.table(dataset, table);
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    const chunk = rows.slice(start, start + INSERT_CHUNK);
    const names = [...new Set(chunk.flatMap((row) => Object.keys(row)))];
    const columns = names.map((name) => t.column(name));
    if (columns.length === 0) {
      for (let i = 0; i < chunk.length; i++) await s.exec(`INSERT INTO ${t.ref} DEFAULT VALUES`);
      continue;
    }
    const params = duckParams();
    const tuples = chunk.map((row) => `(${columns.map((c, i) => bindValue(params, row[names[i]!] ?? null, c)).join(', ')})`);
    await s.exec(`INSERT INTO ${t.ref} (${columns.map((c) => q(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`, params.values);
  }
}

export async function updateRows(s: Session, dataset: string, table: string, set: Row, where: Where): Promise<number> {
  const t = await s.table(dataset, table);
  const entries = Object.entries(set);
  if (entries.length === 0) throw validationError(`update of ${dataset}.${table} sets no columns`);
  const params = duckParams();
  const assignments = entries.map(([name, value]) => {
    const column = t.column(name);
    return `${q(column.name)} = ${bindValue(params, value, column)}`;
  });
  return s.exec(`UPDATE ${t.ref} SET ${assignments.join(', ')}${whereClause(where, t, params)}`, params.values);
}

export async function deleteRows(s: Session, dataset: string, table: string, where: Where): Promise<number> {
  const t = await s.table(dataset, table);
  const params = duckParams();
  return s.exec(`DELETE FROM ${t.ref}${whereClause(where, t, params)}`, params.values);
}

export function checkOp(op: WriteOp): void {
  assertIdentifier('dataset', op.dataset);
  assertIdentifier('table', op.table);
  const names = op.kind === 'insert' ? op.rows.flatMap((r) => Object.keys(r)) : op.kind === 'update' ? Object.keys(op.set) : [];
  for (const name of [...names, ...Object.keys(op.kind === 'insert' ? {} : op.where)]) assertIdentifier('column', name);
}

export async function inTransaction<T>(s: Session, work: () => Promise<T>): Promise<T> {
  await s.exec('BEGIN TRANSACTION');
  try {
    const result = await work();
    await s.exec('COMMIT');
    return result;
  } catch (err) {
    await s.exec('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** One WriteOp inside an open session (and usually a transaction). */
export async function applyWriteOp(s: Session, op: WriteOp): Promise<void> {
  if (op.kind === 'insert') await insertRows(s, op.dataset, op.table, op.rows);
  else if (op.kind === 'update') await updateRows(s, op.dataset, op.table, op.set, op.where);
  else if (op.kind === 'delete') await deleteRows(s, op.dataset, op.table, op.where);
  else throw validationError(`unknown write operation ${JSON.stringify((op as { kind: unknown }).kind)}`);
}
