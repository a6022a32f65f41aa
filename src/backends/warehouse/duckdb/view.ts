import { notFoundError } from '../../../lib/errors.ts';
import type { ViewRequest, ViewResult } from '../port.ts';
import { viewReplacesTable } from '../views.ts';
import { fieldType, inTransaction, q, type Session } from './session.ts';

/** Whether the name is taken in the dataset, and by what (DuckDB names fold case). */
async function objectKind(s: Session, dataset: string, name: string): Promise<'table' | 'view' | undefined> {
  const rows = await s.rows(
    `SELECT 'view' AS kind FROM duckdb_views()
       WHERE database_name = current_database() AND schema_name = $d AND lower(view_name) = lower($n)
     UNION ALL
     SELECT 'table' AS kind FROM duckdb_tables()
       WHERE database_name = current_database() AND schema_name = $d AND lower(table_name) = lower($n)`,
    { d: dataset, n: name },
  );
  const kind = rows[0]?.['kind'];
  return kind === 'view' || kind === 'table' ? kind : undefined;
}

/** Drops a table or a view of that name, as BigQuery's tables.delete does; a missing one is fine. */
export async function dropTableOrView(s: Session, dataset: string, name: string): Promise<void> {
  const kind = await objectKind(s, dataset, name);
  if (kind) await s.exec(`DROP ${kind === 'view' ? 'VIEW' : 'TABLE'} IF EXISTS ${q(dataset)}.${q(name)}`);
}

/**
 * CREATE OR REPLACE VIEW of a query the tenant SQL gate has checked and restated: one SELECT whose
 * tables are all written "<dataset>"."<table>" (the gate refuses bare names that are not CTEs, and
 * other catalogs or schemas). DuckDB binds a view's names in the catalog that holds the view, so the
 * stored text resolves to the tenant's own schema whoever reads it later (another tenant, `serve`,
 * the same file attached under another name); a name that could mean another attached database is
 * refused by DuckDB as ambiguous, never resolved there. One transaction: a table dropped for the
 * view comes back if the view cannot be made.
 */
export async function createViewIn(s: Session, request: ViewRequest, checkedSql: string): Promise<ViewResult> {
  const { dataset, view } = request;
  if (!(await s.datasetExists(dataset))) throw notFoundError(`dataset ${dataset} does not exist`);
  return inTransaction(s, async () => {
    const kind = await objectKind(s, dataset, view);
    if (kind === 'table' && !request.replaceTable) throw viewReplacesTable(request);
    const target = `${q(dataset)}.${q(view)}`;
    if (kind === 'table') await s.exec(`DROP TABLE ${target}`);
    // Newlines keep the restated query apart from our text; it holds no comment or second statement.
    await s.exec(`CREATE OR REPLACE VIEW ${target} AS\n${checkedSql}\n`);
    const columns = (await s.columns(dataset, view)) ?? [];
    return {
      created: kind !== 'view',
      replacedTable: kind === 'table',
      fields: columns.map((c) => ({ name: c.name, type: fieldType(c.dataType) })),
    };
  });
}
