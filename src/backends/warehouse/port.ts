/**
 * Warehouse port: the only way services and the engine touch tabular storage. Datasets map to
 * BigQuery datasets (gcp) or DuckDB schemas (local). Structured operations take identifiers that
 * the adapter validates and quotes, and values that are always bound as parameters — callers
 * never splice values into SQL. `query` is the escape hatch for SQL the engine owns; it takes
 * named parameters written as `@name` in both dialects.
 */
import type { FieldSpec, FieldType, Row, Scalar } from './columns.ts';
import type { SqlDialect } from './dialect.ts';

export type { FieldSpec, FieldType, Row, Scalar } from './columns.ts';

export interface TableSpec {
  name: string;
  fields: FieldSpec[];
  description?: string;
  /** DATE or TIMESTAMP column the table is partitioned on (BigQuery); ignored locally. */
  partitionBy?: string;
  clusterBy?: string[];
}

/** Values bound as parameters. DATE columns take 'YYYY-MM-DD' strings; TIMESTAMP takes Date. */

type Comparison =
  { op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: Scalar } | { op: 'in'; values: Scalar[] } | { op: 'is null' | 'is not null' };
/** Conjunction of column conditions; a bare scalar means equality (null means IS NULL). */
export type Where = Record<string, Scalar | Comparison>;

export interface SelectOptions {
  where?: Where;
  columns?: string[];
  orderBy?: Array<[column: string, direction: 'asc' | 'desc']>;
  limit?: number;
  offset?: number;
}

export type WriteOp =
  | { kind: 'insert'; dataset: string; table: string; rows: Row[] }
  | { kind: 'update'; dataset: string; table: string; set: Row; where: Where }
  | { kind: 'delete'; dataset: string; table: string; where: Where };

/** Where the rows of a load come from. */
type LoadSource =
  /** Staged Parquet files (./staged.ts): rows with a `__reason` go to quarantine. */
  | { kind: 'parquet'; files: string[]; fields: FieldSpec[] }
  /**
   * A transform's SELECT, run in the warehouse. It is tenant SQL: the load checks it as
   * `checkTenantQuery` does, against the load's own dataset, before anything runs.
   */
  | { kind: 'query'; sql: string; params?: Record<string, Scalar>; origin?: string }
  /** Cloud Storage objects the warehouse reads itself; only where `loadsObjects` is true. */
  | ObjectSource
  /** Local CSV files the warehouse reads and types itself; only where `readsCsvFiles` is true. */
  | CsvFilesSource;

/**
 * Local CSV files read by the warehouse's own reader, with no row passing through the engine: the
 * fast way in for well-formed files. It lands only files the engine would land whole: at the
 * first value that does not type exactly as the engine types it, the first ragged line or bad
 * byte, the load writes nothing and throws CsvNeedsStaging, and the engine stages the files
 * itself (which quarantines those rows with their reasons and lines).
 */
export interface CsvFilesSource {
  kind: 'csv-files';
  files: Array<{
    /** The file, already resolved and checked to lie where the tenant may read. */
    path: string;
    /** The file's columns in order, each the field it feeds or null when not loaded. */
    columns: Array<string | null>;
  }>;
  delimiter: string;
  hasHeader: boolean;
  fields: FieldSpec[];
}

/** Thrown by a `csv-files` load that wrote nothing because the files need the engine's careful reading. */
export class CsvNeedsStaging extends Error {
  readonly why: string;

  constructor(why: string) {
    super(`the CSV files need staging: ${why}`);
    this.name = 'CsvNeedsStaging';
    this.why = why;
  }
}

/**
 * Text objects in Cloud Storage (`gs://bucket/name`, one `*` allowed), read by the warehouse with no
 * byte passing through the caller. Every column is read as text and typed in SQL, so a value that
 * does not fit its type reaches quarantine with a reason, as a staged row does.
 */
export interface ObjectSource {
  kind: 'objects';
  uris: string[];
  format: 'csv' | 'ndjson';
  csv?: {
    delimiter: string;
    hasHeader: boolean;
    /**
     * The objects' columns in file order, each the field it feeds or null when the schema has no
     * such column (not loaded); a field not listed is missing from the objects. Without it, the
     * objects hold the fields in schema order.
     */
    columns?: Array<string | null>;
  };
  fields: FieldSpec[];
  /** An incremental cursor the warehouse moves itself, from the rows it reads. */
  cursor?: ObjectCursor;
}

interface ObjectCursor {
  field: string;
  /** The committed cursor: only rows whose typed cursor is after it are loaded. */
  after?: string;
  /** The writes that commit `value`, the greatest cursor of the rows loaded; added to the load's alsoWrite. */
  commit(value: string): WriteOp[];
}

export interface LoadRequest {
  dataset: string;
  table: string;
  source: LoadSource;
  writeMode: 'append' | 'replace' | 'merge';
  /** Required for merge: a staged row replaces the destination row with the same keys. */
  mergeKeys?: string[];
  partitionBy?: string;
  clusterBy?: string[];
  /** Tags quarantined rows and, in BigQuery, the job labels and ids. */
  runId: string;
  /** Committed in the same transaction as the data, e.g. the incremental cursor. */
  alsoWrite?: WriteOp[];
}

export interface LoadResult {
  /** Rows now in the destination that came from this load (inserted + updated). */
  rowsLoaded: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsQuarantined: number;
  /** Columns added to an existing destination (schema evolution). */
  columnsAdded: string[];
  /** True when the destination did not exist before. */
  created: boolean;
  /** For an objects load with a cursor: the greatest cursor of the rows loaded; undefined when none loaded. */
  cursorMax?: string;
}

/**
 * A view of a tenant's dataset: stored SQL the warehouse resolves whenever the view is read. The SQL
 * is tenant SQL, checked as `checkTenantQuery` checks it against `dataset`; what is stored reads
 * only tables of that dataset, named with their dataset, so it resolves there whoever reads it.
 */
export interface ViewRequest {
  dataset: string;
  view: string;
  /** One query, without parameters: nothing binds values when the view is read later. */
  sql: string;
  /** Where the SQL came from, for messages, e.g. configs/acme_corp/sql/v_cost.sql. */
  origin?: string;
  /**
   * A table of the view's name is dropped (rows and all) for the view. Without it such a table is
   * an error (VIEW_REPLACES_TABLE): replacing data by a view is the user's explicit choice.
   */
  replaceTable?: boolean;
}

export interface ViewResult {
  /** True when no view of that name existed before. */
  created: boolean;
  /** True when a table of that name was dropped for the view. */
  replacedTable: boolean;
  /** The view's columns. */
  fields: FieldSpec[];
}

/** Name of the table that keeps rows a load could not type. */
export const quarantineTable = (table: string) => `${table}__quarantine`;

/**
 * Where SQL written by a tenant (transforms, DQ expressions) may read. Tenant SQL is one query
 * statement over tables of `dataset` only; the warehouse's own parser decides what it reads.
 */
export interface TenantSqlScope {
  /** The tenant's dataset: the only one the SQL may read. */
  dataset: string;
  /** Values of the `@name` parameters the SQL uses (template variables). */
  params?: Record<string, Scalar>;
  /** Where the SQL came from, for messages, e.g. configs/acme_corp/sql/fct.sql. */
  origin?: string;
}

export interface TenantExpressionScope {
  dataset: string;
  /** The table whose rows the expression is evaluated on. */
  table: string;
  origin?: string;
}

export interface TenantQueryCheck {
  /** Tables the query reads, as dataset.table (CTE names resolved away). */
  tables: string[];
}

export interface Warehouse {
  /** The SQL `query` speaks, for the SQL the engine writes itself; its name says which warehouse this is. */
  readonly dialect: SqlDialect;
  /** Human-readable location for messages, e.g. the DuckDB file or project id. */
  readonly describe: string;
  /** True when `load` takes an `objects` source: the warehouse reads gs:// objects itself. */
  readonly loadsObjects?: boolean;
  /** The field types a `csv-files` source may have here; omitted when `load` takes no such source. */
  readonly csvFileTypes?: readonly FieldType[];

  datasetExists(dataset: string): Promise<boolean>;
  /** Creates the dataset when missing; returns whether it was created. */
  createDataset(dataset: string): Promise<boolean>;
  /** Drops the dataset and everything in it; a missing dataset is not an error. */
  dropDataset(dataset: string): Promise<void>;
  listTables(dataset: string): Promise<string[]>;
  tableExists(dataset: string, table: string): Promise<boolean>;
  /** Creates the table when missing; returns whether it was created. */
  createTable(dataset: string, spec: TableSpec): Promise<boolean>;
  dropTable(dataset: string, table: string): Promise<void>;
  /** Current columns, or undefined when the table does not exist. */
  getTableFields(dataset: string, table: string): Promise<FieldSpec[] | undefined>;
  /**
   * Current columns of every table and view of the dataset, in one read. Omitted where a lookup
   * per table costs no more (BigQuery answers each from table metadata).
   */
  getDatasetFields?(dataset: string): Promise<Map<string, FieldSpec[]>>;

  insert(dataset: string, table: string, rows: Row[]): Promise<void>;
  select(dataset: string, table: string, options?: SelectOptions): Promise<Row[]>;
  count(dataset: string, table: string, where?: Where): Promise<number>;
  /** Returns the number of rows changed. */
  update(dataset: string, table: string, set: Row, where: Where): Promise<number>;
  delete(dataset: string, table: string, where: Where): Promise<number>;
  /** Applies every operation or none of them. */
  atomic(ops: WriteOp[]): Promise<void>;

  /**
   * Lands rows in a destination atomically: creates the table when missing, adds new columns,
   * refuses incompatible type changes (SCHEMA_INCOMPATIBLE, exit 3), applies the write mode,
   * sends rejected staged rows to quarantine and applies `alsoWrite` — all or nothing. A rejected
   * row already in quarantine (same file, line, reason and values) is not added or counted again.
   */
  load(request: LoadRequest): Promise<LoadResult>;

  /** Creates or replaces a view of tenant SQL (see ViewRequest); refused before anything changes. */
  createView(request: ViewRequest): Promise<ViewResult>;

  /** Fully qualified, quoted table reference in this warehouse's dialect. */
  qualify(dataset: string, table: string): string;
  /** Runs SQL the caller owns. Values go in `params` and appear as `@name` in the text. */
  query(sql: string, params?: Record<string, Scalar>): Promise<Row[]>;

  /**
   * Checks tenant SQL with this warehouse's own parser (DuckDB's parse, BigQuery's dry run): one
   * query statement, reading only tables of `scope.dataset`, no table functions, files, URLs,
   * catalogs or settings. Throws exit 2 (TENANT_SQL_REFUSED / TENANT_SQL_INVALID) naming
   * `scope.origin` and, where the parser tells, the line.
   */
  checkTenantQuery(sql: string, scope: TenantSqlScope): Promise<TenantQueryCheck>;
  /**
   * Checks a tenant's DQ expression: one condition over a row of `scope.table`, no subqueries.
   * Returns the text to put in the engine's SQL (DuckDB: the parser's restatement of it).
   */
  checkTenantExpression(expr: string, scope: TenantExpressionScope): Promise<string>;
  /** Runs SQL that holds tenant text: checked as by checkTenantQuery, then run where it can reach nothing else. */
  queryTenant(sql: string, scope: TenantSqlScope): Promise<Row[]>;

  /**
   * The same warehouse with its jobs labelled (tenant_id, pipeline_id, run_id), so a run's cost
   * can be traced in BigQuery's job history. Warehouses without job labels omit it.
   */
  withLabels?(labels: Record<string, string>): Warehouse;
  /** Bytes a query would scan, from a dry run; omitted where the warehouse cannot tell. */
  estimateBytes?(sql: string, params?: Record<string, Scalar>): Promise<number>;

  close(): Promise<void>;
}
