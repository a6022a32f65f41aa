import path from 'node:path';
import type { DuckDBValue } from '@duckdb/node-api';
import { assertIdentifier } from '../../../domain/ids.ts';
import { ConvergenceError, ExitCode, isConvergenceError, notFoundError, validationError } from '../../../lib/errors.ts';
import { closeFile, withInstance } from './file-access.ts';
import { CSV_FILE_TYPES, needsStaging } from './csv-files.ts';
import { duckdbDialect } from './dialect.ts';
import { loadInto } from './load.ts';
import { createViewIn, dropTableOrView } from './view.ts';
import {
  applyWriteOp,
  checkOp,
  fieldType,
  inTransaction,
  INSERT_CHUNK,
  insertRows,
  deleteRows,
  bindValue,
  duckParams,
  q,
  Session,
  SQL_TYPE,
  toDuck,
  translatePlaceholders,
  updateRows,
  whereClause,
} from './session.ts';
import { DuckDbSqlGate, SANDBOX_SETTINGS, type CheckedQuery } from './tenant-sql.ts';
import {
  CsvNeedsStaging,
  type FieldSpec,
  type LoadRequest,
  type LoadResult,
  type Row,
  type Scalar,
  type SelectOptions,
  type TableSpec,
  type TenantExpressionScope,
  type TenantQueryCheck,
  type TenantSqlScope,
  type ViewRequest,
  type ViewResult,
  type Warehouse,
  type Where,
  type WriteOp,
} from '../port.ts';
import { assertSelect } from '../where.ts';
import { assertViewRequest, viewParametersRefused } from '../views.ts';

export { translatePlaceholders };

/**
 * Local Warehouse on one DuckDB file, one schema per dataset.
 *
 * DuckDB lets a single process open a file for writing, and CLI commands, pipeline runs and
 * `serve` run side by side: a process holds the file only for a burst of calls (file-access.ts).
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

/** DuckDB's buffer cap while it reads CSV files into a table (the process's peak stays under 1.5 GB). */
const CSV_LOAD_MEMORY = '1GB';

export class DuckDbWarehouse implements Warehouse {
  readonly dialect = duckdbDialect;
  readonly csvFileTypes = CSV_FILE_TYPES;
  readonly describe: string;
  readonly #file: string;
  readonly #busyTimeoutMs: number;
  readonly #gate = new DuckDbSqlGate();

  constructor(options: DuckDbWarehouseOptions) {
    this.#file = path.resolve(options.file);
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 30_000;
    this.describe = this.#file;
  }

  /**
   * Runs `work` on a connection to the file (file-access.ts: queued, retried while another process
   * has the file, the instance reused across a burst of calls). A sandboxed session runs tenant
   * SQL: its own instance can then reach no file, URL or extension beyond the warehouse itself, and
   * its configuration is locked until it closes.
   */
  #session<T>(work: (s: Session) => Promise<T>, options: { sandbox?: boolean } = {}): Promise<T> {
    const fresh = Boolean(options.sandbox);
    return withInstance(this.#file, { fresh, busyTimeoutMs: this.#busyTimeoutMs }, async (instance) => {
      try {
        const conn = await instance.connect();
        try {
          await conn.run("SET TimeZone = 'UTC'");
          if (options.sandbox) for (const [name, value] of SANDBOX_SETTINGS) await conn.run(`SET ${name} = ${value}`);
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
      }
    });
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
    await this.#session((s) => dropTableOrView(s, dataset, table));
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
      return rows.map(fieldOfColumn);
    });
  }

  async getDatasetFields(dataset: string): Promise<Map<string, FieldSpec[]>> {
    assertIdentifier('dataset', dataset);
    return this.#session(async (s) => {
      const rows = await s.rows(
        `SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns()
         WHERE database_name = current_database() AND schema_name = $d ORDER BY table_name, column_index`,
        { d: dataset },
      );
      const tables = new Map<string, FieldSpec[]>();
      for (const r of rows) {
        const table = String(r['table_name']);
        const fields = tables.get(table) ?? [];
        if (fields.length === 0) tables.set(table, fields);
        fields.push(fieldOfColumn(r));
      }
      return tables;
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
    assertSelect(dataset, table, options);
    return this.#session(async (s) => {
      const t = await s.table(dataset, table);
      const params = duckParams();
      const columns = options.columns?.length ? options.columns.map((c) => q(t.column(c).name)).join(', ') : '*';
      let sql = `SELECT ${columns} FROM ${t.ref}${whereClause(options.where, t, params)}`;
      if (options.orderBy?.length) {
        sql += ` ORDER BY ${options.orderBy.map(([c, d]) => `${q(t.column(c).name)} ${d.toUpperCase()}`).join(', ')}`;
      }
      if (options.limit !== undefined) sql += ` LIMIT ${bindValue(params, options.limit)}`;
      if (options.offset !== undefined) sql += ` OFFSET ${bindValue(params, options.offset)}`;
      return s.rows(sql, params.values);
    });
  }

  async count(dataset: string, table: string, where?: Where): Promise<number> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    for (const name of Object.keys(where ?? {})) assertIdentifier('column', name);
    return this.#session(async (s) => {
      const t = await s.table(dataset, table);
      const params = duckParams();
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
        for (const op of ops) await applyWriteOp(s, op);
      }),
    );
  }

  async load(request: LoadRequest): Promise<LoadResult> {
    (request.alsoWrite ?? []).forEach(checkOp);
    const source = request.source;
    if (source.kind === 'csv-files') return this.#loadCsvFiles(request);
    if (source.kind !== 'query') return this.#session((s) => loadInto(s, request));
    // A query source is tenant SQL: checked against the load's dataset, run sandboxed.
    assertIdentifier('dataset', request.dataset);
    const query = await this.#tenantQuery(source.sql, { dataset: request.dataset, params: source.params, origin: source.origin });
    return this.#session((s) => loadInto(s, request, query), { sandbox: true });
  }

  /** The view stores the gate's restatement, made in a sandboxed session like any tenant SQL it runs. */
  async createView(request: ViewRequest): Promise<ViewResult> {
    assertViewRequest(request);
    const { names } = translatePlaceholders(request.sql);
    if (names.length > 0) throw viewParametersRefused(request.origin, names);
    const query = await this.#tenantQuery(request.sql, { dataset: request.dataset, origin: request.origin });
    return this.#session((s) => createViewIn(s, request, query.sql), { sandbox: true });
  }

  /** A csv-files load that meets a row only the engine can take writes nothing and says so (CsvNeedsStaging). */
  async #loadCsvFiles(request: LoadRequest): Promise<LoadResult> {
    try {
      // Appended rows have no order a reader may rely on: without keeping the files' order DuckDB
      // writes from both threads at once. Its buffers are capped so a file of many GB loads in
      // bounded memory (DuckDB spills past the cap, into the warehouse's folder).
      return await this.#session(async (s) => {
        await s.exec('SET preserve_insertion_order = false');
        await s.exec(`SET memory_limit = '${CSV_LOAD_MEMORY}'`);
        try {
          return await loadInto(s, request);
        } finally {
          await s.exec('RESET preserve_insertion_order');
          await s.exec('RESET memory_limit');
        }
      });
    } catch (err) {
      const why = needsStaging((err as { cause?: unknown }).cause ?? err);
      throw why ? new CsvNeedsStaging(why) : err;
    }
  }

  /** Tenant SQL with `@name` parameters: translated, checked and restated, with its values. */
  async #tenantQuery(sql: string, scope: TenantSqlScope): Promise<CheckedQuery & { values: Record<string, DuckDBValue> }> {
    const translated = translatePlaceholders(sql);
    const checked = await this.#gate.check(translated.sql, { dataset: scope.dataset, params: translated.names, origin: scope.origin });
    const values: Record<string, DuckDBValue> = {};
    for (const name of checked.params) {
      if (!scope.params || !Object.hasOwn(scope.params, name)) throw validationError(`query parameter @${name} has no value`);
      values[name] = toDuck(scope.params[name] as Scalar);
    }
    return { ...checked, values };
  }

  async checkTenantQuery(sql: string, scope: TenantSqlScope): Promise<TenantQueryCheck> {
    const translated = translatePlaceholders(sql);
    const checked = await this.#gate.check(translated.sql, { dataset: scope.dataset, params: translated.names, origin: scope.origin });
    return { tables: checked.tables };
  }

  checkTenantExpression(expr: string, scope: TenantExpressionScope): Promise<string> {
    return this.#gate.checkExpression(expr, scope);
  }

  async queryTenant(sql: string, scope: TenantSqlScope): Promise<Row[]> {
    const query = await this.#tenantQuery(sql, scope);
    return this.#session((s) => s.rows(query.sql, query.values), { sandbox: true });
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

  /** Waits for queued work, closes the file if this process still holds it, and closes the SQL parser. */
  async close(): Promise<void> {
    await closeFile(this.#file);
    await this.#gate.close();
  }
}

/** A row of duckdb_columns() as the port's field. */
function fieldOfColumn(r: Row): FieldSpec {
  return {
    name: String(r['column_name']),
    type: fieldType(String(r['data_type'])),
    mode: r['is_nullable'] ? 'NULLABLE' : 'REQUIRED',
  };
}
