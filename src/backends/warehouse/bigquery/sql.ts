import type { QueryParameter, TableField } from '@google-cloud/bigquery';
import { assertIdentifier } from '../../../domain/ids.ts';
import { validationError } from '../../../lib/errors.ts';
import type { FieldType, Row, Scalar, Where, WriteOp } from '../port.ts';
import { Params } from '../params.ts';
import { whereTerms } from '../where.ts';
import { fieldTypeOf, queryParameter } from './values.ts';

/** SQL building blocks of the BigQuery warehouse: quoting, typed parameters and the DML statements. */

/**
 * Backquoted identifier; validated first, so nothing but [A-Za-z0-9_] ever sits between the
 * backticks. `kind` names what it is in the refusal.
 */
export const bq = (id: string, kind = 'identifier') => `\`${assertIdentifier(kind, id)}\``;

/** `project.dataset.table`, backquoted as one path (project ids may contain dashes). */
export const tableRef = (project: string, dataset: string, table: string) =>
  `\`${project}.${assertIdentifier('dataset', dataset)}.${assertIdentifier('table', table)}\``;

/** A GoogleSQL string literal holding `text` (backslashes and quotes escaped). */
export const sqlString = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

/**
 * BigQuery refuses more than 10,000 parameters in one query; the port's metadata writes are a
 * few rows, and bulk data goes through `load`.
 */
const MAX_PARAMETERS = 10_000;

/** The values of one BigQuery statement: named parameters, each typed. */
export type TypedParams = Params<QueryParameter>;

export const typedParams = (): TypedParams =>
  new Params<QueryParameter>({
    limit: {
      max: MAX_PARAMETERS,
      error: () =>
        validationError(`the statement needs more than ${MAX_PARAMETERS} values, BigQuery's limit for one query`, {
          suggestion: 'write large batches through a load (staged Parquet) instead of insert',
        }),
    },
  });

/**
 * Binds a value typed from the column it is compared with or written to; returns the SQL that
 * reads it. JSON goes as STRING text parsed in SQL: BigQuery takes JSON-typed query parameters in
 * few places (its client libraries document them for INSERT only), and an UPDATE or MERGE of a
 * JSON column must work too.
 */
export const bindTyped = (params: TypedParams, value: Scalar, type: FieldType, what?: string): string =>
  type === 'JSON'
    ? `PARSE_JSON(${params.addNamed((name) => queryParameter(name, value, 'STRING', what))})`
    : params.addNamed((name) => queryParameter(name, value, type, what));

/** The parameters as the query job takes them, in binding order. */
export const parameterList = (params: TypedParams): QueryParameter[] => Object.values(params.values);

interface Column {
  name: string;
  type: FieldType;
  mode: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
}

export interface TableInfo {
  dataset: string;
  table: string;
  ref: string;
  columns: Column[];
  column(name: string): Column;
}

export function tableInfo(project: string, dataset: string, table: string, fields: TableField[]): TableInfo {
  const columns: Column[] = fields.map((f) => ({
    name: f.name!,
    type: fieldTypeOf(f.type),
    mode: (f.mode ?? 'NULLABLE').toUpperCase() as Column['mode'],
  }));
  const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
  return {
    dataset,
    table,
    ref: tableRef(project, dataset, table),
    columns,
    column(name: string): Column {
      assertIdentifier('column', name);
      const column = byName.get(name.toLowerCase());
      if (!column) throw validationError(`table ${dataset}.${table} has no column "${name}"`);
      return column;
    },
  };
}

/** Conjunction of the conditions; an empty Where is TRUE (BigQuery's UPDATE and DELETE need a WHERE). */
export function whereSql(where: Where | undefined, table: TableInfo, params: TypedParams): string {
  const terms = whereTerms(where, (name) => {
    const column = table.column(name);
    const what = `column ${table.dataset}.${table.table}.${column.name}`;
    return { sql: bq(column.name), bind: (value) => bindTyped(params, value, column.type, what) };
  });
  return terms.length ? terms.join(' AND ') : 'TRUE';
}

export function insertSql(table: TableInfo, rows: Row[], params: TypedParams): string {
  const names = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  // A row of defaults has no column list in BigQuery; naming the first column as NULL is the same row.
  const columns = names.length ? names.map((n) => table.column(n)) : table.columns.slice(0, 1);
  const tuples = rows.map(
    (row) =>
      `(${columns.map((c, i) => bindTyped(params, names.length ? (row[names[i]!] ?? null) : null, c.type, `column ${table.dataset}.${table.table}.${c.name}`)).join(', ')})`,
  );
  return `INSERT INTO ${table.ref} (${columns.map((c) => bq(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`;
}

export function updateSql(table: TableInfo, set: Row, where: Where, params: TypedParams): string {
  const entries = Object.entries(set);
  if (entries.length === 0) throw validationError(`update of ${table.dataset}.${table.table} sets no columns`);
  const assignments = entries.map(([name, value]) => {
    const column = table.column(name);
    return `${bq(column.name)} = ${bindTyped(params, value, column.type, `column ${table.dataset}.${table.table}.${column.name}`)}`;
  });
  return `UPDATE ${table.ref} SET ${assignments.join(', ')} WHERE ${whereSql(where, table, params)}`;
}

export function deleteSql(table: TableInfo, where: Where, params: TypedParams): string {
  return `DELETE FROM ${table.ref} WHERE ${whereSql(where, table, params)}`;
}

export function writeOpSql(op: WriteOp, table: TableInfo, params: TypedParams): string {
  if (op.kind === 'insert') return insertSql(table, op.rows, params);
  if (op.kind === 'update') return updateSql(table, op.set, op.where, params);
  if (op.kind === 'delete') return deleteSql(table, op.where, params);
  throw validationError(`unknown write operation ${JSON.stringify((op as { kind: unknown }).kind)}`);
}

export function checkOp(op: WriteOp): void {
  if (!op || !['insert', 'update', 'delete'].includes(op.kind)) {
    throw validationError(`unknown write operation ${JSON.stringify((op as { kind?: unknown })?.kind)}`);
  }
  assertIdentifier('dataset', op.dataset);
  assertIdentifier('table', op.table);
  const names = op.kind === 'insert' ? op.rows.flatMap((r) => Object.keys(r)) : op.kind === 'update' ? Object.keys(op.set) : [];
  for (const name of [...names, ...Object.keys(op.kind === 'insert' ? {} : op.where)]) assertIdentifier('column', name);
}

/**
 * Names of the `@name` parameters in caller SQL, skipping string literals, quoted identifiers,
 * comments and `@@system` variables, so an address in a literal is not mistaken for a parameter.
 */
export function parameterNames(sql: string): string[] {
  const names = new Set<string>();
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      const triple = ch !== '`' && sql.startsWith(ch.repeat(3), i);
      const close = triple ? ch.repeat(3) : ch;
      let j = i + close.length;
      while (j < sql.length && !sql.startsWith(close, j)) j += sql[j] === '\\' ? 2 : 1;
      i = j + close.length;
    } else if (sql.startsWith('--', i) || ch === '#') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else if (ch === '@') {
      if (sql[i + 1] === '@') {
        i += 2;
        while (i < sql.length && /[A-Za-z0-9_.]/.test(sql[i]!)) i++;
        continue;
      }
      const m = /^@([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i));
      if (m) {
        names.add(m[1]!);
        i += m[0].length;
      } else i++;
    } else i++;
  }
  return [...names];
}
