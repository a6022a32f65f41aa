/**
 * The fake's warehouse: an in-memory DuckDB database (one schema per dataset) plus the metadata
 * BigQuery keeps beside the data (schemas with modes and descriptions, partitioning, clustering,
 * labels, expiration, locations). Scripts run statement by statement with BigQuery's rules: DDL on
 * permanent tables is refused inside a transaction, DELETE and UPDATE need a WHERE clause, a
 * failed statement rolls the open transaction back, and the script's result is its last SELECT.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance, type DuckDBConnection, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import type { CatalogTable } from './catalog.ts';
import { FakeError, invalid, invalidQuery, notFound } from './errors.ts';
import { Referee } from './referee.ts';
import { statementTypeOf, tablesOfQuery } from './references.ts';
import { MUTATING_DML, StatementHolds, TableLocks, type TransactionSnapshot } from './table-locks.ts';
import {
  MACROS,
  closingParen,
  splitStatements,
  splitTopLevel,
  stripComments,
  translate,
  type TableRef,
  type TranslateContext,
} from './translate.ts';
import {
  bindParameters,
  duckType,
  fieldFromDataType,
  fieldFromDuck,
  normaliseFields,
  type Field,
  type QueryParameter,
  type TableSchema,
} from './values.ts';

export interface DatasetMeta {
  kind: 'bigquery#dataset';
  id: string;
  etag: string;
  datasetReference: { projectId: string; datasetId: string };
  location: string;
  labels?: Record<string, string>;
  description?: string;
  creationTime: string;
  lastModifiedTime: string;
}

export interface TableMeta {
  kind: 'bigquery#table';
  id: string;
  etag: string;
  tableReference: { projectId: string; datasetId: string; tableId: string };
  type: 'TABLE' | 'VIEW';
  /** A view's GoogleSQL, as its CREATE VIEW gave it (tables.get returns it). */
  view?: { query: string; useLegacySql: false };
  schema: TableSchema;
  location: string;
  timePartitioning?: { type: string; field?: string; expirationMs?: string };
  clustering?: { fields: string[] };
  description?: string;
  labels?: Record<string, string>;
  expirationTime?: string;
  creationTime: string;
  lastModifiedTime: string;
}

export interface QueryOutput {
  statementType: string;
  /** Rows of the last SELECT (or of the destination table). */
  result?: { fields: Field[]; rows: DuckDBValue[][] };
  dml?: { affected: number; inserted: number; updated: number; deleted: number };
  childJobs: number;
  destination?: { datasetId: string; tableId: string };
  /** Dry runs: what the query would scan, estimated as 8 bytes per column per row of each table read. */
  bytesProcessed?: number;
  /** Dry runs: every table the statement reads (statistics.query.referencedTables). */
  referencedTables?: TableRef[];
}

/**
 * A temporary external table of one query job (`tableDefinitions`): its STRING columns, read from
 * the objects in order, and each object's URI with its row count, from which `_FILE_NAME` is known.
 */
export interface ExternalTable {
  name: string;
  fields: string[];
  objects: Array<{ uri: string; file: string; rows: number }>;
}

interface RunResult {
  fields: Field[];
  rows: DuckDBValue[][];
  rowsChanged: number;
}

const now = () => String(Date.now());
const etag = () => Math.random().toString(36).slice(2, 14);
const q = (id: string) => `"${id.replace(/"/g, '""')}"`;
const tableKey = (dataset: string, table: string) => `${dataset}.${table}`;

const DUCK_MESSAGE_MAP: Array<[RegExp, (m: RegExpExecArray, location: string, project: string) => FakeError]> = [
  // _FILE_NAME is read through the external table's rowid (see #externalTables): elsewhere it has no such column.
  [/Referenced column "?rowid"? not found|does not have a column named "?rowid"?/, () => invalidQuery('Unrecognized name: _FILE_NAME')],
  [
    /Table with name (\S+?) does not exist/,
    (m, location, project) => new FakeError(404, 'notFound', `Not found: Table ${project}:${m[1]} was not found in location ${location}`),
  ],
  [/Referenced column "?([^"\s]+)"? not found/, (m) => invalidQuery(`Unrecognized name: ${m[1]}`)],
  [/does not have a column named "?([^"\s]+)"?/, (m) => invalidQuery(`Column ${m[1]} is not present in table`)],
  [/NOT NULL constraint failed: (\S+)/, (m) => invalidQuery(`Required field ${m[1]!.split('.').pop()} cannot be null`)],
  [/Conversion Error: (.*)/, (m) => invalidQuery(`Invalid cast: ${m[1]}`)],
];

export class Engine {
  readonly project: string;
  readonly datasets = new Map<string, DatasetMeta>();
  readonly tables = new Map<string, TableMeta>();
  /** ZetaSQL's analysis of every statement a query job sends, before it runs (see referee.ts). */
  readonly #referee: Referee;
  /** Per-table DML slots and transaction conflicts, as BigQuery enforces them (table-locks.ts). */
  readonly locks: TableLocks;
  /** Statements a test holds before they run, to see jobs RUNNING and PENDING. */
  readonly holds = new StatementHolds();
  #instance!: DuckDBInstance;
  #conn!: DuckDBConnection;
  #queue: Promise<unknown> = Promise.resolve();
  /** The connection of the job running in this async context: each job has its own (withConnection). */
  readonly #jobConnection = new AsyncLocalStorage<DuckDBConnection>();
  /** Tables a load job creates inside its open transaction: not yet visible to other connections. */
  readonly #creating = new Set<string>();

  constructor(project: string) {
    this.project = project;
    this.#referee = new Referee(project, () => this.#catalogTables());
    this.locks = new TableLocks(project);
  }

  async open(): Promise<void> {
    this.#instance = await DuckDBInstance.create(':memory:');
    this.#conn = await this.#connect();
    for (const macro of MACROS) await this.#conn.run(macro);
  }

  async #connect(): Promise<DuckDBConnection> {
    const conn = await this.#instance.connect();
    await conn.run("SET TimeZone = 'UTC'");
    // BigQuery sorts NULLs first ascending and last descending.
    await conn.run("SET default_null_order = 'nulls_first_on_asc_last_on_desc'");
    return conn;
  }

  /**
   * Runs a job's `work` on a connection of its own, so that jobs run at once as in BigQuery: each
   * transaction has its own snapshot, temporary tables are the job's own, and one job waiting in
   * a table's DML queue holds up no other.
   */
  async withConnection<T>(work: () => Promise<T>): Promise<T> {
    const conn = await this.#connect();
    try {
      return await this.#jobConnection.run(conn, work);
    } finally {
      conn.closeSync();
    }
  }

  close(): void {
    this.#conn?.closeSync();
    this.#instance?.closeSync();
  }

  /** Runs `work` alone on the shared connection: metadata calls never interleave there (jobs have their own). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work, work);
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  async #run(sql: string, values: Record<string, DuckDBValue> = {}): Promise<RunResult> {
    // DuckDB refuses values for parameters a statement does not use; scripts share one set.
    const used = Object.fromEntries(Object.entries(values).filter(([name]) => new RegExp(`\\$${name}\\b`).test(sql)));
    const reader = await (this.#jobConnection.getStore() ?? this.#conn).runAndReadAll(sql, used);
    const names = reader.deduplicatedColumnNames();
    const types: DuckDBType[] = reader.columnTypes();
    return { fields: names.map((n, i) => fieldFromDuck(n, types[i]!)), rows: reader.getRows(), rowsChanged: reader.rowsChanged };
  }

  /** DuckDB's error, in the shape BigQuery would have given it. */
  #explain(err: unknown, location: string): FakeError {
    if (err instanceof FakeError) return err;
    const message = (err as Error).message ?? String(err);
    for (const [pattern, make] of DUCK_MESSAGE_MAP) {
      const m = pattern.exec(message);
      if (m) return make(m, location, this.project);
    }
    return invalidQuery(message.replace(/^[A-Za-z ]+ Error: /, ''));
  }

  // ---- datasets -------------------------------------------------------------------------------

  dataset(datasetId: string): DatasetMeta {
    const meta = this.datasets.get(datasetId);
    if (!meta) throw notFound(`Dataset ${this.project}:${datasetId}`);
    return meta;
  }

  async createDataset(body: {
    datasetReference?: { datasetId?: string };
    location?: string;
    labels?: Record<string, string>;
    description?: string;
  }) {
    const datasetId = body.datasetReference?.datasetId ?? '';
    if (!/^[A-Za-z0-9_]{1,1024}$/.test(datasetId)) {
      throw invalid(
        `Invalid dataset ID "${datasetId}". Dataset IDs must be alphanumeric (plus underscores) and must be at most 1024 characters long.`,
      );
    }
    if (this.datasets.has(datasetId)) throw new FakeError(409, 'duplicate', `Already Exists: Dataset ${this.project}:${datasetId}`);
    validateLabels(body.labels);
    await this.#run(`CREATE SCHEMA ${q(datasetId)}`);
    const meta: DatasetMeta = {
      kind: 'bigquery#dataset',
      id: `${this.project}:${datasetId}`,
      etag: etag(),
      datasetReference: { projectId: this.project, datasetId },
      location: body.location ?? 'US',
      ...(body.labels ? { labels: body.labels } : {}),
      ...(body.description ? { description: body.description } : {}),
      creationTime: now(),
      lastModifiedTime: now(),
    };
    this.datasets.set(datasetId, meta);
    return meta;
  }

  async deleteDataset(datasetId: string, deleteContents: boolean): Promise<void> {
    this.dataset(datasetId);
    const tables = [...this.tables.values()].filter((t) => t.tableReference.datasetId === datasetId);
    if (tables.length > 0 && !deleteContents) {
      throw new FakeError(400, 'resourceInUse', `Dataset ${this.project}:${datasetId} is still in use`);
    }
    await this.#run(`DROP SCHEMA ${q(datasetId)} CASCADE`);
    for (const t of tables) this.tables.delete(tableKey(datasetId, t.tableReference.tableId));
    this.datasets.delete(datasetId);
  }

  // ---- tables ---------------------------------------------------------------------------------

  table(datasetId: string, tableId: string): TableMeta {
    this.dataset(datasetId);
    const meta = this.tables.get(tableKey(datasetId, tableId));
    if (!meta) throw notFound(`Table ${this.project}:${datasetId}.${tableId}`);
    return meta;
  }

  async numRows(meta: TableMeta): Promise<number> {
    const { rows } = await this.#run(`SELECT count(*) FROM ${q(meta.tableReference.datasetId)}.${q(meta.tableReference.tableId)}`);
    return Number(rows[0]?.[0] ?? 0);
  }

  async createTable(
    datasetId: string,
    body: Omit<Partial<TableMeta>, 'tableReference'> & { tableReference?: { tableId?: string } },
  ): Promise<TableMeta> {
    const dataset = this.dataset(datasetId);
    const tableId = body.tableReference?.tableId ?? '';
    if (!/^[A-Za-z0-9_-]{1,1024}$/.test(tableId)) throw invalid(`Invalid table ID "${tableId}".`);
    if (body.view) throw invalid('This fake makes views with CREATE VIEW query jobs, not tables.insert');
    if (this.tables.has(tableKey(datasetId, tableId))) {
      throw new FakeError(409, 'duplicate', `Already Exists: Table ${this.project}:${datasetId}.${tableId}`);
    }
    const fields = normaliseFields(body.schema?.fields, `${datasetId}.${tableId}`);
    validateLabels(body.labels);
    validatePartitioning(fields, body, `${datasetId}.${tableId}`);
    if (fields.length === 0) throw invalid(`Schema for table ${datasetId}.${tableId} has no fields`);
    const columns = fields.map((f) => `${q(f.name)} ${duckType(f)}${f.mode === 'REQUIRED' ? ' NOT NULL' : ''}`);
    await this.#run(`CREATE TABLE ${q(datasetId)}.${q(tableId)} (${columns.join(', ')})`);
    const meta: TableMeta = {
      kind: 'bigquery#table',
      id: `${this.project}:${datasetId}.${tableId}`,
      etag: etag(),
      tableReference: { projectId: this.project, datasetId, tableId },
      type: 'TABLE',
      schema: { fields },
      location: dataset.location,
      ...(body.timePartitioning ? { timePartitioning: { ...body.timePartitioning, type: body.timePartitioning.type ?? 'DAY' } } : {}),
      ...(body.clustering ? { clustering: { fields: [...body.clustering.fields] } } : {}),
      ...(body.description ? { description: body.description } : {}),
      ...(body.labels ? { labels: body.labels } : {}),
      ...(body.expirationTime ? { expirationTime: String(body.expirationTime) } : {}),
      creationTime: now(),
      lastModifiedTime: now(),
    };
    this.tables.set(tableKey(datasetId, tableId), meta);
    return meta;
  }

  async deleteTable(datasetId: string, tableId: string): Promise<void> {
    const meta = this.table(datasetId, tableId);
    await this.#run(`DROP ${meta.type === 'VIEW' ? 'VIEW' : 'TABLE'} ${q(datasetId)}.${q(tableId)}`);
    this.tables.delete(tableKey(datasetId, tableId));
  }

  /** tables.patch: descriptions, labels, expiration, and new NULLABLE columns (BigQuery allows nothing else). */
  async patchTable(datasetId: string, tableId: string, body: Partial<TableMeta>): Promise<TableMeta> {
    const meta = this.table(datasetId, tableId);
    if (body.schema?.fields) {
      const incoming = normaliseFields(body.schema.fields, `${datasetId}.${tableId}`);
      const current = new Map(meta.schema.fields.map((f) => [f.name.toLowerCase(), f]));
      for (const field of incoming) {
        const existing = current.get(field.name.toLowerCase());
        if (existing) {
          if (existing.type !== field.type) {
            throw invalid(
              `Provided Schema does not match Table ${this.project}:${datasetId}.${tableId}. Field ${field.name} has changed type from ${existing.type} to ${field.type}`,
            );
          }
          if (field.description !== undefined) existing.description = field.description;
          continue;
        }
        if (field.mode === 'REQUIRED')
          throw invalid(
            `Provided Schema does not match Table ${this.project}:${datasetId}.${tableId}. Cannot add required fields to an existing schema. (field: ${field.name})`,
          );
        await this.#run(`ALTER TABLE ${q(datasetId)}.${q(tableId)} ADD COLUMN ${q(field.name)} ${duckType(field)}`);
        meta.schema.fields.push(field);
      }
      const named = new Set(incoming.map((f) => f.name.toLowerCase()));
      const dropped = meta.schema.fields.filter((f) => !named.has(f.name.toLowerCase()));
      if (dropped.length > 0) {
        throw invalid(
          `Provided Schema does not match Table ${this.project}:${datasetId}.${tableId}. Cannot remove fields: ${dropped.map((f) => f.name).join(', ')}`,
        );
      }
    }
    if (body.description !== undefined) meta.description = body.description;
    if (body.labels !== undefined) {
      validateLabels(body.labels);
      meta.labels = body.labels;
    }
    if (body.expirationTime !== undefined) meta.expirationTime = String(body.expirationTime);
    meta.etag = etag();
    meta.lastModifiedTime = now();
    return meta;
  }

  /** Rows of a table in storage order, for tabledata.list. */
  async readTable(meta: TableMeta, startIndex: number, maxResults: number): Promise<DuckDBValue[][]> {
    const columns = meta.schema.fields.map((f) => q(f.name)).join(', ');
    const { rows } = await this.#run(
      `SELECT ${columns} FROM ${q(meta.tableReference.datasetId)}.${q(meta.tableReference.tableId)} LIMIT ${maxResults} OFFSET ${startIndex}`,
    );
    return rows;
  }

  /** insertAll: each row independently; returns per-row errors like the API does. */
  async insertRows(
    meta: TableMeta,
    rows: Array<{ json: Record<string, unknown> }>,
    options: { skipInvalidRows: boolean; ignoreUnknownValues: boolean },
    cellText: (value: unknown, field: Field) => string | null,
  ): Promise<Array<{ index: number; errors: Array<{ reason: string; message: string; location?: string }> }>> {
    const byName = new Map(meta.schema.fields.map((f) => [f.name.toLowerCase(), f]));
    const problems: Array<{ index: number; errors: Array<{ reason: string; message: string; location?: string }> }> = [];
    const prepared: Array<{ index: number; fields: Field[]; values: Array<string | null> }> = [];
    rows.forEach((row, index) => {
      const fields: Field[] = [];
      const values: Array<string | null> = [];
      for (const [name, value] of Object.entries(row.json ?? {})) {
        const field = byName.get(name.toLowerCase());
        if (!field) {
          if (options.ignoreUnknownValues) continue;
          problems.push({ index, errors: [{ reason: 'invalid', location: name, message: 'no such field: ' + name + '.' }] });
          return;
        }
        fields.push(field);
        values.push(cellText(value, field));
      }
      for (const field of meta.schema.fields) {
        if (field.mode === 'REQUIRED' && !fields.includes(field)) {
          problems.push({
            index,
            errors: [{ reason: 'invalid', location: field.name, message: `Missing required field: ${field.name}.` }],
          });
          return;
        }
      }
      prepared.push({ index, fields, values });
    });
    if (problems.length > 0 && !options.skipInvalidRows) {
      // Without skipInvalidRows the whole request is rejected; the valid rows are reported as stopped.
      return [...problems, ...prepared.map((p) => ({ index: p.index, errors: [{ reason: 'stopped', message: '' }] }))];
    }
    const target = `${q(meta.tableReference.datasetId)}.${q(meta.tableReference.tableId)}`;
    for (const row of prepared) {
      if (row.fields.length === 0) continue;
      const values: Record<string, DuckDBValue> = {};
      const exprs = row.fields.map((f, i) => {
        values[`c${i}`] = row.values[i] ?? null;
        return f.type === 'BYTES' ? `from_base64(CAST($c${i} AS VARCHAR))` : `CAST($c${i} AS ${duckType(f)})`;
      });
      try {
        await this.#run(`INSERT INTO ${target} (${row.fields.map((f) => q(f.name)).join(', ')}) VALUES (${exprs.join(', ')})`, values);
      } catch (err) {
        problems.push({ index: row.index, errors: [{ reason: 'invalid', message: (err as Error).message }] });
      }
    }
    return problems;
  }

  // ---- load jobs ------------------------------------------------------------------------------

  async load(
    config: {
      destinationTable?: { projectId?: string; datasetId?: string; tableId?: string };
      sourceFormat?: string;
      schema?: TableSchema;
      writeDisposition?: string;
      createDisposition?: string;
      autodetect?: boolean;
    },
    file: string,
    location: string,
  ): Promise<{ outputRows: number }> {
    const ref = config.destinationTable ?? {};
    if (ref.projectId && ref.projectId !== this.project) throw notFound(`Project ${ref.projectId}`);
    const datasetId = ref.datasetId ?? '';
    const tableId = ref.tableId ?? '';
    const dataset = this.dataset(datasetId);
    if (dataset.location.toLowerCase() !== location.toLowerCase()) {
      throw notFound(`Dataset ${this.project}:${datasetId} was not found in location ${location}`);
    }
    const format = String(config.sourceFormat ?? 'CSV').toUpperCase();
    if (format !== 'PARQUET') throw invalid(`This fake loads PARQUET only, not ${format}`);
    const write = String(config.writeDisposition ?? 'WRITE_APPEND').toUpperCase();
    const create = String(config.createDisposition ?? 'CREATE_IF_NEEDED').toUpperCase();
    const key = tableKey(datasetId, tableId);
    let meta = this.tables.get(key);
    const given = config.schema?.fields ? normaliseFields(config.schema.fields, key) : undefined;
    const fields = given ?? meta?.schema.fields;
    if (!fields?.length) {
      if (!config.autodetect) throw invalid('No schema specified on job or table.');
    }

    const target = `${q(datasetId)}.${q(tableId)}`;
    const { fields: fileFields } = await this.#run(`SELECT * FROM read_parquet($file) LIMIT 0`, { file });
    const fileColumns = new Map(fileFields.map((f) => [f.name.toLowerCase(), f.name]));
    const schema = fields?.length ? fields : fileFields;
    for (const field of schema) {
      if (!fileColumns.has(field.name.toLowerCase()) && field.mode === 'REQUIRED') {
        throw invalid(`Error while reading data, error message: Required field ${field.name} is missing from the Parquet file`);
      }
    }
    const select = schema
      .map((f) => {
        const column = fileColumns.get(f.name.toLowerCase());
        return column === undefined ? `CAST(NULL AS ${duckType(f)})` : `CAST(${q(column)} AS ${duckType(f)})`;
      })
      .join(', ');

    let created = false;
    await this.#run('BEGIN TRANSACTION');
    try {
      if (!meta) {
        if (create === 'CREATE_NEVER') throw notFound(`Table ${this.project}:${key}`);
        this.#creating.add(key);
        meta = await this.createTable(datasetId, { tableReference: { tableId }, schema: { fields: schema } });
        created = true;
      } else if (write === 'WRITE_TRUNCATE') {
        if (given) {
          // WRITE_TRUNCATE takes the job's schema; the table keeps its other settings.
          const columns = given.map((f) => `${q(f.name)} ${duckType(f)}${f.mode === 'REQUIRED' ? ' NOT NULL' : ''}`);
          await this.#run(`DROP TABLE ${target}`);
          await this.#run(`CREATE TABLE ${target} (${columns.join(', ')})`);
          meta.schema = { fields: given };
        } else {
          await this.#run(`DELETE FROM ${target}`);
        }
      } else if (write === 'WRITE_EMPTY' && (await this.numRows(meta)) > 0) {
        throw new FakeError(409, 'duplicate', `Already Exists: Table ${this.project}:${key}`);
      }
      const into = meta.schema.fields.filter((f) => schema.some((s) => s.name.toLowerCase() === f.name.toLowerCase()));
      const result = await this.#run(
        `INSERT INTO ${target} (${into.map((f) => q(f.name)).join(', ')}) SELECT ${select} FROM read_parquet($file)`,
        { file },
      );
      await this.#run('COMMIT');
      meta.lastModifiedTime = now();
      return { outputRows: result.rowsChanged };
    } catch (err) {
      await this.#run('ROLLBACK').catch(() => undefined);
      // A table created by this job is rolled back with it.
      if (created) this.tables.delete(key);
      throw this.#explain(err, location);
    } finally {
      this.#creating.delete(key);
    }
  }

  // ---- queries --------------------------------------------------------------------------------

  /** Tables a translated query reads, from DuckDB's parse of it (see references.ts). */
  async #tablesOfQuery(duckSql: string, location: string, external: ReadonlySet<string> = new Set()): Promise<TableRef[]> {
    const { rows } = await this.#run('SELECT json_serialize_sql($tree_sql::VARCHAR)', { tree_sql: duckSql });
    const tree = JSON.parse(String(rows[0]?.[0])) as { error?: boolean; error_message?: string; statements?: unknown[] };
    if (tree.error) throw this.#explain(new Error(tree.error_message ?? 'syntax error'), location);
    return tablesOfQuery(tree.statements, this.project, external);
  }

  /**
   * Makes a job's external tables: DuckDB temp tables (dropped when the job ends, so the names
   * resolve for this job only), filled object by object so that rowid ranges tell each row's
   * object. Returns how `_FILE_NAME` reads: a pseudo-column, so it is not a column of the table and
   * `SELECT *` does not include it, as in BigQuery.
   */
  async #externalTables(tables: ExternalTable[]): Promise<TranslateContext['fileName']> {
    for (const table of tables) {
      await this.#run(`CREATE TEMP TABLE ${q(table.name)} (${table.fields.map((f) => `${q(f)} VARCHAR`).join(', ')})`);
      for (const object of table.objects) {
        await this.#run(`INSERT INTO ${q(table.name)} SELECT ${table.fields.map(q).join(', ')} FROM read_parquet($file)`, {
          file: object.file,
        });
      }
    }
    if (tables.length !== 1) {
      return () => {
        throw invalidQuery('This fake resolves _FILE_NAME in queries that define exactly one external table');
      };
    }
    let end = 0;
    const ranges = tables[0]!.objects.map((object) => ({ uri: object.uri, end: (end += object.rows) }));
    return (qualifier) => {
      const rowid = qualifier ? `${qualifier}.rowid` : 'rowid';
      const cases = ranges.map((r) => `WHEN ${rowid} < ${r.end} THEN '${r.uri.replaceAll("'", "''")}'`).join(' ');
      return `(CASE ${cases} END)`;
    };
  }

  #checkRefs(tables: TableRef[], location: string, requireTables = false): void {
    for (const ref of tables) {
      if (ref.project !== undefined && ref.project !== this.project) throw notFound(`Project ${ref.project}`);
      const dataset = this.datasets.get(ref.dataset);
      if (!dataset || dataset.location.toLowerCase() !== location.toLowerCase()) {
        throw notFound(`Dataset ${this.project}:${ref.dataset} was not found in location ${location}`);
      }
      if (requireTables && !this.tables.has(tableKey(ref.dataset, ref.table))) {
        throw notFound(`Table ${this.project}:${ref.dataset}.${ref.table} was not found in location ${location}`);
      }
    }
  }

  /** Runs a query job's SQL: one statement, or a script with variables and transactions. */
  async query(
    config: {
      query?: string;
      useLegacySql?: boolean;
      parameterMode?: string;
      queryParameters?: QueryParameter[];
      destinationTable?: { projectId?: string; datasetId?: string; tableId?: string };
      writeDisposition?: string;
      createDisposition?: string;
    },
    location: string,
    dryRun: boolean,
    external: ExternalTable[] = [],
    /** Told when a statement of the job starts and stops waiting in a table's DML queue (job PENDING). */
    onQueued: (queued: boolean) => void = () => undefined,
  ): Promise<QueryOutput> {
    if (config.useLegacySql !== false) throw invalidQuery('This fake speaks GoogleSQL only: set useLegacySql to false');
    if (dryRun && external.length > 0) throw invalid('This fake does not dry-run queries with tableDefinitions');
    const sql = config.query ?? '';
    const bound = bindParameters(config.queryParameters, config.parameterMode);
    const statements = splitStatements(sql);
    if (statements.length === 0) throw invalidQuery('Syntax error: Unexpected end of script at [1:1]');
    refuseJsonParameters(config.queryParameters, statements);
    const referee = this.#referee.script(
      config.queryParameters,
      config.parameterMode,
      external.map((t) => t.name),
    );
    const isScript = statements.length > 1 || /^(DECLARE|BEGIN|SET)\b/i.test(stripComments(statements[0]!));

    if (dryRun) {
      for (const statement of statements) await referee.statement(statement);
      if (isScript) return { statementType: 'SCRIPT', childJobs: 0, referencedTables: [] };
      const statementType = statementTypeOf(stripComments(statements[0]!));
      const translated = translate(statements[0]!, { project: this.project, params: bound.expressions });
      if (statementType !== 'SELECT') {
        // Validated, not planned: the fake reports the kind of statement and the tables it names.
        this.#checkRefs(translated.tables, location);
        return { statementType, childJobs: 0, referencedTables: translated.tables };
      }
      const tables = await this.#tablesOfQuery(translated.sql, location);
      this.#checkRefs(tables, location, true);
      try {
        const described = await this.#run(`SELECT * FROM (${translated.sql}) LIMIT 0`, bound.values);
        let bytesProcessed = 0;
        for (const ref of tables) {
          const table = `"${ref.dataset}"."${ref.table}"`;
          const [count] = (await this.#run(`SELECT count(*) FROM ${table}`)).rows;
          const columns = (await this.#run(`SELECT * FROM ${table} LIMIT 0`)).fields.length;
          bytesProcessed += Number(count?.[0] ?? 0) * columns * 8;
        }
        return {
          statementType: 'SELECT',
          result: { fields: described.fields, rows: [] },
          childJobs: 0,
          bytesProcessed,
          referencedTables: tables,
        };
      } catch (err) {
        throw this.#explain(err, location);
      }
    }

    const variables = new Map<string, { type: string; slot: string; expression: string }>();
    const values: Record<string, DuckDBValue> = { ...bound.values };
    const varExpressions = new Map<string, string>();
    let rowCount: number | null = null;
    let inTransaction = false;
    let transaction: TransactionSnapshot | undefined;
    // The mutating statement running now: its table, and its slot in that table's DML queue.
    let mutation: { table: string; release: () => void } | undefined;
    const settle = (succeeded: boolean) => {
      if (!mutation) return;
      if (succeeded && transaction) transaction.mutated.add(mutation.table);
      else if (succeeded) this.locks.committed([mutation.table]);
      mutation.release();
      mutation = undefined;
    };
    let output: QueryOutput = { statementType: isScript ? 'SCRIPT' : 'SELECT', childJobs: 0 };
    const externalNames = new Set(external.map((t) => t.name.toLowerCase()));
    let fileName: TranslateContext['fileName'];

    const context = (): TranslateContext => ({
      project: this.project,
      params: bound.expressions,
      ...(fileName ? { fileName } : {}),
      variables: varExpressions,
      systemVariables: new Map([['row_count', rowCount === null ? 'CAST(NULL AS BIGINT)' : `CAST(${rowCount} AS BIGINT)`]]),
    });
    const evaluate = async (expr: string, type: string): Promise<string | null> => {
      const translated = translate(expr, context());
      this.#checkRefs(translated.tables, location);
      const { rows } = await this.#run(`SELECT CAST(CAST((${translated.sql}) AS ${type}) AS VARCHAR)`, values);
      const v = rows[0]?.[0] ?? null;
      return v === null ? null : String(v);
    };

    try {
      if (external.length > 0) fileName = await this.#externalTables(external);
      for (const statement of statements) {
        settle(true);
        const text = stripComments(statement);
        await referee.statement(statement);
        if (!MUTATING_DML.test(text)) await this.holds.pass(text);
        const head = text.toUpperCase().replace(/\s+/g, ' ');
        if (isScript) output.childJobs++;

        if (head.startsWith('DECLARE ')) {
          const m = /^DECLARE\s+([A-Za-z_][\w\s,]*?)\s+([A-Za-z0-9_]+(?:\s*\([\d,\s]+\))?)(?:\s+DEFAULT\s+([\s\S]+))?$/i.exec(text);
          if (!m) throw invalidQuery(`Syntax error in DECLARE: ${text}`);
          const type = translate(m[2]!, { project: this.project, params: new Map() }).sql.trim();
          for (const name of m[1]!.split(',').map((n) => n.trim().toLowerCase())) {
            if (variables.has(name)) throw invalidQuery(`Variable ${name} is already declared`);
            const slot = `bqv_${variables.size}`;
            values[slot] = m[3] ? await evaluate(m[3], type) : null;
            const expression = `CAST($${slot} AS ${type})`;
            variables.set(name, { type, slot, expression });
            varExpressions.set(name, expression);
          }
          output.childJobs--;
          continue;
        }
        if (head.startsWith('SET ')) {
          const m = /^SET\s+([A-Za-z_]\w*)\s*=\s*([\s\S]+)$/i.exec(text);
          const variable = m ? variables.get(m[1]!.toLowerCase()) : undefined;
          if (!m || !variable) throw invalidQuery(`Unrecognized variable in: ${text}`);
          values[variable.slot] = await evaluate(m[2]!, variable.type);
          continue;
        }
        if (/^BEGIN( TRANSACTION)?$/.test(head)) {
          if (head === 'BEGIN') throw invalidQuery('BEGIN ... END blocks are not supported by this fake; use BEGIN TRANSACTION');
          if (inTransaction) throw invalidQuery('Nested transactions are not supported');
          await this.#run('BEGIN TRANSACTION');
          inTransaction = true;
          transaction = this.locks.begin();
          continue;
        }
        if (/^COMMIT( TRANSACTION)?$/.test(head)) {
          if (!inTransaction) throw invalidQuery('COMMIT TRANSACTION without an active transaction');
          // Refused (and rolled back below) when another writer changed a table this one changed.
          this.locks.commit(transaction!);
          await this.#run('COMMIT');
          inTransaction = false;
          transaction = undefined;
          continue;
        }
        if (/^ROLLBACK( TRANSACTION)?$/.test(head)) {
          if (!inTransaction) throw invalidQuery('ROLLBACK TRANSACTION without an active transaction');
          await this.#run('ROLLBACK');
          inTransaction = false;
          transaction = undefined;
          continue;
        }
        if (head.startsWith('ASSERT ')) {
          const m = /^ASSERT\s+([\s\S]+?)(?:\s+AS\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))?$/i.exec(text);
          const ok = await evaluate(m![1]!, 'BOOLEAN');
          if (ok !== 'true') throw invalidQuery(`Assertion failed: ${m?.[2] ? m[2].slice(1, -1) : m![1]}`);
          continue;
        }

        const ddl = /^(CREATE|ALTER|DROP|TRUNCATE)\b/.test(head);
        const temp = /^(CREATE (OR REPLACE )?(TEMP|TEMPORARY) |DROP TABLE (IF EXISTS )?[A-Za-z_]\w*$)/.test(head);
        if (inTransaction && ddl && !temp && !head.startsWith('TRUNCATE')) {
          throw invalidQuery(
            `${head.split(' ').slice(0, 2).join(' ')} is not supported inside a transaction: only DML and DDL on temporary tables are allowed in a multi-statement transaction`,
          );
        }
        if (/^(DELETE|UPDATE)\b/.test(head) && !/\bWHERE\b/.test(head)) {
          throw invalidQuery(`${head.startsWith('DELETE') ? 'DELETE' : 'UPDATE'} must have a WHERE clause`);
        }
        if (!/^(SELECT|WITH|\(|INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|TRUNCATE)\b|^\(/.test(head)) {
          throw invalidQuery(`Statement not supported by this fake: ${text.slice(0, 60)}`);
        }
        const mutated = MUTATING_DML.test(text) ? mutatedTable(text) : undefined;
        if (mutated) mutation = { table: mutated, release: await this.locks.mutatingSlot(mutated, onQueued) };
        if (MUTATING_DML.test(text)) await this.holds.pass(text);

        if (ddl) {
          const ddlOut = await this.#ddl(text, context(), values, location);
          if (!isScript) output.statementType = ddlOut;
          rowCount = null;
          continue;
        }

        const translated = translate(statement, context());
        this.#checkRefs(translated.tables, location, true);
        // A query reads only what GoogleSQL can name: no DuckDB table functions, no bare table names.
        if (/^(SELECT|WITH)\b|^\(/.test(head))
          this.#checkRefs(await this.#tablesOfQuery(translated.sql, location, externalNames), location, true);
        let duckSql = translated.sql;
        if (/^MERGE\b/.test(head) && !/^MERGE INTO\b/.test(head)) duckSql = duckSql.replace(/^\s*MERGE\b/i, 'MERGE INTO');
        const kind = /^(INSERT|UPDATE|DELETE|MERGE)\b/.exec(head)?.[1];
        if (kind) {
          const target = kind === 'MERGE' ? /^\s*MERGE\s+INTO\s+("(?:[^"]|"")+"\."(?:[^"]|"")+")/i.exec(duckSql)?.[1] : undefined;
          const count = async () => (target ? Number((await this.#run(`SELECT count(*) FROM ${target}`)).rows[0]?.[0] ?? 0) : 0);
          const apply = async () => {
            const before = await count();
            const result = await this.#run(duckSql, values);
            return { result, added: (await count()) - before };
          };
          // Outside a transaction the statement is one of its own (its counts see no other writer),
          // and a write-write conflict is retried as BigQuery retries conflicting DML.
          const { result, added } = inTransaction ? await apply() : await retryConflicts(() => this.#alone(apply));
          rowCount = result.rowsChanged;
          let inserted = kind === 'INSERT' ? result.rowsChanged : 0;
          const deleted = kind === 'DELETE' ? result.rowsChanged : 0;
          let updated = kind === 'UPDATE' ? result.rowsChanged : 0;
          if (kind === 'MERGE' && target) {
            inserted = Math.max(0, added);
            updated = result.rowsChanged - inserted;
          }
          if (!isScript) {
            output.statementType = kind;
            output.dml = { affected: result.rowsChanged, inserted, updated, deleted };
          }
          continue;
        }

        // A query.
        const destination = !isScript ? config.destinationTable : undefined;
        if (destination?.tableId) {
          output = { ...output, ...(await this.#queryInto(duckSql, values, destination, config, location)) };
          continue;
        }
        const result = await this.#run(duckSql, values);
        rowCount = null;
        output.result = { fields: result.fields, rows: result.rows };
        if (!isScript) output.statementType = 'SELECT';
      }
      settle(true);
      if (inTransaction) {
        // A script that ends inside a transaction is rolled back, as BigQuery does.
        await this.#run('ROLLBACK');
        inTransaction = false;
      }
      return output;
    } catch (err) {
      const contended = mutation?.table ?? [...(transaction?.mutated ?? [])][0];
      settle(false);
      if (inTransaction) await this.#run('ROLLBACK').catch(() => undefined);
      await this.#syncCatalog(location).catch(() => undefined);
      // DuckDB's own write-write conflict, in BigQuery's words.
      if (contended && isWriteConflict(err)) throw inTransaction ? this.locks.aborted(contended) : this.locks.unserializable(contended);
      throw this.#explain(err, location);
    } finally {
      await this.#dropTempTables();
    }
  }

  /** Runs `work` in a database transaction of its own. */
  async #alone<T>(work: () => Promise<T>): Promise<T> {
    await this.#run('BEGIN TRANSACTION');
    try {
      const result = await work();
      await this.#run('COMMIT');
      return result;
    } catch (err) {
      await this.#run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async #queryInto(
    duckSql: string,
    values: Record<string, DuckDBValue>,
    destination: { projectId?: string; datasetId?: string; tableId?: string },
    config: { writeDisposition?: string; createDisposition?: string },
    location: string,
  ): Promise<Partial<QueryOutput>> {
    const datasetId = destination.datasetId ?? '';
    const tableId = destination.tableId ?? '';
    if (destination.projectId && destination.projectId !== this.project) throw notFound(`Project ${destination.projectId}`);
    this.#checkRefs([{ project: undefined, dataset: datasetId, table: tableId }], location);
    const key = tableKey(datasetId, tableId);
    const existing = this.tables.get(key);
    const write = String(config.writeDisposition ?? 'WRITE_EMPTY').toUpperCase();
    const create = String(config.createDisposition ?? 'CREATE_IF_NEEDED').toUpperCase();
    const target = `${q(datasetId)}.${q(tableId)}`;
    if (!existing && create === 'CREATE_NEVER') throw notFound(`Table ${this.project}:${key}`);
    if (!existing || write === 'WRITE_TRUNCATE') {
      await this.#run(`CREATE OR REPLACE TABLE ${target} AS ${duckSql}`, values);
    } else if (write === 'WRITE_APPEND') {
      await this.#run(`INSERT INTO ${target} ${duckSql}`, values);
    } else {
      if ((await this.numRows(existing)) > 0) throw new FakeError(409, 'duplicate', `Already Exists: Table ${this.project}:${key}`);
      await this.#run(`INSERT INTO ${target} ${duckSql}`, values);
    }
    if (existing && write === 'WRITE_TRUNCATE') existing.schema = { fields: [] };
    await this.#syncCatalog(location);
    const meta = this.tables.get(key)!;
    meta.lastModifiedTime = now();
    const { rows } = await this.#run(`SELECT ${meta.schema.fields.map((f) => q(f.name)).join(', ')} FROM ${target}`);
    return { statementType: 'SELECT', result: { fields: meta.schema.fields, rows }, destination: { datasetId, tableId } };
  }

  /** CREATE / ALTER / DROP / TRUNCATE, with BigQuery's table options remembered as metadata. */
  async #ddl(text: string, ctx: TranslateContext, values: Record<string, DuckDBValue>, location: string): Promise<string> {
    const head = text.toUpperCase().replace(/\s+/g, ' ');
    const schemaMatch = /^(CREATE|DROP) SCHEMA (IF (NOT )?EXISTS )?`?([A-Za-z0-9_.-]+)`?/i.exec(text);
    if (schemaMatch) {
      const datasetId = schemaMatch[4]!.split('.').pop()!;
      if (schemaMatch[1]!.toUpperCase() === 'CREATE') {
        if (this.datasets.has(datasetId)) {
          if (!schemaMatch[2]) throw new FakeError(409, 'duplicate', `Already Exists: Dataset ${this.project}:${datasetId}`);
        } else {
          await this.createDataset({ datasetReference: { datasetId }, location });
        }
        return 'CREATE_SCHEMA';
      }
      if (this.datasets.has(datasetId)) await this.deleteDataset(datasetId, /\bCASCADE\b/.test(head));
      else if (!schemaMatch[2]) throw notFound(`Dataset ${this.project}:${datasetId}`);
      return 'DROP_SCHEMA';
    }

    let body = text;
    let partitioning: TableMeta['timePartitioning'];
    let clustering: TableMeta['clustering'];
    let description: string | undefined;
    if (/^CREATE\b/.test(head)) {
      const extracted = extractTableOptions(body);
      body = extracted.sql;
      partitioning = extracted.partitioning;
      clustering = extracted.clustering;
      description = extracted.description;
    }
    const translated = translate(body, ctx);
    this.#checkRefs(translated.tables, location);
    const view = VIEW_DDL.exec(text);
    if (view) await this.#checkViewBody(translated.sql, values, location);
    const alter = /^\s*ALTER\s+TABLE\s+((?:IF\s+EXISTS\s+)?"(?:[^"]|"")+"\."(?:[^"]|"")+")\s+([\s\S]+)$/i.exec(translated.sql);
    if (alter) {
      // BigQuery takes several actions in one ALTER TABLE; DuckDB one at a time.
      for (const action of splitTopLevel(alter[2]!)) await this.#run(`ALTER TABLE ${alter[1]} ${action.trim()}`, values);
    } else {
      await this.#run(translated.sql, values);
    }
    await this.#syncCatalog(location);
    if (view) {
      // The view is the first table its statement names; what follows AS is its GoogleSQL body.
      const made = translated.tables[0];
      const meta = made ? this.tables.get(tableKey(made.dataset, made.table)) : undefined;
      if (meta) meta.view = { query: view[1]!.trim(), useLegacySql: false };
      return 'CREATE_VIEW';
    }
    const created = /^CREATE (OR REPLACE )?TABLE (IF NOT EXISTS )?/.test(head) ? translated.tables[0] : undefined;
    if (created) {
      const meta = this.tables.get(tableKey(created.dataset, created.table));
      if (meta) {
        if (partitioning) meta.timePartitioning = partitioning;
        if (clustering) meta.clustering = clustering;
        if (description) meta.description = description;
        if (partitioning || clustering) validatePartitioning(meta.schema.fields, meta, meta.id);
      }
    }
    return head.split(' ').slice(0, 2).join('_');
  }

  /**
   * BigQuery's rules for a view body: it is a query, it names no query parameter ("You cannot
   * reference query parameters in views") and every table it reads exists and names its dataset.
   */
  async #checkViewBody(duckSql: string, values: Record<string, DuckDBValue>, location: string): Promise<void> {
    const body = TRANSLATED_VIEW_DDL.exec(duckSql)?.[1];
    if (!body) throw invalidQuery('CREATE VIEW needs AS followed by a query');
    if (Object.keys(values).some((name) => new RegExp(`\\$${name}\\b`).test(body))) {
      throw invalidQuery('Query parameters cannot be used in a view definition');
    }
    this.#checkRefs(await this.#tablesOfQuery(body, location), location, true);
  }

  async #dropTempTables(): Promise<void> {
    const { rows } = await this.#run("SELECT table_name FROM duckdb_tables() WHERE database_name = 'temp'");
    for (const [name] of rows) await this.#run(`DROP TABLE temp.main.${q(String(name))}`);
  }

  /** The tables a statement can name now: the datasets' tables and the job's temporary tables. */
  async #catalogTables(): Promise<CatalogTable[]> {
    const permanent = [...this.tables.values()].map((t) => ({
      dataset: t.tableReference.datasetId,
      table: t.tableReference.tableId,
      fields: t.schema.fields,
    }));
    const { rows } = await this.#run(
      "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() WHERE database_name = 'temp' ORDER BY table_name, column_index",
    );
    const temporary = new Map<string, CatalogTable>();
    for (const [table, column, dataType, nullable] of rows) {
      const entry = temporary.get(String(table)) ?? { table: String(table), fields: [] };
      entry.fields.push(fieldFromDataType(String(column), String(dataType), Boolean(nullable)));
      temporary.set(entry.table, entry);
    }
    return [...permanent, ...temporary.values()];
  }

  /**
   * Brings the metadata in line with DuckDB after SQL DDL (new tables, added or dropped columns).
   * Reads what is committed, on a connection of its own (a job's own may be inside a transaction,
   * blind to tables made since it began), in turn with the metadata calls (tables.insert and the
   * like) so that an older read never lands after a newer change.
   */
  #syncCatalog(location: string): Promise<void> {
    return this.exclusive(() => this.#syncCommitted(location));
  }

  async #syncCommitted(location: string): Promise<void> {
    const conn = await this.#connect();
    let rows: DuckDBValue[][];
    try {
      const reader = await conn.runAndReadAll(
        `SELECT schema_name, table_name, column_name, data_type, is_nullable FROM duckdb_columns()
         WHERE database_name = current_database() AND NOT internal ORDER BY schema_name, table_name, column_index`,
      );
      rows = reader.getRows();
    } finally {
      conn.closeSync();
    }
    const views = new Set<string>();
    const viewConn = await this.#connect();
    try {
      const reader = await viewConn.runAndReadAll(
        'SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT internal',
      );
      for (const [schema, view] of reader.getRows()) views.add(tableKey(String(schema), String(view)));
    } finally {
      viewConn.closeSync();
    }
    const seen = new Map<string, Field[]>();
    for (const [schema, table, column, dataType, nullable] of rows) {
      const key = tableKey(String(schema), String(table));
      if (!this.datasets.has(String(schema))) continue;
      if (!seen.has(key)) seen.set(key, []);
      seen.get(key)!.push(fieldFromDataType(String(column), String(dataType), Boolean(nullable)));
    }
    for (const key of this.tables.keys()) if (!seen.has(key) && !this.#creating.has(key)) this.tables.delete(key);
    for (const [key, columns] of seen) {
      const [datasetId, tableId] = [key.slice(0, key.indexOf('.')), key.slice(key.indexOf('.') + 1)];
      const meta = this.tables.get(key);
      if (!meta) {
        const dataset = this.datasets.get(datasetId)!;
        this.tables.set(key, {
          kind: 'bigquery#table',
          id: `${this.project}:${key}`,
          etag: etag(),
          tableReference: { projectId: this.project, datasetId, tableId },
          type: views.has(key) ? 'VIEW' : 'TABLE',
          schema: { fields: columns },
          location: dataset?.location ?? location,
          creationTime: now(),
          lastModifiedTime: now(),
        });
        continue;
      }
      const current = new Map(meta.schema.fields.map((f) => [f.name.toLowerCase(), f]));
      meta.schema = { fields: columns.map((c) => current.get(c.name.toLowerCase()) ?? c) };
      // CREATE OR REPLACE swaps a view's columns wholesale, and a table may have taken a view's name.
      if (views.has(key)) {
        if (meta.type !== 'VIEW') meta.schema = { fields: columns };
        meta.type = 'VIEW';
      } else {
        meta.type = 'TABLE';
        delete meta.view;
      }
    }
  }
}

/** A CREATE VIEW statement, and its body (the query after AS). */
const VIEW_DDL = /^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:`[^`]+`|[\w.-]+)\s+AS\b([\s\S]*)$/i;

/** The same statement after translation, its names double-quoted: `CREATE VIEW "ds"."v" AS <query>`. */
const TRANSLATED_VIEW_DDL =
  /^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:"(?:[^"]|"")+"\.)*"(?:[^"]|"")+"\s+AS\b([\s\S]*)$/i;

const isWriteConflict = (err: unknown) => /\bconflict\b/i.test((err as Error)?.message ?? '');

/** A DML statement outside a transaction that hit a write-write conflict, run again a few times. */
async function retryConflicts<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= 4 || !isWriteConflict(err)) throw err;
      await sleep(10 * 2 ** attempt);
    }
  }
}

const MUTATED_TABLE =
  /^(?:UPDATE|DELETE(?:\s+FROM)?|MERGE(?:\s+INTO)?|TRUNCATE\s+TABLE)\s+(`[^`]+`|[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*){1,2})/i;

/** The permanent table (dataset.table) an UPDATE, DELETE, MERGE or TRUNCATE changes; none for a temporary table. */
function mutatedTable(text: string): string | undefined {
  const name = MUTATED_TABLE.exec(text)?.[1]?.replaceAll('`', '');
  const parts = name?.split('.') ?? [];
  return parts.length >= 2 ? tableKey(parts.at(-2)!, parts.at(-1)!) : undefined;
}

/** PARTITION BY / CLUSTER BY / OPTIONS(...) of a CREATE TABLE, removed from the SQL and returned. */
function extractTableOptions(sql: string): {
  sql: string;
  partitioning?: TableMeta['timePartitioning'];
  clustering?: TableMeta['clustering'];
  description?: string;
} {
  // Options sit between the table name and AS SELECT; a window's PARTITION BY in the query is not one.
  const as = /\bAS\s*\(?\s*(SELECT|WITH)\b/i.exec(sql);
  const tail = as ? sql.slice(as.index) : '';
  let out = as ? sql.slice(0, as.index) : sql;
  let partitioning: TableMeta['timePartitioning'];
  let clustering: TableMeta['clustering'];
  let description: string | undefined;
  const options = /\bOPTIONS\s*\(/i.exec(out);
  if (options) {
    const open = options.index + options[0].length - 1;
    const close = closingParen(out, open);
    const inner = out.slice(open + 1, close);
    description = /description\s*=\s*(['"])((?:\\.|(?!\1).)*)\1/i.exec(inner)?.[2];
    out = out.slice(0, options.index) + out.slice(close + 1);
  }
  const cluster = /\bCLUSTER\s+BY\s+([`"\w\s,]+?)(?=\s+(AS\b|OPTIONS\b|PARTITION\b)|\s*$)/i.exec(out);
  if (cluster) {
    clustering = { fields: splitTopLevel(cluster[1]!).map((f) => f.trim().replace(/[`"]/g, '')) };
    out = out.slice(0, cluster.index) + out.slice(cluster.index + cluster[0].length);
  }
  const partition = /\bPARTITION\s+BY\s+([\s\S]+?)(?=\s+(AS\b|OPTIONS\b|CLUSTER\b)|\s*$)/i.exec(out);
  if (partition) {
    const expr = partition[1]!.trim();
    const field = /([A-Za-z_]\w*)`?\s*\)?(\s*,\s*(DAY|HOUR|MONTH|YEAR))?\s*\)?$/i.exec(expr.replace(/`/g, ''));
    const unit = /,\s*(DAY|HOUR|MONTH|YEAR)\s*\)$/i.exec(expr)?.[1]?.toUpperCase() ?? 'DAY';
    partitioning = { type: unit, ...(field ? { field: field[1]! } : {}) };
    out = out.slice(0, partition.index) + out.slice(partition.index + partition[0].length);
  }
  return { sql: `${out} ${tail}`, partitioning, clustering, description };
}

const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

export function validateLabels(labels: Record<string, string> | undefined): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(key))
      throw invalid(
        `Invalid label key "${key}": keys start with a lowercase letter and contain only lowercase letters, digits, "_" and "-" (at most 63)`,
      );
    if (typeof value !== 'string' || !LABEL_VALUE.test(value)) {
      throw invalid(
        `Invalid label value "${value}" for key "${key}": values contain only lowercase letters, digits, "_" and "-" (at most 63)`,
      );
    }
  }
  if (Object.keys(labels ?? {}).length > 64) throw invalid('A resource can have at most 64 labels');
}

/**
 * BigQuery documents JSON-typed query parameters for INSERT only (the client libraries: "only
 * supported in INSERT"); the fake refuses them anywhere else, so an adapter that binds them in an
 * UPDATE or MERGE fails here as it could in production.
 */
function refuseJsonParameters(parameters: QueryParameter[] | undefined, statements: string[]): void {
  const json = (parameters ?? []).find((p) => String(p.parameterType?.type ?? '').toUpperCase() === 'JSON');
  if (!json) return;
  const other = statements.map((s) => stripComments(s).trim()).find((s) => !/^(INSERT|DECLARE|BEGIN|COMMIT|ROLLBACK)\b/i.test(s));
  if (other !== undefined) {
    throw invalidQuery(`Query parameter '${json.name}' of type JSON is supported in INSERT statements only, not in: ${other.slice(0, 60)}`);
  }
}

const CLUSTERABLE = new Set(['STRING', 'INTEGER', 'NUMERIC', 'BIGNUMERIC', 'DATE', 'DATETIME', 'TIMESTAMP', 'BOOLEAN', 'GEOGRAPHY']);

function validatePartitioning(fields: Field[], body: Pick<Partial<TableMeta>, 'timePartitioning' | 'clustering'>, where: string): void {
  const byName = new Map(fields.map((f) => [f.name.toLowerCase(), f]));
  const tp = body.timePartitioning;
  if (tp) {
    if (tp.type && !['DAY', 'HOUR', 'MONTH', 'YEAR'].includes(tp.type)) throw invalid(`Invalid time partitioning type ${tp.type}`);
    if (tp.field) {
      const field = byName.get(tp.field.toLowerCase());
      if (!field)
        throw invalid(
          `The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: NULL (field ${tp.field} of ${where} does not exist).`,
        );
      if (!['DATE', 'TIMESTAMP', 'DATETIME'].includes(field.type) || field.mode === 'REPEATED') {
        throw invalid(
          `The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: ${field.type}.`,
        );
      }
    }
  }
  const clustering = body.clustering?.fields;
  if (clustering) {
    if (clustering.length === 0 || clustering.length > 4) throw invalid('Too many clustering fields: at most 4 are allowed');
    for (const name of clustering) {
      const field = byName.get(name.toLowerCase());
      if (!field) throw invalid(`The field specified for clustering cannot be found in the schema. Invalid field: ${name}.`);
      if (!CLUSTERABLE.has(field.type) || field.mode === 'REPEATED') {
        throw invalid(`Field ${name} is of type ${field.type} which is not supported for clustering`);
      }
    }
  }
}
