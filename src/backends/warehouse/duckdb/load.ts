import { listValue, type DuckDBValue } from '@duckdb/node-api';
import { assertIdentifier } from '../../../domain/ids.ts';
import { ConvergenceError, ExitCode, notFoundError, validationError } from '../../../lib/errors.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN } from '../staged.ts';
import { planSchema, type SchemaPlan } from '../evolution.ts';
import { CsvNeedsStaging, quarantineTable, type FieldSpec, type LoadRequest, type LoadResult } from '../port.ts';
import { csvFilesRelation } from './csv-files.ts';
import { applyWriteOp, fieldType, inTransaction, q, SQL_TYPE, type Session } from './session.ts';

/**
 * A load is one DuckDB transaction: DDL, data, quarantine and incremental state commit together,
 * so a process killed at any point leaves the destination as it was (the WAL is discarded on the
 * next open). Staged Parquet is read straight from disk — append and replace stream into the
 * destination; merge materialises the deduplicated batch once in a temp table.
 */
const STAGE = '__convergence_load_stage';

interface Relation {
  sql: string;
  params: Record<string, DuckDBValue>;
  fields: FieldSpec[];
  /** Staged Parquet carries rejected rows and their origin; a query result has neither. */
  staged: boolean;
}

/** A query source after the tenant SQL gate: DuckDB's restatement of it, and its bound values. */
export interface CheckedSource {
  sql: string;
  values: Record<string, DuckDBValue>;
}

async function sourceRelation(s: Session, request: LoadRequest, query: CheckedSource | undefined): Promise<Relation> {
  const source = request.source;
  if (source.kind === 'parquet') {
    if (source.files.length === 0) {
      // Nothing staged: an empty relation of the right shape, so replace still empties the table.
      const columns = source.fields.map((f) => `CAST(NULL AS ${SQL_TYPE[f.type]}) AS ${q(assertIdentifier('column', f.name))}`);
      const bookkeeping = `CAST(NULL AS VARCHAR) AS ${q(REASON_COLUMN)}, CAST(NULL AS VARCHAR) AS ${q(SOURCE_FILE_COLUMN)}, CAST(NULL AS BIGINT) AS ${q(SOURCE_ROW_COLUMN)}`;
      return { sql: `(SELECT ${[...columns, bookkeeping].join(', ')} WHERE false)`, params: {}, fields: source.fields, staged: true };
    }
    return {
      sql: `read_parquet($__files, union_by_name = true)`,
      params: { __files: listValue(source.files) },
      fields: source.fields,
      staged: true,
    };
  }
  if (source.kind === 'csv-files') {
    // A merge keeps the last row of a key in file and line order, which only staged rows carry.
    if (request.writeMode === 'merge') throw new CsvNeedsStaging('a merge needs the rows in file order');
    return { ...csvFilesRelation(source), fields: source.fields, staged: false };
  }
  // The engine downloads gs:// objects and stages them for DuckDB, which does not read them itself (no loadsObjects).
  if (source.kind === 'objects') throw new Error('DuckDB loads staged files; gs:// objects are downloaded and staged first');
  // Only the gate's restatement runs (one SELECT, no comment): nothing in it can close our parentheses.
  if (!query) throw new Error('a query load needs the checked query');
  const described = await s.rows(`DESCRIBE SELECT * FROM (\n${query.sql}\n)`, query.values);
  const fields = described.map((r) => ({ name: String(r['column_name']), type: fieldType(String(r['column_type'])) }));
  return { sql: `(\n${query.sql}\n)`, params: query.values, fields, staged: false };
}

async function applySchema(s: Session, table: string, plan: SchemaPlan): Promise<void> {
  if (plan.create) {
    await s.exec(`CREATE TABLE ${table} (${plan.fields.map((f) => `${q(f.name)} ${SQL_TYPE[f.type]}`).join(', ')})`);
  }
  for (const field of plan.add) await s.exec(`ALTER TABLE ${table} ADD COLUMN ${q(field.name)} ${SQL_TYPE[field.type]}`);
}

/**
 * Rejected rows go to `<table>__quarantine`, each once: a row already there from the same file and
 * line, for the same reason and with the same values (an unchanged file read again, as an
 * incremental file source does every run) is not added again.
 */
async function quarantine(s: Session, request: LoadRequest, relation: Relation, plan: SchemaPlan): Promise<number> {
  const target = `${q(request.dataset)}.${q(quarantineTable(request.table))}`;
  const record = `to_json(struct_pack(${plan.columns.map((c) => `${q(c.from)} := st.${q(c.from)}`).join(', ')}))`;
  const [reason, file, line] = [REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN].map((c) => `st.${q(c)}`);
  await s.exec(
    `CREATE TABLE IF NOT EXISTS ${target} (_run_id VARCHAR, _quarantined_at TIMESTAMPTZ, _reason VARCHAR,
       _source_file VARCHAR, _source_row BIGINT, record JSON)`,
  );
  return s.exec(
    `INSERT INTO ${target} SELECT $__run, now(), ${reason}, ${file}, CAST(${line} AS BIGINT), ${record}
     FROM ${relation.sql} AS st WHERE ${reason} IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM ${target} AS seen WHERE seen._source_file = ${file} AND seen._source_row = CAST(${line} AS BIGINT)
         AND seen._reason = ${reason} AND CAST(seen.record AS VARCHAR) = CAST(${record} AS VARCHAR))`,
    { ...relation.params, __run: request.runId },
  );
}

export async function loadInto(s: Session, request: LoadRequest, query?: CheckedSource): Promise<LoadResult> {
  const { dataset, table, writeMode } = request;
  assertIdentifier('dataset', dataset);
  assertIdentifier('table', table);
  const mergeKeys = writeMode === 'merge' ? (request.mergeKeys ?? []) : [];
  if (writeMode === 'merge' && mergeKeys.length === 0) throw validationError(`merge into ${dataset}.${table} needs merge keys`);
  if (!(await s.datasetExists(dataset))) throw notFoundError(`dataset ${dataset} does not exist`);

  return inTransaction(s, async () => {
    const relation = await sourceRelation(s, request, query);
    const existing = (await s.columns(dataset, table))?.map((c) => ({ name: c.name, type: fieldType(c.dataType) }));
    const plan = planSchema({ dataset, table }, existing, relation.fields, mergeKeys);
    const target = `${q(dataset)}.${q(table)}`;
    await applySchema(s, target, plan);

    const into = plan.columns.map((c) => q(c.to)).join(', ');
    // Staged BYTES arrive as base64 text (../staged.ts); everything else casts directly.
    const stagedBytes = new Set(relation.staged ? relation.fields.filter((f) => f.type === 'BYTES').map((f) => f.name.toLowerCase()) : []);
    const select = plan.columns
      .map((c) => {
        const value = stagedBytes.has(c.from.toLowerCase()) ? `from_base64(${q(c.from)})` : q(c.from);
        return `CAST(${value} AS ${SQL_TYPE[c.type]}) AS ${q(c.to)}`;
      })
      .join(', ');
    const good = relation.staged ? ` WHERE ${q(REASON_COLUMN)} IS NULL` : '';
    let rowsInserted: number;
    let rowsUpdated = 0;

    if (writeMode === 'merge') {
      const keys = mergeKeys.map((k) => q(plan.columns.find((c) => c.from.toLowerCase() === k.toLowerCase())!.to));
      // Staged rows: the last occurrence of a key wins, in file and line order, as a later record supersedes an earlier one.
      const latest = relation.staged
        ? ` QUALIFY row_number() OVER (PARTITION BY ${keys.join(', ')} ORDER BY ${q(SOURCE_FILE_COLUMN)} DESC, ${q(SOURCE_ROW_COLUMN)} DESC) = 1`
        : '';
      await s.exec(
        `CREATE OR REPLACE TEMP TABLE ${STAGE} AS SELECT ${select}${relation.staged ? `, ${q(SOURCE_FILE_COLUMN)}, ${q(SOURCE_ROW_COLUMN)}` : ''} FROM ${relation.sql}${good}${latest}`,
        relation.params,
      );
      if (!relation.staged) {
        const dupes = await s.rows(`SELECT ${keys.join(', ')}, count(*) AS n FROM ${STAGE} GROUP BY ALL HAVING count(*) > 1 LIMIT 1`);
        if (dupes.length > 0) {
          throw new ConvergenceError(
            'MERGE_DUPLICATE_KEYS',
            ExitCode.pipelineFailed,
            `the rows merged into ${dataset}.${table} repeat the merge key ${JSON.stringify(dupes[0])}`,
            {
              suggestion: 'make the transform return one row per merge key (GROUP BY or QUALIFY)',
            },
          );
        }
      }
      const match = keys.map((k) => `d.${k} IS NOT DISTINCT FROM st.${k}`).join(' AND ');
      rowsUpdated = await s.exec(`DELETE FROM ${target} AS d WHERE EXISTS (SELECT 1 FROM ${STAGE} AS st WHERE ${match})`);
      rowsInserted = (await s.exec(`INSERT INTO ${target} (${into}) SELECT ${into} FROM ${STAGE}`)) - rowsUpdated;
      await s.exec(`DROP TABLE ${STAGE}`);
    } else {
      if (writeMode === 'replace') await s.exec(`DELETE FROM ${target}`);
      rowsInserted = await s.exec(`INSERT INTO ${target} (${into}) SELECT ${select} FROM ${relation.sql}${good}`, relation.params);
    }

    const rowsQuarantined = relation.staged ? await quarantine(s, request, relation, plan) : 0;
    for (const op of request.alsoWrite ?? []) await applyWriteOp(s, op);
    return {
      rowsLoaded: rowsInserted + rowsUpdated,
      rowsInserted,
      rowsUpdated,
      rowsQuarantined,
      columnsAdded: plan.add.map((f) => f.name),
      created: plan.create,
    };
  });
}
