import { chmod, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import pl from 'nodejs-polars';
import type { LazyDataFrame } from 'nodejs-polars';
import type { FieldSpec } from '../../backends/warehouse/port.ts';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../../lib/private-fs.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN } from '../../backends/warehouse/staged.ts';
import { cursorMaxText, POLARS_TYPE } from './typing.ts';

/** Staged files are numbered in load order: part-00000.parquet, part-00001.parquet, ... */
export function partPath(stagingDir: string, index: number): string {
  return path.join(stagingDir, `part-${String(index).padStart(5, '0')}.parquet`);
}

/** Staged rows are tenant data: the folder (and the staging root above it) is the owner's alone. */
export async function ensureStagingDir(stagingDir: string): Promise<void> {
  await ensurePrivateDir(path.dirname(stagingDir));
  await ensurePrivateDir(stagingDir);
}

/**
 * Streams a lazy frame into one Parquet file: polars' streaming engine reads, types and writes
 * in bounded chunks, so the input never has to fit in memory. Written under a temporary name and
 * renamed, so a part that exists is complete.
 */
export async function sinkPart(frame: LazyDataFrame, file: string): Promise<void> {
  const partial = `${file}.partial`;
  try {
    await frame.sinkParquet(partial, { compression: 'zstd', maintainOrder: true }).collect();
    await chmod(partial, PRIVATE_FILE_MODE);
    await rename(partial, file);
  } finally {
    await rm(partial, { force: true });
  }
}

export interface PartSummary {
  rows: number;
  rejected: number;
  cursorMax?: string;
}

/** Counts and the cursor's maximum over the staged files: one lazy aggregate that reads only the needed columns. */
export async function summarizeParts(files: string[], cursor?: FieldSpec): Promise<PartSummary> {
  if (files.length === 0) return { rows: 0, rejected: 0 };
  const scan = pl.concat(files.map((f) => pl.scanParquet(f)));
  const aggregates = [pl.len().cast(pl.Float64).alias('rows'), pl.col(REASON_COLUMN).isNotNull().sum().cast(pl.Float64).alias('rejected')];
  if (cursor) {
    // An elementwise mask rather than a filter inside the aggregate keeps the query streaming.
    const goodCursor = pl.when(pl.col(REASON_COLUMN).isNull()).then(pl.col(cursor.name)).otherwise(pl.lit(null));
    aggregates.push(cursorMaxText(goodCursor, cursor.type).alias('cursor'));
  }
  // Sunk to a one-row file rather than collected: collect() runs polars' in-memory engine, which
  // loads the cursor column whole, and collectSync's streaming engine would block the event loop.
  const result = path.join(path.dirname(files[0]!), `summary-${process.pid}-${Date.now()}.parquet`);
  let row: Record<string, unknown> | undefined;
  try {
    await scan
      .select(...aggregates)
      .sinkParquet(result)
      .collect();
    [row] = pl.readParquet(result).toRecords();
  } finally {
    await rm(result, { force: true });
  }
  const cursorMax = row?.['cursor'];
  return {
    rows: Number(row?.['rows'] ?? 0),
    rejected: Number(row?.['rejected'] ?? 0),
    ...(typeof cursorMax === 'string' ? { cursorMax } : {}),
  };
}

/** Number of rows in one staged file (read from the Parquet footer). */
export async function countRows(file: string): Promise<number> {
  const [row] = (await pl.scanParquet(file).select(pl.len().cast(pl.Float64).alias('n')).collect()).toRecords();
  return Number(row?.['n'] ?? 0);
}

/**
 * Rewrites a part so it has every field, in order: used when a later batch of records brought a
 * column the earlier parts did not have (the added column is null there).
 */
export async function conformPart(file: string, fields: FieldSpec[], has: Set<string>): Promise<void> {
  const columns = fields.map((f) => (has.has(f.name) ? pl.col(f.name) : pl.lit(null).cast(POLARS_TYPE[f.type]).alias(f.name)));
  const frame = pl.scanParquet(file).select(...columns, pl.col(REASON_COLUMN), pl.col(SOURCE_FILE_COLUMN), pl.col(SOURCE_ROW_COLUMN));
  const rewritten = `${file}.conformed.parquet`;
  await sinkPart(frame, rewritten);
  await rename(rewritten, file);
}
