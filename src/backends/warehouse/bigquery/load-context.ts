import type { TableField } from '@google-cloud/bigquery';
import type { TableSpec, TenantQueryCheck, TenantSqlScope } from '../port.ts';
import type { JobRunner } from './jobs.ts';
import type { TableInfo } from './sql.ts';

/** What a load needs of the BigQuery adapter: its job runner, table metadata and the tenant SQL gate. */
export interface LoadContext {
  project: string;
  jobs: JobRunner;
  stagingTtlMs: number;
  datasetExists(dataset: string): Promise<boolean>;
  /** Live schema (no cache), or undefined when the table is missing. */
  tableFields(dataset: string, table: string): Promise<TableField[] | undefined>;
  /** Rows in a table (tables.get numRows), or undefined when it is missing. */
  tableRows(dataset: string, table: string): Promise<number | undefined>;
  tableInfo(dataset: string, table: string): Promise<TableInfo>;
  createTable(dataset: string, spec: TableSpec, extra?: { expirationTime?: string; labels?: Record<string, string> }): Promise<boolean>;
  dropTable(dataset: string, table: string): Promise<void>;
  setExpiration(dataset: string, table: string, expirationTime: string): Promise<void>;
  forget(dataset: string, table: string): void;
  labelValue(value: string): string;
  /** The tenant SQL gate (a dry run): a query source runs only once it has passed. */
  checkTenantQuery(sql: string, scope: TenantSqlScope): Promise<TenantQueryCheck>;
}
