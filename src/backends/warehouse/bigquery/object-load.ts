import type { FieldSpec, FieldType, ObjectSource } from '../port.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN, stagedType } from '../staged.ts';
import type { LoadContext } from './load-context.ts';
import { bq, tableRef } from './sql.ts';
import { queryParameter } from './values.ts';
import { validationError } from '../../../lib/errors.ts';

/**
 * Stages Cloud Storage objects for a load (load.ts step 1) without a byte passing through this
 * process, in two jobs:
 *
 * 1. One load job from the `gs://` URIs (BigQuery expands the `*`) into `<stage>_raw`, every column
 *    STRING, so no value can fail the job for its type. BigQuery reads CSV columns by position (the
 *    header line is skipped), so the raw table has one column per position of the objects' layout
 *    (`csv.columns`, from their header line), and each field reads the position named after it;
 *    NDJSON is read by name. A line with fewer fields loads with the rest null (allowJaggedRows);
 *    one with more fails the job, as the file is then not what its header says.
 * 2. One query job types the text with SAFE_CAST into the staging table of the staged-data contract
 *    (../staged.ts), with `__reason` set where a value does not fit, in the polars path's words
 *    ("<column>: '<value>' is not a valid <TYPE>", "<column>: required value is missing"). With a
 *    committed cursor it keeps only rows whose typed cursor is after it, as the staged path does;
 *    rows without a usable cursor stay, and quarantine.
 *
 * Then, for a cursor, one query finds the greatest cursor of the rows that will load (quarantined
 * rows do not move it); the load commits it with the rows.
 *
 * A load job cannot tell which object a row came from (_FILE_NAME exists for external tables
 * only), so `__source_file` holds the source path as written and `__source_row` the row's place.
 */
const SHOWN_CHARS = 80;
const AFTER_PARAM = 'convergence_cursor_after';

/** Where each field is read in the raw table: its column there, or undefined when the objects lack it. */
interface RawLayout {
  columns: string[];
  columnOf(field: FieldSpec): string | undefined;
}

/** CSV: one column per position, named by it; NDJSON: the fields by name. */
function rawLayout(source: ObjectSource): RawLayout {
  if (source.format !== 'csv') return { columns: source.fields.map((f) => f.name), columnOf: (f) => f.name };
  const positions = source.csv?.columns ?? source.fields.map((f) => f.name);
  const columns = positions.map((_, i) => `column_${i + 1}`);
  return {
    columns,
    columnOf: (field) => {
      const at = positions.indexOf(field.name);
      return at < 0 ? undefined : columns[at];
    },
  };
}

const textSchema = (names: string[]) => names.map((name) => ({ name, type: 'STRING', mode: 'NULLABLE' }));
const sqlText = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

/** The staged value of a text column: typed, except where the staged type is text itself (NUMERIC, BYTES, JSON). */
function typedSql(column: string | undefined, type: FieldType): string {
  const staged = stagedType(type);
  if (column === undefined) return `CAST(NULL AS ${staged})`;
  return staged === 'STRING' ? column : `SAFE_CAST(${column} AS ${staged})`;
}

/** True where a present value does not fit its type. */
function invalidSql(column: string, type: FieldType): string | undefined {
  if (type === 'STRING' || type === 'JSON' || type === 'BYTES') return undefined;
  return `${column} IS NOT NULL AND SAFE_CAST(${column} AS ${type}) IS NULL`;
}

/** The row's reasons, in field order as the polars path lists them (engine/staging/frame.ts). */
function reasonSql(fields: FieldSpec[], layout: RawLayout, cursorField: string | undefined): string {
  const parts: string[] = [];
  const always = (message: string) => parts.push(sqlText(`; ${message}`));
  for (const field of fields) {
    const raw = layout.columnOf(field);
    const isCursor = field.name === cursorField;
    if (raw === undefined) {
      if (field.mode === 'REQUIRED') always(`${field.name}: required column is missing from the source`);
      else if (isCursor) always(`${field.name}: incremental cursor value is missing`);
      continue;
    }
    const column = `raw.${bq(raw)}`;
    const invalid = invalidSql(column, field.type);
    if (invalid) {
      parts.push(
        `CASE WHEN ${invalid} THEN CONCAT(${sqlText(`; ${field.name}: '`)}, SUBSTR(${column}, 1, ${SHOWN_CHARS}), ${sqlText(`' is not a valid ${field.type}`)}) ELSE '' END`,
      );
    }
    if (field.mode === 'REQUIRED')
      parts.push(`CASE WHEN ${column} IS NULL THEN ${sqlText(`; ${field.name}: required value is missing`)} ELSE '' END`);
    else if (isCursor)
      parts.push(`CASE WHEN ${column} IS NULL THEN ${sqlText(`; ${field.name}: incremental cursor value is missing`)} ELSE '' END`);
  }
  if (parts.length === 0) return 'CAST(NULL AS STRING)';
  return `NULLIF(SUBSTR(CONCAT(${parts.join(', ')}), 3), '')`;
}

/**
 * Rows to keep with a committed cursor: those whose cursor, typed, is after it, and those without
 * a usable one (they quarantine), as engine/staging/typing.ts cursorFilter keeps them.
 */
function afterCursorSql(field: FieldSpec, layout: RawLayout): string | undefined {
  const raw = layout.columnOf(field);
  if (raw === undefined) return undefined;
  const typed = field.type === 'STRING' ? `raw.${bq(raw)}` : `SAFE_CAST(raw.${bq(raw)} AS ${field.type})`;
  const after = field.type === 'STRING' ? `@${AFTER_PARAM}` : `CAST(@${AFTER_PARAM} AS ${field.type})`;
  return `${typed} IS NULL OR ${typed} > ${after}`;
}

/** The greatest cursor of the typed rows as text the engine reads back (the next run's `after`). */
function cursorMaxSql(field: FieldSpec): string {
  const column = `st.${bq(field.name)}`;
  if (field.type === 'TIMESTAMP') return `FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E6SZ', MAX(${column}), 'UTC')`;
  // NUMERIC is staged as decimal text: it orders as a number.
  if (field.type === 'NUMERIC') return `CAST(MAX(CAST(${column} AS NUMERIC)) AS STRING)`;
  return `CAST(MAX(${column}) AS STRING)`;
}

interface ObjectStage {
  ctx: LoadContext;
  dataset: string;
  stageName: string;
  source: ObjectSource;
  /** What `__source_file` records. */
  label: string;
  jobIds: { load: string; type: string };
  labels: Record<string, string>;
  expiration: () => string;
  what: string;
}

/** Runs the jobs; the caller drops `<stage>` (and this drops `<stage>_raw`) when done. */
export async function stageObjects(stage: ObjectStage): Promise<{ cursorMax?: string }> {
  const { ctx, dataset, stageName, source } = stage;
  const rawName = `${stageName}_raw`;
  const layout = rawLayout(source);
  const cursorField = source.cursor ? source.fields.find((f) => f.name === source.cursor!.field) : undefined;
  if (source.cursor && !cursorField)
    throw validationError(`incremental cursor_field "${source.cursor.field}" is not a column of the source`);
  try {
    await ctx.createTable(
      dataset,
      { name: rawName, fields: textSchema(layout.columns) as FieldSpec[] },
      { expirationTime: stage.expiration(), labels: stage.labels },
    );
    await ctx.jobs.loadFromUris({
      what: `load ${source.uris.join(', ')} for ${stage.what}`,
      jobId: stage.jobIds.load,
      labels: stage.labels,
      load: {
        destinationTable: { projectId: ctx.project, datasetId: dataset, tableId: rawName },
        sourceUris: source.uris,
        schema: { fields: textSchema(layout.columns) },
        autodetect: false,
        writeDisposition: 'WRITE_TRUNCATE',
        createDisposition: 'CREATE_IF_NEEDED',
        ...(source.format === 'csv'
          ? {
              sourceFormat: 'CSV',
              fieldDelimiter: source.csv?.delimiter ?? ',',
              skipLeadingRows: source.csv?.hasHeader === false ? 0 : 1,
              allowJaggedRows: true,
              maxBadRecords: 0,
            }
          : { sourceFormat: 'NEWLINE_DELIMITED_JSON', ignoreUnknownValues: true, maxBadRecords: 0 }),
      },
    });
    const after = cursorField && source.cursor?.after !== undefined ? afterCursorSql(cursorField, layout) : undefined;
    const columns = source.fields.map((f) => {
      const raw = layout.columnOf(f);
      return `${typedSql(raw === undefined ? undefined : `raw.${bq(raw)}`, f.type)} AS ${bq(f.name)}`;
    });
    await ctx.jobs.query({
      sql:
        `SELECT ${columns.join(', ')}, ${reasonSql(source.fields, layout, cursorField?.name)} AS ${bq(REASON_COLUMN)}, ` +
        `${sqlText(stage.label)} AS ${bq(SOURCE_FILE_COLUMN)}, ROW_NUMBER() OVER () AS ${bq(SOURCE_ROW_COLUMN)} ` +
        `FROM ${tableRef(ctx.project, dataset, rawName)} AS raw${after ? ` WHERE ${after}` : ''}`,
      ...(after ? { params: [queryParameter(AFTER_PARAM, source.cursor!.after!, 'STRING')] } : {}),
      what: `type the loaded objects for ${stage.what}`,
      jobId: stage.jobIds.type,
      labels: stage.labels,
      destination: { datasetId: dataset, tableId: stageName },
      accept: async () => (await ctx.tableFields(dataset, stageName)) !== undefined,
    });
    await ctx.setExpiration(dataset, stageName, stage.expiration());
    if (!cursorField) return {};
    const { rows } = await ctx.jobs.query({
      sql: `SELECT ${cursorMaxSql(cursorField)} AS cursor_max FROM ${tableRef(ctx.project, dataset, stageName)} AS st WHERE st.${bq(REASON_COLUMN)} IS NULL`,
      what: `find the new cursor of ${stage.what}`,
      labels: stage.labels,
      rows: true,
    });
    const cursorMax = rows[0]?.['cursor_max'];
    return cursorMax === null || cursorMax === undefined ? {} : { cursorMax: String(cursorMax) };
  } finally {
    await ctx.dropTable(dataset, rawName).catch(() => undefined);
  }
}
