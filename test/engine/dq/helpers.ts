import path from 'node:path';
import type { FieldSpec, Row } from '../../../src/backends/warehouse/port.ts';
import { DuckDbWarehouse } from '../../../src/backends/warehouse/duckdb/index.ts';
import type { DqWarehouse } from '../../../src/engine/dq/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';

export const DATASET = 'acme_corp';
/** The run clock of every test: freshness thresholds are computed from it. */
export const NOW = new Date('2025-01-10T06:00:00Z');

export async function freshWarehouse(label: string): Promise<DuckDbWarehouse> {
  const wh = new DuckDbWarehouse({ file: path.join(await makeTempDir(`dq-${label}`), 'warehouse.duckdb') });
  await wh.createDataset(DATASET);
  return wh;
}

export async function makeTable(wh: DuckDbWarehouse, name: string, fields: FieldSpec[], rows: Row[]): Promise<void> {
  await wh.createTable(DATASET, { name, fields });
  await wh.insert(DATASET, name, rows);
}

/** Passes calls through and records every SQL statement sent with `query` or `queryTenant`. */
export function recording(wh: DqWarehouse): { warehouse: DqWarehouse; statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    warehouse: {
      dialect: wh.dialect,
      qualify: (dataset, table) => wh.qualify(dataset, table),
      getTableFields: (dataset, table) => wh.getTableFields(dataset, table),
      checkTenantExpression: (expr, scope) => wh.checkTenantExpression(expr, scope),
      query: (sql, params) => {
        statements.push(sql);
        return wh.query(sql, params);
      },
      queryTenant: (sql, scope) => {
        statements.push(sql);
        return wh.queryTenant(sql, scope);
      },
    },
  };
}
