import type { TableField } from '@google-cloud/bigquery';
import { assertIdentifier } from '../../../domain/ids.ts';
import { ConvergenceError, ExitCode, isConvergenceError, notFoundError, validationError } from '../../../lib/errors.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN, stagedType } from '../staged.ts';
import { planSchema, type SchemaPlan } from '../evolution.ts';
import {
  CsvNeedsStaging,
  quarantineTable,
  type FieldSpec,
  type FieldType,
  type LoadRequest,
  type LoadResult,
  type Scalar,
} from '../port.ts';
import type { LoadContext } from './load-context.ts';
import { bindTyped, bq, parameterList, parameterNames, sqlString, tableRef, typedParams, writeOpSql, type TypedParams } from './sql.ts';
import { fingerprint, jobId, stageSchema, uploadFile } from './stage.ts';
import { stageObjects } from './object-load.ts';
import { fieldTypeOf, inferType, queryParameter } from './values.ts';

/**
 * A load into BigQuery, in four steps:
 *
 * 1. Stage. Staged Parquet goes up in ONE load job (multipart upload, WRITE_TRUNCATE, explicit
 *    schema with the bookkeeping columns) into `<table>__stage_<run8>_<fp8>`; a transform's query
 *    is written there by one query job, and so are Cloud Storage objects (object-load.ts). The
 *    staging table expires by itself should the process die.
 * 2. Plan. evolution.ts decides: create the destination, add columns, or refuse (before step 3).
 * 3. DDL, outside the transaction: BigQuery refuses DDL on permanent tables inside a multi-statement
 *    transaction, so the destination (with partitioning and clustering), its new NULLABLE columns
 *    and the quarantine table are made first. If the transaction then fails, tables this load
 *    created are dropped again; added columns stay (nullable, empty, and the next load wants them).
 * 4. One script: BEGIN TRANSACTION; replace/append/merge; quarantine; alsoWrite; COMMIT TRANSACTION,
 *    then a final SELECT of the counts kept in script variables (@@row_count after each DML).
 *    Data, quarantine and state commit together or not at all.
 *
 * The stage and merge jobs have deterministic ids (run, table, input fingerprint): a retried or
 * re-run load adopts jobs that already succeeded, and a committed merge is never applied twice.
 */

const VARS = {
  inserted: 'convergence_inserted',
  updated: 'convergence_updated',
  quarantined: 'convergence_quarantined',
  before: 'convergence_rows_before',
};

/**
 * The merge keys of a row as one value: equal exactly when every key is, NULL included (as IS NOT
 * DISTINCT FROM compares), but a plain `=` between two columns' values, which BigQuery plans as a
 * hash join; a condition of IS NOT DISTINCT FROM terms may not be.
 */
const mergeKeySql = (alias: string, keys: string[]) =>
  `TO_JSON_STRING(STRUCT(${keys.map((k) => `${alias}.${bq(k)} AS ${bq(k)}`).join(', ')}))`;

/** A column as it reaches the destination: staged text decoded, then cast where evolution allows. */
function valueSql(column: SchemaPlan['columns'][number], sourceType: FieldType, staged: boolean, alias: string): string {
  const col = `${alias}.${bq(column.from)}`;
  let value = col;
  let type = sourceType;
  if (staged && sourceType === 'BYTES') value = `FROM_BASE64(${col})`;
  else if (staged && sourceType === 'NUMERIC') value = `CAST(${col} AS NUMERIC)`;
  else if (staged && sourceType === 'JSON') value = parsedJson(col);
  else type = staged ? stagedType(sourceType) : sourceType;
  return type === column.type ? value : `CAST(${value} AS ${column.type})`;
}

/**
 * Staged JSON text as a JSON value. The staged text is valid JSON (the engine checked it), but
 * BigQuery's PARSE_JSON fails, by default, on a number FLOAT64 cannot hold exactly, and inside the
 * load's transaction that would roll back every row: such numbers are rounded, as BigQuery's JSON
 * type stores them, and a document BigQuery still cannot read is NULL here and quarantined
 * (jsonReasonSql) rather than failing the load.
 */
const parsedJson = (text: string) => `SAFE.PARSE_JSON(${text}, wide_number_mode => 'round')`;

/** Why a staged row cannot load: the engine's reason, else a JSON column BigQuery cannot read. */
function reasonSql(incoming: FieldSpec[], alias: string): string {
  const json = incoming
    .filter((f) => f.type === 'JSON')
    .map((f) => {
      const col = `${alias}.${bq(f.name)}`;
      return `IF(${col} IS NOT NULL AND ${parsedJson(col)} IS NULL, ${sqlString(`${f.name}: not a JSON document BigQuery can read`)}, NULL)`;
    });
  const reason = `${alias}.${bq(REASON_COLUMN)}`;
  return json.length ? `COALESCE(${reason}, ${json.join(', ')})` : reason;
}

/** An empty relation of the staged shape, for a load with nothing staged (replace still empties). */
function emptyStage(fields: FieldSpec[]): string {
  const columns = stageSchema(fields).map((f) => `CAST(NULL AS ${f.type}) AS ${bq(f.name)}`);
  return `(SELECT ${columns.join(', ')} LIMIT 0)`;
}

export function partitioningOf(fields: FieldSpec[], partitionBy: string | undefined, clusterBy: string[] | undefined, where: string) {
  const byName = new Map(fields.map((f) => [f.name.toLowerCase(), f]));
  let timePartitioning: { type: 'DAY'; field: string } | undefined;
  if (partitionBy) {
    const field = byName.get(assertIdentifier('partition column', partitionBy).toLowerCase());
    if (!field) throw validationError(`partition column "${partitionBy}" is not a column of ${where}`);
    if (field.type !== 'DATE' && field.type !== 'TIMESTAMP') {
      throw validationError(
        `partition column "${partitionBy}" of ${where} is ${field.type}; BigQuery partitions by a DATE or TIMESTAMP column`,
      );
    }
    timePartitioning = { type: 'DAY', field: field.name };
  }
  let clustering: { fields: string[] } | undefined;
  if (clusterBy?.length) {
    if (clusterBy.length > 4) throw validationError(`${where} clusters by ${clusterBy.length} columns; BigQuery allows at most 4`);
    clustering = {
      fields: clusterBy.map((name) => {
        const field = byName.get(assertIdentifier('cluster column', name).toLowerCase());
        if (!field) throw validationError(`cluster column "${name}" is not a column of ${where}`);
        if (field.type === 'FLOAT64' || field.type === 'JSON' || field.type === 'BYTES') {
          throw validationError(`cluster column "${name}" of ${where} is ${field.type}, which BigQuery cannot cluster by`);
        }
        return field.name;
      }),
    };
  }
  return { timePartitioning, clustering };
}

const toSpecs = (fields: TableField[]): FieldSpec[] =>
  fields.map((f) => ({
    name: f.name!,
    type: fieldTypeOf(f.type),
    mode: f.mode === 'REQUIRED' ? ('REQUIRED' as const) : ('NULLABLE' as const),
  }));

/**
 * Every committed load's outcome, by its deterministic id, written in the load's own transaction.
 * A rerun of a committed load normally reads the outcome from the script's results, which
 * BigQuery keeps about 24 hours; after that it reads this row instead.
 */
const LOADS_TABLE = '_convergence_loads';
const LOADS_FIELDS: FieldSpec[] = [
  { name: 'load_id', type: 'STRING', mode: 'REQUIRED' },
  { name: 'rows_inserted', type: 'INT64' },
  { name: 'rows_updated', type: 'INT64' },
  { name: 'rows_quarantined', type: 'INT64' },
  { name: 'cursor_max', type: 'STRING' },
  { name: 'committed_at', type: 'TIMESTAMP' },
];

/** What a committed load did: from its script's results, else (results expired) from LOADS_TABLE. */
async function committedOutcome(ctx: LoadContext, dataset: string, jobId: string, loadId: string, where: string): Promise<LoadResult> {
  try {
    const { rows } = await ctx.jobs.results(jobId, `load into ${where}`);
    return resultOf(rows[0], [], false);
  } catch (err) {
    if (!isConvergenceError(err) || err.exitCode !== ExitCode.notFound) throw err;
    const params = typedParams();
    const { rows } = await ctx.jobs
      .query({
        sql: `SELECT rows_inserted, rows_updated, rows_quarantined, cursor_max FROM ${tableRef(ctx.project, dataset, LOADS_TABLE)} WHERE load_id = ${bindTyped(params, loadId, 'STRING')}`,
        params: parameterList(params),
        what: `read the outcome of the load into ${where}`,
        rows: true,
      })
      .catch(() => ({ rows: [] as Array<Record<string, Scalar>> }));
    if (rows.length === 0) throw err;
    return resultOf(rows[0], [], false);
  }
}

/** The script's final row: its counts and, for an objects load with a cursor, the cursor it committed. */
function resultOf(row: Record<string, Scalar> | undefined, columnsAdded: string[], created: boolean): LoadResult {
  const inserted = Number(row?.['rows_inserted'] ?? 0);
  const updated = Number(row?.['rows_updated'] ?? 0);
  const cursorMax = row?.['cursor_max'];
  return {
    rowsLoaded: inserted + updated,
    rowsInserted: inserted,
    rowsUpdated: updated,
    rowsQuarantined: Number(row?.['rows_quarantined'] ?? 0),
    columnsAdded,
    created,
    ...(cursorMax === null || cursorMax === undefined ? {} : { cursorMax: String(cursorMax) }),
  };
}

export async function loadInto(ctx: LoadContext, request: LoadRequest): Promise<LoadResult> {
  const { dataset, table, writeMode, source } = request;
  // BigQuery reads no local files (it has no csvFileTypes): the engine stages them.
  if (source.kind === 'csv-files') throw new CsvNeedsStaging('BigQuery reads no local files');
  assertIdentifier('dataset', dataset);
  assertIdentifier('table', table);
  if (!['append', 'replace', 'merge'].includes(writeMode)) throw validationError(`unknown write mode ${JSON.stringify(writeMode)}`);
  if (typeof request.runId !== 'string' || request.runId.length === 0) throw validationError('a load needs a run id');
  const mergeKeys = writeMode === 'merge' ? (request.mergeKeys ?? []) : [];
  if (writeMode === 'merge' && mergeKeys.length === 0) throw validationError(`merge into ${dataset}.${table} needs merge keys`);
  const where = `${dataset}.${table}`;
  if (!(await ctx.datasetExists(dataset))) throw notFoundError(`dataset ${dataset} does not exist`);

  const fp = await fingerprint(request);
  const ids = {
    stage: jobId('convergence', request.runId, table, 'stage', fp.slice(0, 16)),
    merge: jobId('convergence', request.runId, table, 'merge', fp.slice(0, 16)),
  };
  const labels = (step: string) => ({ run_id: ctx.labelValue(request.runId), step });

  // A rerun of a load that already committed (same run, same input) changes nothing and reports the same counts.
  const committed = await ctx.jobs.findSucceeded(ids.merge);
  if (committed) return committedOutcome(ctx, dataset, committed.jobReference!.jobId!, ids.merge, where);

  const existingFields = await ctx.tableFields(dataset, table);
  const existing = existingFields ? toSpecs(existingFields) : undefined;
  const stageName = `${table}__stage_${request.runId.replace(/[^A-Za-z0-9_]/g, '').slice(0, 8)}_${fp.slice(0, 8)}`;
  const expiration = () => String(Date.now() + ctx.stagingTtlMs);
  // Objects are staged as Parquet is, with a reason per row, so they quarantine the same way.
  const staged = source.kind !== 'query';
  let stageExists = false;
  let plan: SchemaPlan;
  let incoming: FieldSpec[];
  let relation: string;
  let created = false;
  let createdQuarantine = false;
  let createdLoads = false;
  // An objects load with a cursor reports the cursor it commits (none when no row loads).
  let cursor: { max: string | undefined } | undefined;
  // State writes are checked against their tables before anything is written.
  const params = typedParams();
  const alsoWrite: string[] = [];
  for (const op of request.alsoWrite ?? []) alsoWrite.push(writeOpSql(op, await ctx.tableInfo(op.dataset, op.table), params));

  try {
    if (source.kind === 'parquet') {
      incoming = source.fields;
      plan = planSchema({ dataset, table }, existing, incoming, mergeKeys);
      if (plan.create) partitioningOf(plan.fields, request.partitionBy, request.clusterBy, where);
      if (source.files.length === 0) {
        relation = emptyStage(incoming);
      } else {
        const upload = await uploadFile(source.files, incoming);
        try {
          stageExists = true;
          await ctx.createTable(
            dataset,
            { name: stageName, fields: stageSchema(incoming) },
            { expirationTime: expiration(), labels: labels('stage') },
          );
          await ctx.jobs.upload({
            file: upload.file,
            what: `stage the data for ${where}`,
            jobId: ids.stage,
            labels: labels('stage'),
            load: {
              destinationTable: { projectId: ctx.project, datasetId: dataset, tableId: stageName },
              sourceFormat: 'PARQUET',
              schema: { fields: stageSchema(incoming) },
              autodetect: false,
              writeDisposition: 'WRITE_TRUNCATE',
              createDisposition: 'CREATE_IF_NEEDED',
            },
            // A stage job from an earlier attempt counts only while its rows are still in the staging
            // table: a failed load drops the table, and this attempt has just made it again, empty.
            accept: async (job) => (await ctx.tableRows(dataset, stageName)) === Number(job.statistics?.load?.outputRows ?? -1),
          });
        } finally {
          await upload.cleanup();
        }
        relation = tableRef(ctx.project, dataset, stageName);
      }
    } else if (source.kind === 'objects') {
      incoming = source.fields;
      plan = planSchema({ dataset, table }, existing, incoming, mergeKeys);
      if (plan.create) partitioningOf(plan.fields, request.partitionBy, request.clusterBy, where);
      stageExists = true;
      const { cursorMax } = await stageObjects({
        ctx,
        dataset,
        stageName,
        source,
        jobId: ids.stage,
        labels: labels('stage'),
        expiration,
        what: where,
      });
      if (source.cursor) {
        cursor = { max: cursorMax };
        for (const op of cursorMax === undefined ? [] : source.cursor.commit(cursorMax))
          alsoWrite.push(writeOpSql(op, await ctx.tableInfo(op.dataset, op.table), params));
      }
      relation = tableRef(ctx.project, dataset, stageName);
    } else {
      const queryParams = parameterNames(source.sql).map((name) => {
        if (!source.params || !Object.hasOwn(source.params, name)) throw validationError(`query parameter @${name} has no value`);
        const value = source.params[name] as Scalar;
        return queryParameter(name, value, inferType(value));
      });
      await ctx.checkTenantQuery(source.sql, { dataset, params: source.params ?? {}, origin: source.origin });
      stageExists = true;
      await ctx.jobs.query({
        sql: source.sql,
        params: queryParams,
        what: `run the query for ${where}`,
        jobId: ids.stage,
        labels: labels('stage'),
        destination: { datasetId: dataset, tableId: stageName },
        accept: async () => (await ctx.tableFields(dataset, stageName)) !== undefined,
      });
      await ctx.setExpiration(dataset, stageName, expiration());
      const stageFields = await ctx.tableFields(dataset, stageName);
      if (!stageFields) throw notFoundError(`the staged result of the query for ${where} disappeared`);
      incoming = toSpecs(stageFields);
      plan = planSchema({ dataset, table }, existing, incoming, mergeKeys);
      if (plan.create) partitioningOf(plan.fields, request.partitionBy, request.clusterBy, where);
      relation = tableRef(ctx.project, dataset, stageName);
      if (writeMode === 'merge') {
        const keys = mergeKeys.map((k) => bq(incoming.find((f) => f.name.toLowerCase() === k.toLowerCase())!.name));
        const { rows } = await ctx.jobs.query({
          sql: `SELECT ${keys.join(', ')}, COUNT(*) AS n FROM ${relation} GROUP BY ${keys.join(', ')} HAVING COUNT(*) > 1 LIMIT 1`,
          what: `check the merge keys for ${where}`,
          labels: labels('check'),
          rows: true,
        });
        if (rows.length > 0) {
          throw new ConvergenceError(
            'MERGE_DUPLICATE_KEYS',
            ExitCode.pipelineFailed,
            `the rows merged into ${where} repeat the merge key ${JSON.stringify(rows[0], (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`,
            {
              suggestion: 'make the transform return one row per merge key (GROUP BY or QUALIFY)',
            },
          );
        }
      }
    }

    const target = tableRef(ctx.project, dataset, table);
    if (plan.create) {
      const { timePartitioning, clustering } = partitioningOf(plan.fields, request.partitionBy, request.clusterBy, where);
      created = await ctx.createTable(dataset, {
        name: table,
        fields: plan.fields,
        ...(timePartitioning ? { partitionBy: timePartitioning.field } : {}),
        ...(clustering ? { clusterBy: clustering.fields } : {}),
      });
    }
    if (plan.add.length > 0) {
      await ctx.jobs.query({
        sql: `ALTER TABLE ${target} ${plan.add.map((f) => `ADD COLUMN IF NOT EXISTS ${bq(f.name)} ${f.type}`).join(', ')}`,
        what: `add columns to ${where}`,
        labels: labels('ddl'),
      });
      ctx.forget(dataset, table);
    }
    if (staged) {
      createdQuarantine = await ctx.createTable(dataset, {
        name: quarantineTable(table),
        fields: [
          { name: '_run_id', type: 'STRING' },
          { name: '_quarantined_at', type: 'TIMESTAMP' },
          { name: '_reason', type: 'STRING' },
          { name: '_source_file', type: 'STRING' },
          { name: '_source_row', type: 'INT64' },
          { name: 'record', type: 'JSON' },
        ],
      });
    }

    // The outcome is also kept beside the data, for a rerun after the script's results expired.
    createdLoads = await ctx.createTable(dataset, { name: LOADS_TABLE, fields: LOADS_FIELDS });
    const script = transactionScript({
      request,
      plan,
      incoming,
      relation,
      staged,
      target,
      params,
      alsoWrite,
      mergeKeys,
      project: ctx.project,
      loadId: ids.merge,
      ...(cursor ? { cursor } : {}),
    });
    const { rows } = await ctx.jobs.query({
      sql: script,
      params: parameterList(params),
      what: `load into ${where}`,
      jobId: ids.merge,
      labels: labels('merge'),
      rows: true,
    });
    return resultOf(
      rows[0],
      plan.add.map((f) => f.name),
      plan.create,
    );
  } catch (err) {
    // Tables this load made go again, so a failed first load leaves the dataset as it was; only
    // while empty, in case another writer found them in the meantime.
    for (const [made, name] of [
      [created, table],
      [createdQuarantine, quarantineTable(table)],
      [createdLoads, LOADS_TABLE],
    ] as const) {
      if (made && (await ctx.tableRows(dataset, name).catch(() => undefined)) === 0)
        await ctx.dropTable(dataset, name).catch(() => undefined);
    }
    throw err;
  } finally {
    if (stageExists) await ctx.dropTable(dataset, stageName).catch(() => undefined);
  }
}

interface ScriptInput {
  request: LoadRequest;
  plan: SchemaPlan;
  incoming: FieldSpec[];
  relation: string;
  staged: boolean;
  target: string;
  params: TypedParams;
  alsoWrite: string[];
  mergeKeys: string[];
  project: string;
  /** The cursor the script commits, echoed in its final row so a rerun that adopts the job learns it too. */
  cursor?: { max: string | undefined };
  /** The load's deterministic id, under which its outcome is kept in LOADS_TABLE. */
  loadId: string;
}

function transactionScript(input: ScriptInput): string {
  const { request, plan, incoming, relation, staged, target, params, alsoWrite, mergeKeys, project, cursor, loadId } = input;
  const typeOf = new Map(incoming.map((f) => [f.name.toLowerCase(), f.type]));
  const values = plan.columns.map((c) => `${valueSql(c, typeOf.get(c.from.toLowerCase())!, staged, 'st')} AS ${bq(c.to)}`);
  const into = plan.columns.map((c) => bq(c.to)).join(', ');
  const reason = staged ? reasonSql(incoming, 'st') : undefined;
  const good = reason ? `${reason} IS NULL` : 'TRUE';
  const lines = [
    `DECLARE ${VARS.inserted} INT64 DEFAULT 0;`,
    `DECLARE ${VARS.updated} INT64 DEFAULT 0;`,
    `DECLARE ${VARS.quarantined} INT64 DEFAULT 0;`,
    `DECLARE ${VARS.before} INT64 DEFAULT 0;`,
    'BEGIN TRANSACTION;',
  ];

  if (request.writeMode === 'merge') {
    const keyTo = mergeKeys.map((k) => plan.columns.find((c) => c.from.toLowerCase() === k.toLowerCase())!);
    // The last staged occurrence of a key wins, in file and line order, as a later record supersedes an earlier one.
    const latest = staged
      ? ` QUALIFY ROW_NUMBER() OVER (PARTITION BY ${keyTo.map((c) => `st.${bq(c.from)}`).join(', ')} ORDER BY st.${bq(SOURCE_FILE_COLUMN)} DESC, st.${bq(SOURCE_ROW_COLUMN)} DESC) = 1`
      : '';
    const keyNamesTo = keyTo.map((c) => c.to);
    const match = `${mergeKeySql('d', keyNamesTo)} = ${mergeKeySql('s', keyNamesTo)}`;
    const keyNames = new Set(keyTo.map((c) => c.to.toLowerCase()));
    const setColumns = plan.columns.filter((c) => !keyNames.has(c.to.toLowerCase()));
    const assignments = (setColumns.length ? setColumns : plan.columns.slice(0, 1)).map((c) => `${bq(c.to)} = s.${bq(c.to)}`).join(', ');
    lines.push(
      `CREATE TEMP TABLE convergence_batch AS SELECT ${values.join(', ')} FROM ${relation} AS st WHERE ${good}${latest};`,
      // Inserted rows are the growth of the table (the MERGE deletes nothing); the rest of the rows it touched were updated.
      `SET ${VARS.before} = (SELECT COUNT(*) FROM ${target});`,
      `MERGE INTO ${target} AS d USING convergence_batch AS s ON ${match} ` +
        `WHEN MATCHED THEN UPDATE SET ${assignments} ` +
        `WHEN NOT MATCHED THEN INSERT (${into}) VALUES (${plan.columns.map((c) => `s.${bq(c.to)}`).join(', ')});`,
      `SET ${VARS.updated} = @@row_count;`,
      `SET ${VARS.inserted} = (SELECT COUNT(*) FROM ${target}) - ${VARS.before};`,
      `SET ${VARS.updated} = ${VARS.updated} - ${VARS.inserted};`,
    );
  } else {
    // TRUNCATE is DML in BigQuery (allowed in a transaction) and, unlike DELETE, scans nothing.
    if (request.writeMode === 'replace') lines.push(`TRUNCATE TABLE ${target};`);
    lines.push(
      `INSERT INTO ${target} (${into}) SELECT ${values.join(', ')} FROM ${relation} AS st WHERE ${good};`,
      `SET ${VARS.inserted} = @@row_count;`,
    );
  }

  if (staged) {
    const record = `TO_JSON(STRUCT(${incoming.map((f) => `st.${bq(f.name)} AS ${bq(f.name)}`).join(', ')}))`;
    const quarantine = tableRef(project, request.dataset, quarantineTable(request.table));
    lines.push(
      `INSERT INTO ${quarantine} (_run_id, _quarantined_at, _reason, _source_file, _source_row, record) ` +
        `SELECT ${bindTyped(params, request.runId, 'STRING')}, CURRENT_TIMESTAMP(), ${reason}, st.${bq(SOURCE_FILE_COLUMN)}, ` +
        `CAST(st.${bq(SOURCE_ROW_COLUMN)} AS INT64), ${record} FROM ${relation} AS st WHERE ${reason} IS NOT NULL ` +
        // Each rejection once: an unchanged file read again adds no second copy (as the DuckDB adapter).
        `AND NOT EXISTS (SELECT 1 FROM ${quarantine} AS seen WHERE seen._source_file = st.${bq(SOURCE_FILE_COLUMN)} ` +
        `AND seen._source_row = CAST(st.${bq(SOURCE_ROW_COLUMN)} AS INT64) AND seen._reason = ${reason} ` +
        `AND TO_JSON_STRING(seen.record) = TO_JSON_STRING(${record}));`,
      `SET ${VARS.quarantined} = @@row_count;`,
    );
  }
  for (const statement of alsoWrite) lines.push(`${statement};`);
  const cursorMax = cursor ? bindTyped(params, cursor.max ?? null, 'STRING') : 'CAST(NULL AS STRING)';
  // INSERT only: concurrent loads of one dataset add their rows here without conflicting.
  lines.push(
    `INSERT INTO ${tableRef(project, request.dataset, LOADS_TABLE)} (load_id, rows_inserted, rows_updated, rows_quarantined, cursor_max, committed_at) ` +
      `VALUES (${bindTyped(params, loadId, 'STRING')}, ${VARS.inserted}, ${VARS.updated}, ${VARS.quarantined}, ${cursorMax}, CURRENT_TIMESTAMP());`,
    'COMMIT TRANSACTION;',
    `SELECT ${VARS.inserted} AS rows_inserted, ${VARS.updated} AS rows_updated, ${VARS.quarantined} AS rows_quarantined` +
      `${cursor ? `, ${cursorMax} AS cursor_max` : ''};`,
  );
  return lines.join('\n');
}
