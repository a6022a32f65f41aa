import type { FieldSpec, FieldType, ObjectSource } from '../port.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN, stagedType } from '../staged.ts';
import type { LoadContext } from './load-context.ts';
import { bq, tableRef } from './sql.ts';

/**
 * Stages Cloud Storage objects for a load (load.ts step 1) without a byte passing through this
 * process, in two jobs:
 *
 * 1. One load job from the `gs://` URIs (BigQuery expands the `*`) into `<stage>_raw`, every column
 *    STRING, so no value can fail the job for its type. CSV columns are read by position (the
 *    header line is skipped), in the order of the schema; NDJSON by name. A line with fewer fields
 *    loads with the rest null (allowJaggedRows); one with more fails the job, as the file is then
 *    not what the schema says.
 * 2. One query job types the text with SAFE_CAST into the staging table of the staged-data contract
 *    (../staged.ts), with `__reason` set where a value does not fit, in the polars path's words
 *    ("<column>: '<value>' is not a valid <TYPE>", "<column>: required value is missing").
 *
 * A load job cannot tell which object a row came from (_FILE_NAME exists for external tables
 * only), so `__source_file` holds the source path as written and `__source_row` the row's place.
 */
const SHOWN_CHARS = 80;

const textSchema = (fields: FieldSpec[]) => fields.map((f) => ({ name: f.name, type: 'STRING', mode: 'NULLABLE' }));

/** The staged value of a text column: typed, except where the staged type is text itself (NUMERIC, BYTES, JSON). */
function typedSql(column: string, type: FieldType): string {
  const staged = stagedType(type);
  return staged === 'STRING' ? column : `SAFE_CAST(${column} AS ${staged})`;
}

/** True where a present value does not fit its type. */
function invalidSql(column: string, type: FieldType): string | undefined {
  if (type === 'STRING' || type === 'JSON' || type === 'BYTES') return undefined;
  return `${column} IS NOT NULL AND SAFE_CAST(${column} AS ${type}) IS NULL`;
}

function reasonSql(fields: FieldSpec[]): string {
  const text = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const parts: string[] = [];
  for (const field of fields) {
    const column = `raw.${bq(field.name)}`;
    const invalid = invalidSql(column, field.type);
    if (invalid) {
      parts.push(
        `CASE WHEN ${invalid} THEN CONCAT(${text(`; ${field.name}: '`)}, SUBSTR(${column}, 1, ${SHOWN_CHARS}), ${text(`' is not a valid ${field.type}`)}) ELSE '' END`,
      );
    }
    if (field.mode === 'REQUIRED')
      parts.push(`CASE WHEN ${column} IS NULL THEN ${text(`; ${field.name}: required value is missing`)} ELSE '' END`);
  }
  if (parts.length === 0) return 'CAST(NULL AS STRING)';
  return `NULLIF(SUBSTR(CONCAT(${parts.join(', ')}), 3), '')`;
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

/** Runs both jobs; the caller drops `<stage>` (and this drops `<stage>_raw`) when done. */
export async function stageObjects(stage: ObjectStage): Promise<void> {
  const { ctx, dataset, stageName, source } = stage;
  const rawName = `${stageName}_raw`;
  try {
    await ctx.createTable(
      dataset,
      { name: rawName, fields: textSchema(source.fields) as FieldSpec[] },
      { expirationTime: stage.expiration(), labels: stage.labels },
    );
    await ctx.jobs.loadFromUris({
      what: `load ${source.uris.join(', ')} for ${stage.what}`,
      jobId: stage.jobIds.load,
      labels: stage.labels,
      load: {
        destinationTable: { projectId: ctx.project, datasetId: dataset, tableId: rawName },
        sourceUris: source.uris,
        schema: { fields: textSchema(source.fields) },
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
    const label = `'${stage.label.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
    const columns = source.fields.map((f) => `${typedSql(`raw.${bq(f.name)}`, f.type)} AS ${bq(f.name)}`);
    await ctx.jobs.query({
      sql:
        `SELECT ${columns.join(', ')}, ${reasonSql(source.fields)} AS ${bq(REASON_COLUMN)}, ` +
        `${label} AS ${bq(SOURCE_FILE_COLUMN)}, ROW_NUMBER() OVER () AS ${bq(SOURCE_ROW_COLUMN)} ` +
        `FROM ${tableRef(ctx.project, dataset, rawName)} AS raw`,
      what: `type the loaded objects for ${stage.what}`,
      jobId: stage.jobIds.type,
      labels: stage.labels,
      destination: { datasetId: dataset, tableId: stageName },
      accept: async () => (await ctx.tableFields(dataset, stageName)) !== undefined,
    });
    await ctx.setExpiration(dataset, stageName, stage.expiration());
  } finally {
    await ctx.dropTable(dataset, rawName).catch(() => undefined);
  }
}
