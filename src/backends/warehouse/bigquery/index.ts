import type { BigQuery, TableField, TableMetadata } from '@google-cloud/bigquery';
import { assertIdentifier } from '../../../domain/ids.ts';
import { notFoundError, validationError } from '../../../lib/errors.ts';
import { errorFacts, isDuplicate, isNotFound, warehouseError } from './errors.ts';
import type { RetryPolicy } from '../../../lib/retry.ts';
import { JobRunner } from './jobs.ts';
import { loadInto, partitioningOf } from './load.ts';
import {
  bq,
  checkOp,
  deleteSql,
  insertSql,
  parameterList,
  parameterNames,
  tableInfo,
  tableRef,
  updateSql,
  whereSql,
  typedParams,
  writeOpSql,
  type TableInfo,
  type TypedParams,
} from './sql.ts';
import { bigqueryDialect } from './dialect.ts';
import { checkBigQueryExpression, checkBigQueryQuery, type BigQueryGateContext } from './tenant-sql.ts';
import { fieldTypeOf, inferType, queryParameter } from './values.ts';
import { assertSelect } from '../where.ts';
import { assertViewRequest, viewParametersRefused, viewReplacesTable } from '../views.ts';
import type {
  FieldSpec,
  FieldType,
  LoadRequest,
  LoadResult,
  Row,
  Scalar,
  SelectOptions,
  TableSpec,
  TenantExpressionScope,
  TenantQueryCheck,
  TenantSqlScope,
  ViewRequest,
  ViewResult,
  Warehouse,
  Where,
  WriteOp,
} from '../port.ts';

/**
 * Warehouse on BigQuery, through @google-cloud/bigquery. The client is built elsewhere (ADC in real
 * use, an endpoint override in tests) and handed in; this module imports only its types.
 *
 * - Datasets are created in `location`, and every job runs there.
 * - Writes are DML query jobs with typed named parameters, never insertAll: rows in the streaming
 *   buffer cannot be UPDATEd or DELETEd for a while, and metadata rows are updated right after
 *   they are written (run states, leases, quotas).
 * - `atomic` and `load` are one multi-statement transaction each (see ./bigquery/load.ts for what a
 *   load commits atomically and what it does before).
 * - Every job carries labels: `app: convergence`, the `labels` given here (tenant_id, pipeline_id,
 *   run_id, ...) and, for loads, run_id and step.
 * - Values read back as the DuckDB warehouse reads them (./bigquery/values.ts).
 */
export interface BigQueryWarehouseOptions {
  client: BigQuery;
  project: string;
  location: string;
  labels?: Record<string, string>;
  retry?: Partial<RetryPolicy>;
  /** Lifetime of a load's staging table if the load is interrupted before dropping it. */
  stagingTtlMs?: number;
}

const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
/** Label values allow lowercase letters, digits, "_" and "-", at most 63. */
const labelValue = (value: string) =>
  value
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '_')
    .slice(0, 63);

/** Schemas change only by added columns, so a cached schema is refreshed when a column is unknown. */
const SCHEMA_TTL_MS = 30_000;

export class BigQueryWarehouse implements Warehouse {
  readonly dialect = bigqueryDialect;
  /** Load jobs read gs:// objects straight from Cloud Storage (see object-load.ts). */
  readonly loadsObjects = true;
  readonly describe: string;
  readonly #client: BigQuery;
  readonly #project: string;
  readonly #location: string;
  readonly #jobs: JobRunner;
  readonly #stagingTtlMs: number;
  readonly #schemas = new Map<string, { info: TableInfo; at: number }>();
  readonly #options: BigQueryWarehouseOptions;

  constructor(options: BigQueryWarehouseOptions) {
    this.#options = options;
    if (!options.project) throw validationError('BigQuery needs a project id');
    if (!options.location) throw validationError('BigQuery needs a location (e.g. US, EU, us-central1)');
    const labels: Record<string, string> = { app: 'convergence' };
    for (const [key, value] of Object.entries(options.labels ?? {})) {
      if (!LABEL_KEY.test(key)) {
        throw validationError(`invalid BigQuery label key ${JSON.stringify(key)}`, {
          suggestion: 'label keys start with a lowercase letter and hold lowercase letters, digits, "_" or "-" (at most 63)',
        });
      }
      labels[key] = labelValue(String(value));
    }
    this.#client = options.client;
    this.#project = options.project;
    this.#location = options.location;
    this.#stagingTtlMs = options.stagingTtlMs ?? 24 * 3600 * 1000;
    this.describe = `BigQuery project ${options.project} (${options.location})`;
    this.#jobs = new JobRunner({
      client: options.client,
      project: options.project,
      location: options.location,
      labels,
      retry: { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, ...options.retry },
    });
  }

  #dataset(dataset: string) {
    return this.#client.dataset(dataset, { projectId: this.#project, location: this.#location });
  }

  #fail(err: unknown, what: string): never {
    throw warehouseError(err, { what, project: this.#project });
  }

  async datasetExists(dataset: string): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    try {
      await this.#dataset(dataset).getMetadata();
      return true;
    } catch (err) {
      if (isNotFound(errorFacts(err))) return false;
      this.#fail(err, `read dataset ${dataset}`);
    }
  }

  async createDataset(dataset: string): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    try {
      await this.#client.createDataset(dataset, { location: this.#location });
      return true;
    } catch (err) {
      if (isDuplicate(errorFacts(err))) return false;
      this.#fail(err, `create dataset ${dataset}`);
    }
  }

  async dropDataset(dataset: string): Promise<void> {
    assertIdentifier('dataset', dataset);
    for (const key of this.#schemas.keys()) if (key.startsWith(`${dataset}.`)) this.#schemas.delete(key);
    try {
      await this.#dataset(dataset).delete({ force: true });
    } catch (err) {
      if (!isNotFound(errorFacts(err))) this.#fail(err, `drop dataset ${dataset}`);
    }
  }

  async listTables(dataset: string): Promise<string[]> {
    assertIdentifier('dataset', dataset);
    try {
      const [tables] = await this.#dataset(dataset).getTables({ autoPaginate: true });
      return tables.map((t) => t.id!).sort();
    } catch (err) {
      if (isNotFound(errorFacts(err))) return [];
      this.#fail(err, `list the tables of ${dataset}`);
    }
  }

  async tableExists(dataset: string, table: string): Promise<boolean> {
    return (await this.#fields(dataset, table)) !== undefined;
  }

  /** Live schema from tables.get; undefined when the table (or its dataset) is missing. */
  async #fields(dataset: string, table: string): Promise<TableField[] | undefined> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    try {
      const [metadata] = await this.#dataset(dataset).table(table).getMetadata();
      return (metadata as TableMetadata).schema?.fields ?? [];
    } catch (err) {
      if (isNotFound(errorFacts(err))) return undefined;
      this.#fail(err, `read table ${dataset}.${table}`);
    }
  }

  /** Schema for building SQL: cached briefly, and a table that does not exist is exit 8. */
  async #info(dataset: string, table: string, fresh = false): Promise<TableInfo> {
    const key = `${dataset}.${table}`;
    const cached = this.#schemas.get(key);
    if (cached && !fresh && Date.now() - cached.at < SCHEMA_TTL_MS) return cached.info;
    const fields = await this.#fields(dataset, table);
    if (!fields) throw notFoundError(`table ${dataset}.${table} does not exist`);
    const info = tableInfo(this.#project, dataset, table, fields);
    this.#schemas.set(key, { info, at: Date.now() });
    return info;
  }

  /** Builds SQL against the cached schema, once more against a fresh one if a column was unknown. */
  async #withInfo<T>(dataset: string, table: string, build: (info: TableInfo) => T): Promise<T> {
    const info = await this.#info(dataset, table);
    try {
      return build(info);
    } catch (err) {
      if (!/has no column/.test((err as Error).message ?? '')) throw err;
      return build(await this.#info(dataset, table, true));
    }
  }

  async createTable(dataset: string, spec: TableSpec): Promise<boolean> {
    return this.#createTable(dataset, spec);
  }

  async #createTable(
    dataset: string,
    spec: TableSpec,
    extra: { expirationTime?: string; labels?: Record<string, string> } = {},
  ): Promise<boolean> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', spec.name);
    if (!Array.isArray(spec.fields) || spec.fields.length === 0)
      throw validationError(`table ${dataset}.${spec.name} needs at least one field`);
    const seen = new Set<string>();
    const fields = spec.fields.map((f) => {
      assertIdentifier('column', f.name);
      if (seen.has(f.name.toLowerCase())) throw validationError(`table ${dataset}.${spec.name} repeats column "${f.name}"`);
      seen.add(f.name.toLowerCase());
      if (!TYPES.has(f.type)) throw validationError(`column ${f.name} has unknown type ${JSON.stringify(f.type)}`);
      return { name: f.name, type: f.type, mode: f.mode ?? 'NULLABLE', ...(f.description ? { description: f.description } : {}) };
    });
    const { timePartitioning, clustering } = partitioningOf(spec.fields, spec.partitionBy, spec.clusterBy, `${dataset}.${spec.name}`);
    this.#schemas.delete(`${dataset}.${spec.name}`);
    try {
      await this.#dataset(dataset).createTable(spec.name, {
        schema: { fields },
        ...(timePartitioning ? { timePartitioning } : {}),
        ...(clustering ? { clustering } : {}),
        ...(spec.description ? { description: spec.description } : {}),
        ...(extra.expirationTime ? { expirationTime: extra.expirationTime } : {}),
        ...(extra.labels ? { labels: { app: 'convergence', ...extra.labels } } : {}),
      });
      return true;
    } catch (err) {
      const facts = errorFacts(err);
      if (isDuplicate(facts)) return false;
      if (isNotFound(facts)) throw notFoundError(`dataset ${dataset} does not exist`, { cause: err });
      this.#fail(err, `create table ${dataset}.${spec.name}`);
    }
  }

  async dropTable(dataset: string, table: string): Promise<void> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    this.#schemas.delete(`${dataset}.${table}`);
    try {
      await this.#dataset(dataset).table(table).delete();
    } catch (err) {
      if (!isNotFound(errorFacts(err))) this.#fail(err, `drop table ${dataset}.${table}`);
    }
  }

  async getTableFields(dataset: string, table: string): Promise<FieldSpec[] | undefined> {
    const fields = await this.#fields(dataset, table);
    if (!fields) return undefined;
    return fields.map((f) => ({
      name: f.name!,
      type: fieldTypeOf(f.type),
      mode: f.mode === 'REQUIRED' ? ('REQUIRED' as const) : ('NULLABLE' as const),
      ...(f.description ? { description: f.description } : {}),
    }));
  }

  async insert(dataset: string, table: string, rows: Row[]): Promise<void> {
    checkOp({ kind: 'insert', dataset, table, rows });
    if (rows.length === 0) return;
    let params = typedParams();
    const sql = await this.#withInfo(dataset, table, (info) => {
      params = typedParams();
      return insertSql(info, rows, params);
    });
    await this.#jobs.query({ sql, params: parameterList(params), what: `insert into ${dataset}.${table}` });
  }

  async select(dataset: string, table: string, options: SelectOptions = {}): Promise<Row[]> {
    assertSelect(dataset, table, options);
    let params = typedParams();
    const sql = await this.#withInfo(dataset, table, (info) => {
      params = typedParams();
      const columns = options.columns?.length ? options.columns.map((c) => bq(info.column(c).name)).join(', ') : '*';
      let text = `SELECT ${columns} FROM ${info.ref}`;
      if (options.where && Object.keys(options.where).length > 0) text += ` WHERE ${whereSql(options.where, info, params)}`;
      if (options.orderBy?.length)
        text += ` ORDER BY ${options.orderBy.map(([c, d]) => `${bq(info.column(c).name)} ${d.toUpperCase()}`).join(', ')}`;
      // Validated non-negative integers; BigQuery wants OFFSET only after a LIMIT.
      if (options.limit !== undefined) text += ` LIMIT ${options.limit}`;
      else if (options.offset !== undefined) text += ` LIMIT ${Number.MAX_SAFE_INTEGER}`;
      if (options.offset !== undefined) text += ` OFFSET ${options.offset}`;
      return text;
    });
    const { rows } = await this.#jobs.query({ sql, params: parameterList(params), what: `select from ${dataset}.${table}`, rows: true });
    return rows;
  }

  async count(dataset: string, table: string, where?: Where): Promise<number> {
    assertIdentifier('dataset', dataset);
    assertIdentifier('table', table);
    for (const name of Object.keys(where ?? {})) assertIdentifier('column', name);
    let params = typedParams();
    const sql = await this.#withInfo(dataset, table, (info) => {
      params = typedParams();
      return `SELECT COUNT(*) AS n FROM ${info.ref} WHERE ${whereSql(where, info, params)}`;
    });
    const { rows } = await this.#jobs.query({ sql, params: parameterList(params), what: `count rows of ${dataset}.${table}`, rows: true });
    return Number(rows[0]?.['n'] ?? 0);
  }

  async update(dataset: string, table: string, set: Row, where: Where): Promise<number> {
    checkOp({ kind: 'update', dataset, table, set, where });
    let params = typedParams();
    const sql = await this.#withInfo(dataset, table, (info) => {
      params = typedParams();
      return updateSql(info, set, where, params);
    });
    return (await this.#jobs.query({ sql, params: parameterList(params), what: `update ${dataset}.${table}` })).affectedRows;
  }

  async delete(dataset: string, table: string, where: Where): Promise<number> {
    checkOp({ kind: 'delete', dataset, table, where });
    let params = typedParams();
    const sql = await this.#withInfo(dataset, table, (info) => {
      params = typedParams();
      return deleteSql(info, where, params);
    });
    return (await this.#jobs.query({ sql, params: parameterList(params), what: `delete from ${dataset}.${table}` })).affectedRows;
  }

  async atomic(ops: WriteOp[]): Promise<void> {
    ops.forEach(checkOp);
    if (ops.length === 0) return;
    const statements = await this.#statements(ops);
    const sql =
      statements.sql.length === 1
        ? statements.sql[0]!
        : ['BEGIN TRANSACTION;', ...statements.sql.map((s) => `${s};`), 'COMMIT TRANSACTION;'].join('\n');
    await this.#jobs.query({ sql, params: parameterList(statements.params), what: `apply ${ops.length} writes atomically` });
  }

  /** SQL for a list of writes sharing one parameter list; schemas refreshed once if a column was unknown. */
  async #statements(ops: WriteOp[]): Promise<{ sql: string[]; params: TypedParams }> {
    const build = async (fresh: boolean) => {
      const params = typedParams();
      const sql: string[] = [];
      for (const op of ops) sql.push(writeOpSql(op, await this.#info(op.dataset, op.table, fresh), params));
      return { sql, params };
    };
    try {
      return await build(false);
    } catch (err) {
      if (!/has no column/.test((err as Error).message ?? '')) throw err;
      return build(true);
    }
  }

  async load(request: LoadRequest): Promise<LoadResult> {
    (request.alsoWrite ?? []).forEach(checkOp);
    return loadInto(
      {
        project: this.#project,
        jobs: this.#jobs,
        stagingTtlMs: this.#stagingTtlMs,
        datasetExists: (dataset) => this.datasetExists(dataset),
        tableFields: (dataset, table) => this.#fields(dataset, table),
        tableRows: async (dataset, table) => {
          try {
            const [metadata] = await this.#dataset(dataset).table(table).getMetadata();
            return Number((metadata as TableMetadata).numRows ?? 0);
          } catch (err) {
            if (isNotFound(errorFacts(err))) return undefined;
            this.#fail(err, `read table ${dataset}.${table}`);
          }
        },
        tableInfo: (dataset, table) => this.#info(dataset, table, true),
        createTable: (dataset, spec, extra) => this.#createTable(dataset, spec, extra),
        dropTable: (dataset, table) => this.dropTable(dataset, table),
        setExpiration: async (dataset, table, expirationTime) => {
          try {
            await this.#dataset(dataset).table(table).setMetadata({ expirationTime });
          } catch (err) {
            this.#fail(err, `set the expiration of ${dataset}.${table}`);
          }
        },
        forget: (dataset, table) => this.#schemas.delete(`${dataset}.${table}`),
        labelValue,
        checkTenantQuery: (sql, scope) => this.checkTenantQuery(sql, scope),
      },
      request,
    );
  }

  /**
   * A view in the tenant's dataset, made by a CREATE OR REPLACE VIEW query job holding the very text
   * the dry run passed: every table it reads lies in that dataset of this project (the gate checks
   * the dry run's referencedTables), and a view body names its tables with their dataset, as
   * BigQuery requires. BigQuery keeps DDL out of transactions: a table replaced by the view
   * (replaceTable) is dropped first, on the user's explicit request.
   */
  async createView(request: ViewRequest): Promise<ViewResult> {
    assertViewRequest(request);
    const names = parameterNames(request.sql);
    if (names.length > 0) throw viewParametersRefused(request.origin, names);
    const { dataset, view } = request;
    await this.checkTenantQuery(request.sql, { dataset, ...(request.origin ? { origin: request.origin } : {}) });
    const kind = await this.#tableType(dataset, view);
    if (kind !== undefined && kind !== 'VIEW' && !request.replaceTable) throw viewReplacesTable(request);
    if (kind !== undefined && kind !== 'VIEW') await this.dropTable(dataset, view);
    this.#schemas.delete(`${dataset}.${view}`);
    // Newlines keep a trailing comment of the tenant's apart from our text.
    const ddl = `CREATE OR REPLACE VIEW ${tableRef(this.#project, dataset, view)} AS\n${request.sql}\n`;
    await this.#jobs.query({ sql: ddl, what: `create view ${dataset}.${view}` });
    return {
      created: kind !== 'VIEW',
      replacedTable: kind !== undefined && kind !== 'VIEW',
      fields: (await this.getTableFields(dataset, view)) ?? [],
    };
  }

  /** TABLE, VIEW, MATERIALIZED_VIEW, ...; undefined when nothing has that name. */
  async #tableType(dataset: string, table: string): Promise<string | undefined> {
    try {
      const [metadata] = await this.#dataset(dataset).table(table).getMetadata();
      return String((metadata as TableMetadata).type ?? 'TABLE');
    } catch (err) {
      if (isNotFound(errorFacts(err))) return undefined;
      this.#fail(err, `read table ${dataset}.${table}`);
    }
  }

  qualify(dataset: string, table: string): string {
    return tableRef(this.#project, dataset, table);
  }

  /**
   * Caller SQL with `@name` parameters typed from their values: string STRING, integer number and
   * bigint INT64, other numbers FLOAT64, boolean BOOL, Date TIMESTAMP. A null binds as a STRING
   * NULL; compare it with another type through CAST(@name AS <type>).
   */
  async query(sql: string, params: Record<string, Scalar> = {}): Promise<Row[]> {
    const { rows } = await this.#jobs.query({ sql, params: typedParameters(sql, params), what: 'query', rows: true });
    return rows;
  }

  get #gate(): BigQueryGateContext {
    return { jobs: this.#jobs, project: this.#project };
  }

  checkTenantQuery(sql: string, scope: TenantSqlScope): Promise<TenantQueryCheck> {
    return checkBigQueryQuery(this.#gate, sql, typedParameters(sql, scope.params ?? {}), scope);
  }

  checkTenantExpression(expr: string, scope: TenantExpressionScope): Promise<string> {
    return checkBigQueryExpression(this.#gate, expr, scope);
  }

  /** The same text and parameters that passed the dry run are what runs. */
  async queryTenant(sql: string, scope: TenantSqlScope): Promise<Row[]> {
    await this.checkTenantQuery(sql, scope);
    return this.query(sql, scope.params ?? {});
  }

  withLabels(labels: Record<string, string>): BigQueryWarehouse {
    return new BigQueryWarehouse({ ...this.#options, labels: { ...this.#options.labels, ...labels } });
  }

  /** A dry-run query job: BigQuery validates the SQL and reports what it would scan, running nothing. */
  async estimateBytes(sql: string, params: Record<string, Scalar> = {}): Promise<number> {
    const parameters = typedParameters(sql, params);
    try {
      const [job] = await this.#client.createJob({
        location: this.#location,
        configuration: {
          dryRun: true,
          query: { query: sql, useLegacySql: false, ...(parameters.length ? { parameterMode: 'NAMED', queryParameters: parameters } : {}) },
        },
      });
      const statistics = (job.metadata as { statistics?: { totalBytesProcessed?: string; query?: { totalBytesProcessed?: string } } })
        .statistics;
      return Number(statistics?.totalBytesProcessed ?? statistics?.query?.totalBytesProcessed ?? 0);
    } catch (err) {
      this.#fail(err, 'dry-run a query');
    }
  }

  /** The client keeps no connection open. */
  async close(): Promise<void> {}
}

/** The `@name` parameters of a text, typed from their values; a name without a value is refused. */
function typedParameters(sql: string, params: Record<string, Scalar>) {
  return parameterNames(sql).map((name) => {
    if (!Object.hasOwn(params, name)) throw validationError(`query parameter @${name} has no value`);
    const value = params[name] as Scalar;
    return queryParameter(name, value, inferType(value));
  });
}

const TYPES = new Set<FieldType>(['STRING', 'INT64', 'FLOAT64', 'NUMERIC', 'BOOL', 'TIMESTAMP', 'DATE', 'JSON', 'BYTES']);
