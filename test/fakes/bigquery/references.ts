/**
 * What a dry run reports about a statement, as BigQuery does: `statementType` and the tables a
 * query reads (`referencedTables`). The fake derives them from DuckDB's parse of the translated
 * SQL (json_serialize_sql), not from its text, so a table hidden in a CTE, a subquery, a join or
 * an IN (…) is reported like any other, and a CTE name is not a table.
 *
 * BigQuery rules kept here: a table name needs its dataset (an unqualified name that is no CTE is
 * an error), and DuckDB's table functions (read_csv, duckdb_tables, …) do not exist in GoogleSQL;
 * UNNEST does.
 */
import { invalidQuery } from './errors.ts';
import type { TableRef } from './translate.ts';

type Tree = unknown;
type Node = Record<string, unknown>;

const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown) => (typeof value === 'string' ? value : '');

function walk(value: Tree, visit: (node: Node) => void): void {
  if (Array.isArray(value)) value.forEach((item) => walk(item, visit));
  else if (isNode(value)) {
    visit(value);
    Object.values(value).forEach((child) => walk(child, visit));
  }
}

/**
 * Tables read by one parsed SELECT statement (json_serialize_sql output), CTE names left out, and
 * the names of the job's temporary external tables (`external`, lower case) as well.
 */
export function tablesOfQuery(tree: Tree, project: string, external: ReadonlySet<string> = new Set()): TableRef[] {
  const ctes = new Set<string>();
  walk(tree, (node) => {
    const map = isNode(node['cte_map']) ? node['cte_map']['map'] : undefined;
    if (Array.isArray(map)) for (const entry of map) if (isNode(entry)) ctes.add(text(entry['key']).toLowerCase());
  });
  const tables = new Map<string, TableRef>();
  walk(tree, (node) => {
    if (node['type'] === 'TABLE_FUNCTION') {
      const name = text(isNode(node['function']) ? node['function']['function_name'] : '');
      if (name.toLowerCase() !== 'unnest') throw invalidQuery(`Table-valued function not found: ${name}`);
    }
    if (node['type'] !== 'BASE_TABLE') return;
    const table = text(node['table_name']);
    const dataset = text(node['schema_name']);
    if (!dataset) {
      if (ctes.has(table.toLowerCase()) || external.has(table.toLowerCase())) return;
      throw invalidQuery(`Table "${table}" must be qualified with a dataset (e.g. dataset.table).`);
    }
    const ref: TableRef = { project: text(node['catalog_name']) || project, dataset, table };
    tables.set(`${ref.project}.${dataset}.${table}`, ref);
  });
  return [...tables.values()];
}

/** BigQuery's statementType for one statement (comments stripped), from its leading keywords. */
export function statementTypeOf(statement: string): string {
  const words = statement
    .toUpperCase()
    .split(/[\s(]+/)
    .filter(Boolean);
  const first = words[0] ?? '';
  if (first === 'SELECT' || first === 'WITH' || statement.trimStart().startsWith('(')) return 'SELECT';
  if (['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'CALL'].includes(first)) return first;
  if (first === 'TRUNCATE') return 'TRUNCATE_TABLE';
  if (first === 'EXPORT') return words[1] === 'MODEL' ? 'EXPORT_MODEL' : 'EXPORT_DATA';
  if (first === 'LOAD') return 'LOAD_DATA';
  if (first === 'CREATE' || first === 'DROP' || first === 'ALTER') {
    const modifiers = new Set(['OR', 'REPLACE', 'TEMP', 'TEMPORARY', 'EXTERNAL', 'MATERIALIZED', 'SNAPSHOT']);
    const object = words.slice(1).find((w) => !modifiers.has(w)) ?? 'TABLE';
    const external = words.includes('EXTERNAL') ? 'EXTERNAL_' : words.includes('MATERIALIZED') ? 'MATERIALIZED_' : '';
    const asSelect = first === 'CREATE' && object === 'TABLE' && words.includes('AS') && words.includes('SELECT') ? '_AS_SELECT' : '';
    return `${first}_${external}${object}${asSelect}`;
  }
  return first || 'UNKNOWN';
}
