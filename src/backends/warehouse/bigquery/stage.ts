import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { CsvNeedsStaging, type FieldSpec, type FieldType, type LoadRequest, type Scalar } from '../port.ts';
import { BOOKKEEPING_COLUMNS, stagedType } from '../staged.ts';

/** Staged Parquet on its way to BigQuery: the staging table's schema, one upload file, and a fingerprint of the input. */

/**
 * The load job's schema: autodetect stays off, so the bookkeeping columns are named too. Columns
 * keep their types as staged (../staged.ts): NUMERIC decimal text and BYTES base64 text, which the
 * load converts in SQL; JSON is text too, so one malformed document fails in SQL with its row
 * rather than failing the whole load job.
 */
export function stageSchema(fields: FieldSpec[]): Array<{ name: string; type: FieldType; mode: 'NULLABLE' }> {
  return [
    ...fields.map((f) => ({ name: f.name, type: stagedType(f.type), mode: 'NULLABLE' as const })),
    { name: BOOKKEEPING_COLUMNS[0], type: 'STRING', mode: 'NULLABLE' },
    { name: BOOKKEEPING_COLUMNS[1], type: 'STRING', mode: 'NULLABLE' },
    { name: BOOKKEEPING_COLUMNS[2], type: 'INT64', mode: 'NULLABLE' },
  ];
}

/**
 * One file to upload. A load job takes one media upload, and one load job per load keeps the
 * load atomic and its job id meaningful; the engine stages one part per source file, so several
 * parts are concatenated here (polars, streaming, in part order) rather than loaded job by job.
 */
export async function uploadFile(files: string[], fields: FieldSpec[]): Promise<{ file: string; cleanup: () => Promise<void> }> {
  if (files.length === 1) return { file: files[0]!, cleanup: async () => undefined };
  const pl = (await import('nodejs-polars')).default;
  const columns = [...fields.map((f) => f.name), ...BOOKKEEPING_COLUMNS];
  const file = path.join(path.dirname(files[0]!), `bigquery-upload-${randomUUID()}.parquet`);
  const frame = pl.concat(files.map((f) => pl.scanParquet(f).select(...columns)));
  await frame.sinkParquet(file, { compression: 'zstd', maintainOrder: true }).collect();
  return { file, cleanup: () => rm(file, { force: true }) };
}

async function hashFile(hash: ReturnType<typeof createHash>, file: string): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

const stable = (value: unknown): unknown =>
  typeof value === 'bigint'
    ? `${value}n`
    : value instanceof Date
      ? value.toISOString()
      : Array.isArray(value)
        ? value.map(stable)
        : value && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stable(v)]))
          : value;

/**
 * What identifies a load within a run: destination, mode, input bytes and state writes. Job ids
 * carry it, so retrying the same load finds its earlier jobs while a different load in the same
 * run gets jobs of its own.
 */
export async function fingerprint(request: LoadRequest): Promise<string> {
  const hash = createHash('sha256');
  const { source } = request;
  if (source.kind === 'csv-files') throw new CsvNeedsStaging('BigQuery reads no local files');
  hash.update(
    JSON.stringify(
      stable({
        dataset: request.dataset,
        table: request.table,
        writeMode: request.writeMode,
        mergeKeys: request.mergeKeys ?? [],
        partitionBy: request.partitionBy ?? null,
        clusterBy: request.clusterBy ?? [],
        // Objects are named, not hashed: their generations are in alsoWrite (the loaded-object state).
        source:
          source.kind === 'parquet'
            ? { kind: 'parquet', fields: source.fields }
            : source.kind === 'objects'
              ? source
              : { kind: 'query', sql: source.sql, params: (source.params ?? {}) as Record<string, Scalar> },
        alsoWrite: request.alsoWrite ?? [],
      }),
    ),
  );
  if (source.kind === 'parquet') for (const file of source.files) await hashFile(hash, file);
  return hash.digest('hex');
}

/** A job id: letters, digits, "_" and "-", at most 1024 characters. */
export const jobId = (...parts: string[]) =>
  parts
    .join('_')
    .replace(/[^A-Za-z0-9_-]/g, '_')
    .slice(0, 1024);
