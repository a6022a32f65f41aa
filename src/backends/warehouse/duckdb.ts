import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  timestampTZValue,
  type DuckDBConnection,
  type DuckDBValue,
} from '@duckdb/node-api';
import { assertIdentifier } from '../../domain/ids.ts';
import { ConvergenceError, ExitCode, isConvergenceError, notFoundError, validationError } from '../../lib/errors.ts';
import type { FieldSpec, FieldType, Row, Scalar, SelectOptions, TableSpec, Warehouse, Where, WriteOp } from './port.ts';

/**
 * Local Warehouse on one DuckDB file, one schema per dataset.
 *
 * DuckDB lets a single process open a file for writing, and CLI commands, pipeline runs and
 * `serve` run side by side. So nothing holds the file between calls: every call opens it, runs
 * and closes it (about 10 ms), retrying the open while another process has it. Inside a process
 * calls go through one queue per file, because two instances of the same file in one process
 * would not exclude each other.
 *
 * Values read back as Scalars: BIGINT as number (bigint past 2^53), DECIMAL as number,
 * TIMESTAMP as Date (ms precision), DATE as 'YYYY-MM-DD', BYTES as a base64 string (the same
 * form BigQuery's REST API uses; BYTES values are written as base64 strings too), JSON as its
 * text. Table and column descriptions are not kept locally: DuckDB's COMMENT takes no bound
 * parameters and values are never spliced into SQL.
 */
export interface DuckDbWarehouseOptions {
  file: string;
  /** How long to keep retrying while another process holds the file. */
  busyTimeoutMs?: number;
}

const SQL_TYPE: Record<FieldType, string> = {
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

function fieldType(dataType: string): FieldType {
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

const q = (id: string) => `"${id}"`;
const BUSY = /Could not set lock on file|Conflicting lock/i;
/** Catalog type names we are willing to write into a CAST; anything else is bound uncast. */
const CASTABLE = /^[A-Z][A-Z0-9_ ]*(\(\d+(,\d+)?\))?$/;
const INSERT_CHUNK = 500;

interface Column {
  name: string;
  dataType: string;
}

/** Collects bound values; each placeholder is cast to its column's type so comparisons type-check. */
class Params {
  readonly values: Record<string, DuckDBValue> = {};
  #next = 0;

  add(value: Scalar, column?: Column): string {
    const name = `p${this.#next++}`;
    this.values[name] = toDuck(value);
    const ref = `$${name}`;
    if (!column) return ref;
    if (column.dataType === 'BLOB') return `from_base64(CAST(${ref} AS VARCHAR))`;
    return CASTABLE.test(column.dataType) ? `CAST(${ref} AS ${column.dataType})` : ref;
  }
}

function toDuck(value: Scalar): DuckDBValue {
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
class Session {
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

type TableHandle = Awaited<ReturnType<Session['table']>>;

function whereClause(where: Where | undefined, table: TableHandle, params: Params): string {
  const terms: string[] = [];
  for (const [name, condition] of Object.entries(where ?? {})) {
    const column = table.column(name);
    const col = q(column.name);
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
        terms.push(cmp.values.length === 0 ? 'FALSE' : `${col} IN (${cmp.values.map((v) => params.add(v, column)).join(', ')})`);
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
          terms.push(`${col} ${cmp.op} ${params.add(cmp.value, column)}`);
        }
        break;
      default:
        throw validationError(`unknown comparison operator on column ${name}`);
    }
  }
  return terms.length ? ` WHERE ${terms.join(' AND ')}` : '';
}

function assertCount(kind: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw validationError(`${kind} must be a non-negative integer, got ${value}`);
  }
}

async function insertRows(s: Session, dataset: string, table: string, rows: Row[]): Promise<void> {
  const t = await s.table(dataset, table);
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    const chunk = rows.slice(start, start + INSERT_CHUNK);
    const names = [...new Set(chunk.flatMap((row) => Object.keys(row)))];
    const columns = names.map((name) => t.column(name));
    if (columns.length === 0) {
      for (let i = 0; i < chunk.length; i++) await s.exec(`INSERT INTO ${t.ref} DEFAULT VALUES`);
      continue;
    }
    const params = new Params();
    const tuples = chunk.map((row) => `(${columns.map((c, i) => params.add(row[names[i]!] ?? null, c)).join(', ')})`);
    await s.exec(`INSERT INTO ${t.ref} (${columns.map((c) => q(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`, params.values);
  }
}

async function updateRows(s: Session, dataset: string, table: string, set: Row, where: Where): Promise<number> {
  const t = await s.table(dataset, table);
  const entries = Object.entries(set);
  if (entries.length === 0) throw validationError(`update of ${dataset}.${table} sets no columns`);
  const params = new Params();
  const assignments = entries.map(([name, value]) => {
    const column = t.column(name);
    return `${q(column.name)} = ${params.add(value, column)}`;
  });
  return s.exec(`UPDATE ${t.ref} SET ${assignments.join(', ')}${whereClause(where, t, params)}`, params.values);
}

async function deleteRows(s: Session, dataset: string, table: string, where: Where): Promise<number> {
  const t = await s.table(dataset, table);
  const params = new Params();
  return s.exec(`DELETE FROM ${t.ref}${whereClause(where, t, params)}`, params.values);
}

function checkOp(op: WriteOp): void {
  assertIdentifier('dataset', op.dataset);
  assertIdentifier('table', op.table);
  const names = op.kind === 'insert' ? op.rows.flatMap((r) => Object.keys(r)) : op.kind === 'update' ? Object.keys(op.set) : [];
  for (const name of [...names, ...Object.keys(op.kind === 'insert' ? {} : op.where)]) assertIdentifier('column', name);
}

/** Per-file queue shared by every instance in this process. */
const queues = new Map<string, Promise<unknown>>();

function enqueue<T>(key: string, task: () => Promise<T>): Promise<T> {
  const result = (queues.get(key) ?? Promise.resolve()).then(task, task);
  const tail = result.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return result;
}

export class DuckDbWarehouse implements Warehouse {
  readonly dialect = 'duckdb' as const;
  readonly describe: string;
  readonly #file: string;
  readonly #busyTimeoutMs: number;
  #dirReady = false;

  constructor(options: DuckDbWarehouseOptions) {
    this.#file = path.resolve(options.file);
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 30_000;
    this.describe = this.#file;
  }

  /** Opens the file (waiting out other processes), runs `work`, and always closes again. */
  #session<T>(work: (s: Session) => Promise<T>): Promise<T> {
    return enqueue(this.#file, async () => {
      const instance = await this.#open();
      try {
        const conn = await instance.connect();
        try {
          await conn.run("SET TimeZone = 'UTC'");
          return await work(new Session(conn));
        } finally {
          conn.closeSync();
        }
      } catch (err) {
        throw isConvergenceError(err)
          ? err
          : new ConvergenceError('WAREHOUSE_QUERY', ExitCode.unexpected, `warehouse ${this.#file}: ${(err as Error).message}`, {
              cause: err,
            });
      } finally {
        instance.closeSync();
      }
    });
  }

  async #open(): Promise<DuckDBInstance> {
    if (!this.#dirReady) {
      await mkdir(path.dirname(this.#file), { recursive: true });
      this.#dirReady = true;
    }
    const deadline = Date.now() + this.#busyTimeoutMs;
    let delay = 5;
    for (;;) {
      try {
        return await DuckDBInstance.create(this.#file);
      } catch (err) {
        const message = (err as Error).message ?? '';
        if (!BUSY.test(message)) {
          throw new ConvergenceError('WAREHOUSE_OPEN', ExitCode.unexpected, `cannot open warehouse ${this.#file}: ${message}`, {
            cause: err,
          });
        }
        if (Date.now() >= deadline) {
          const pid = /PID (\d+)/.exec(message)?.[1];
          throw new ConvergenceError(
            'WAREHOUSE_BUSY',
            ExitCode.unexpected,
            `warehouse ${this.#file} stayed locked for ${this.#busyTimeoutMs / 1000} s${pid ? ` (held by PID ${pid})` : ''}`,
            {
              suggestion: 'another convergence process holds the warehouse; retry',
              data: { file: this.#file, pid: pid ? Number(pid) : null },
              cause: err,
            },
          );
        }
        // Randomised waits keep a crowd of waiting processes from retrying in lockstep.
        await sleep(Math.min(delay * (0.5 + Math.random() / 2), deadline - Date.now()));
        delay = Math.min(delay * 2, 200);
      }
    }
  }

  async datasetExists(dataset: string): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    return this.#session((s) => s.datasetExists(dataset));
  }

  async createDataset(dataset: string): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    return this.#session(async (s) => {
      if (await s.datasetExists(dataset)) return false;
      await s.exec(`CREATE SCHEMA IF NOT EXISTS ${q(dataset)}`);
      return true;
    });
  }

  async dropDataset(dataset: string): Promise<void> {
    assertIdentifier('dataset', dataset);
    await this.#session((s) => s.exec(`DROP SCHEMA IF EXISTS ${q(dataset)} CASCADE`));
  }

  async listTables(dataset: string): Promise<string[]> {
    assertIdentifier('dataset', dataset);
    return this.#session(async (s) => {
      const rows = await s.rows(
        `SELECT table_name FROM information_schema.tables
         WHERE table_catalog = current_database() AND table_schema = $d ORDER BY table_name`,
        { d: dataset },
      );
      return rows.map((r) => String(r['table_name']));
    });
  }

  async tableExists(dataset: string, table: string): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    return this.#session(async (s) => (await s.columns(dataset, table)) !== undefined);
  }

  async createTable(dataset: string, spec: TableSpec): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', spec.name);
    if (spec.fields.length === 0) throw validationError(`table ${dataset}.${spec.name} needs at least one field`);
    const seen = new Set<string>();
    const columns = spec.fields.map((f) => {
      assertIdentifier('column', f.name);
      if (seen.has(f.name.toLowerCase())) throw validationError(`table ${dataset}.${spec.name} repeats column "${f.name}"`);
      seen.add(f.name.toLowerCase());
      const type = SQL_TYPE[f.type];
      if (!type) throw validationError(`column ${f.name} has unknown type ${JSON.stringify(f.type)}`);
      return `${q(f.name)} ${type}${f.mode === 'REQUIRED' ? ' NOT NULL' : ''}`;
    });
    return this.#session(async (s) => {
      if (!(await s.datasetExists(dataset))) throw notFoundError(`dataset ${dataset} does not exist`);
      if (await s.columns(dataset, spec.name)) return false;
      await s.exec(`CREATE TABLE IF NOT EXISTS ${q(dataset)}.${q(spec.name)} (${columns.join(', ')})`);
      return true;
    });
  }

  async dropTable(dataset: string, table: string): Promise<void> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    await this.#session((s) => s.exec(`DROP TABLE IF EXISTS ${q(dataset)}.${q(table)}`));
  }

  async getTableFields(dataset: string, table: string): Promise<FieldSpec[] | undefined> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    return this.#session(async (s) => {
      const rows = await s.rows(
        `SELECT column_name, data_type, is_nullable FROM duckdb_columns()
         WHERE database_name = current_database() AND schema_name = $d AND table_name = $t ORDER BY column_index`,
        { d: dataset, t: table },
      );
      if (rows.length === 0) return undefined;
      return rows.map((r) => ({
        name: String(r['column_name']),
        type: fieldType(String(r['data_type'])),
        mode: r['is_nullable'] ? ('NULLABLE' as const) : ('REQUIRED' as const),
      }));
    });
  }

  async insert(dataset: string, table: string, rows: Row[]): Promise<void> {
    checkOp({ kind: 'insert', dataset, table, rows });
    if (rows.length === 0) return;
    await this.#session(async (s) => {
      // Several chunks must land together, as one insert call promises.
      if (rows.length <= INSERT_CHUNK) return insertRows(s, dataset, table, rows);
      return inTransaction(s, () => insertRows(s, dataset, table, rows));
    });
  }

  async select(dataset: string, table: string, options: SelectOptions = {}): Promise<Row[]> {
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
    return this.#session(async (s) => {
      const t = await s.table(dataset, table);
      const params = new Params();
      const columns = options.columns?.length ? options.columns.map((c) => q(t.column(c).name)).join(', ') : '*';
      let sql = `SELECT ${columns} FROM ${t.ref}${whereClause(options.where, t, params)}`;
      if (options.orderBy?.length) {
        sql += ` ORDER BY ${options.orderBy.map(([c, d]) => `${q(t.column(c).name)} ${d.toUpperCase()}`).join(', ')}`;
      }
      if (options.limit !== undefined) sql += ` LIMIT ${params.add(options.limit)}`;
      if (options.offset !== undefined) sql += ` OFFSET ${params.add(options.offset)}`;
      return s.rows(sql, params.values);
    });
  }

  async count(dataset: string, table: string, where?: Where): Promise<number> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    for (const name of Object.keys(where ?? {})) assertIdentifier('column', name);
    return this.#session(async (s) => {
      const t = await s.table(dataset, table);
      const params = new Params();
      const [row] = await s.rows(`SELECT count(*) AS n FROM ${t.ref}${whereClause(where, t, params)}`, params.values);
      return Number(row?.['n'] ?? 0);
    });
  }

  async update(dataset: string, table: string, set: Row, where: Where): Promise<number> {
    checkOp({ kind: 'update', dataset, table, set, where });
    return this.#session((s) => updateRows(s, dataset, table, set, where));
  }

  async delete(dataset: string, table: string, where: Where): Promise<number> {
    checkOp({ kind: 'delete', dataset, table, where });
    return this.#session((s) => deleteRows(s, dataset, table, where));
  }

  async atomic(ops: WriteOp[]): Promise<void> {
    ops.forEach(checkOp);
    if (ops.length === 0) return;
    await this.#session((s) =>
      inTransaction(s, async () => {
        for (const op of ops) {
          if (op.kind === 'insert') await insertRows(s, op.dataset, op.table, op.rows);
          else if (op.kind === 'update') await updateRows(s, op.dataset, op.table, op.set, op.where);
          else if (op.kind === 'delete') await deleteRows(s, op.dataset, op.table, op.where);
          else throw validationError(`unknown write operation ${JSON.stringify((op as { kind: unknown }).kind)}`);
        }
      }),
    );
  }

  qualify(dataset: string, table: string): string {
    return `${q(assertIdentifier('dataset', dataset))}.${q(assertIdentifier('table', table))}`;
  }

  async query(sql: string, params: Record<string, Scalar> = {}): Promise<Row[]> {
    const translated = translatePlaceholders(sql);
    const values: Record<string, DuckDBValue> = {};
    for (const name of translated.names) {
      if (!Object.hasOwn(params, name)) throw validationError(`query parameter @${name} has no value`);
      values[name] = toDuck(params[name] as Scalar);
    }
    return this.#session((s) => s.rows(translated.sql, values));
  }

  /** Nothing stays open between calls; this only waits for queued work to finish. */
  async close(): Promise<void> {
    await queues.get(this.#file);
  }
}

async function inTransaction<T>(s: Session, work: () => Promise<T>): Promise<T> {
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
