import type { FieldSpec, FieldType, ObjectSource } from '../port.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN, stagedType } from '../staged.ts';
import type { LoadContext } from './load-context.ts';
import { bq, sqlString, tableRef } from './sql.ts';
import { queryParameter } from './values.ts';
import { validationError } from '../../../lib/errors.ts';

/**
 * Stages Cloud Storage objects for a load (load.ts step 1) without a byte passing through this
 * process, in one query job:
 *
 * - The objects are a temporary external table of that job (`tableDefinitions`, named
 *   OBJECTS_TABLE; BigQuery expands the `*` of the `gs://` URIs), every column STRING, so no value
 *   can fail the job for its type. BigQuery reads CSV columns by position (the header line is
 *   skipped), so the table has one column per position of the objects' layout (`csv.columns`, from
 *   their header line), and each field reads the position named after it; NDJSON is read by name.
 *   A line with fewer fields reads with the rest null (allowJaggedRows); one with more fails the
 *   job, as the file is then not what its header says.
 * - The query types the text with SAFE_CAST into the staging table of the staged-data contract
 *   (../staged.ts), with `__reason` set where a value does not fit, in the polars path's words
 *   ("<column>: '<value>' is not a valid <TYPE>", "<column>: required value is missing"). With a
 *   committed cursor it keeps only rows whose typed cursor is after it, as the staged path does;
 *   rows without a usable cursor stay, and quarantine.
 * - `__source_file` is the row's own object: the external table's `_FILE_NAME` pseudo-column (the
 *   object's gs:// URI, as the local path records it), which a load job cannot give. It must be
 *   named, aliased, in the query: `SELECT *` does not include it.
 * - `__source_row` numbers the rows within their object from the first data line, as the local
 *   path gives the line a row starts on (the header is line 1). It cannot be exact here: BigQuery
 *   has no line number, and does not promise to read an object's rows in file order, so the number
 *   is the row's place among its object's rows as BigQuery read them; and where the local path
 *   skips blank lines and counts the lines a quoted field spans, this counts records only.
 *
 * Then, for a cursor, one query finds the greatest cursor of the rows that will load (quarantined
 * rows do not move it); the load commits it with the rows.
 */
const SHOWN_CHARS = 80;
const AFTER_PARAM = 'convergence_cursor_after';
/** The objects' temporary table, known to the staging query only. */
const OBJECTS_TABLE = 'convergence_objects';

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
  const always = (message: string) => parts.push(sqlString(`; ${message}`));
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
        `CASE WHEN ${invalid} THEN CONCAT(${sqlString(`; ${field.name}: '`)}, SUBSTR(${column}, 1, ${SHOWN_CHARS}), ${sqlString(`' is not a valid ${field.type}`)}) ELSE '' END`,
      );
    }
    if (field.mode === 'REQUIRED')
      parts.push(`CASE WHEN ${column} IS NULL THEN ${sqlString(`; ${field.name}: required value is missing`)} ELSE '' END`);
    else if (isCursor)
      parts.push(`CASE WHEN ${column} IS NULL THEN ${sqlString(`; ${field.name}: incremental cursor value is missing`)} ELSE '' END`);
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

/** The objects as an external table (ExternalDataConfiguration): all text, read as laid out. */
function objectsTable(source: ObjectSource, layout: RawLayout): Record<string, unknown> {
  const common = { sourceUris: source.uris, schema: { fields: textSchema(layout.columns) }, autodetect: false, maxBadRecords: 0 };
  if (source.format !== 'csv') return { ...common, sourceFormat: 'NEWLINE_DELIMITED_JSON', ignoreUnknownValues: true };
  return {
    ...common,
    sourceFormat: 'CSV',
    csvOptions: {
      fieldDelimiter: source.csv?.delimiter ?? ',',
      skipLeadingRows: String(headerLines(source)),
      allowJaggedRows: true,
    },
  };
}

const headerLines = (source: ObjectSource) => (source.format === 'csv' && source.csv?.hasHeader !== false ? 1 : 0);

/**
 * The objects' rows with their object (`_FILE_NAME`, aliased) and their number within it, counted
 * from the line after the header as the local path counts lines; numbered before the cursor filter.
 */
function objectRowsSql(source: ObjectSource, layout: RawLayout): string {
  const columns = layout.columns.map((c) => bq(c)).join(', ');
  const file = bq(SOURCE_FILE_COLUMN);
  const withFile = `SELECT ${columns}, _FILE_NAME AS ${file} FROM ${OBJECTS_TABLE}`;
  const rowNumber = `ROW_NUMBER() OVER (PARTITION BY ${file})${headerLines(source) ? ` + ${headerLines(source)}` : ''}`;
  return `SELECT *, ${rowNumber} AS ${bq(SOURCE_ROW_COLUMN)} FROM (${withFile})`;
}

interface ObjectStage {
  ctx: LoadContext;
  dataset: string;
  stageName: string;
  source: ObjectSource;
  jobId: string;
  labels: Record<string, string>;
  expiration: () => string;
  what: string;
}

/** Runs the jobs; the caller drops `<stage>` when done. */
export async function stageObjects(stage: ObjectStage): Promise<{ cursorMax?: string }> {
  const { ctx, dataset, stageName, source } = stage;
  const layout = rawLayout(source);
  const cursorField = source.cursor ? source.fields.find((f) => f.name === source.cursor!.field) : undefined;
  if (source.cursor && !cursorField)
    throw validationError(`incremental cursor_field "${source.cursor.field}" is not a column of the source`);
  const after = cursorField && source.cursor?.after !== undefined ? afterCursorSql(cursorField, layout) : undefined;
  const columns = source.fields.map((f) => {
    const raw = layout.columnOf(f);
    return `${typedSql(raw === undefined ? undefined : `raw.${bq(raw)}`, f.type)} AS ${bq(f.name)}`;
  });
  await ctx.jobs.query({
    sql:
      `SELECT ${columns.join(', ')}, ${reasonSql(source.fields, layout, cursorField?.name)} AS ${bq(REASON_COLUMN)}, ` +
      `raw.${bq(SOURCE_FILE_COLUMN)}, raw.${bq(SOURCE_ROW_COLUMN)} ` +
      `FROM (${objectRowsSql(source, layout)}) AS raw${after ? ` WHERE ${after}` : ''}`,
    tableDefinitions: { [OBJECTS_TABLE]: objectsTable(source, layout) },
    ...(after ? { params: [queryParameter(AFTER_PARAM, source.cursor!.after!, 'STRING')] } : {}),
    what: `read ${source.uris.length === 1 ? source.uris[0] : `${source.uris.length} objects`} for ${stage.what}`,
    jobId: stage.jobId,
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
}
