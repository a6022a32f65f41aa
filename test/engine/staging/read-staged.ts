import pl from 'nodejs-polars';

/**
 * Reads staged Parquet back as plain rows for assertions: DATE as 'YYYY-MM-DD', TIMESTAMP as ISO
 * 8601 in UTC with microseconds, so expected values can be written as text.
 */
export type StagedRecord = Record<string, unknown>;

export function readStaged(files: string[]): StagedRecord[] {
  return files.flatMap((file) => {
    const frame = pl.readParquet(file);
    const columns = frame.columns.map((name) => {
      const variant = frame.getColumn(name).dtype.variant;
      if (variant === 'Date') return pl.col(name).dt.strftime('%Y-%m-%d').alias(name);
      if (variant === 'Datetime') return pl.col(name).dt.strftime('%Y-%m-%dT%H:%M:%S%.6fZ').alias(name);
      return pl.col(name);
    });
    return frame.select(...columns).toRecords() as StagedRecord[];
  });
}

/** polars dtype names of a staged file, e.g. { id: 'Int64', ts: 'Datetime' }. */
export function stagedTypes(file: string): Record<string, string> {
  const frame = pl.readParquet(file);
  return Object.fromEntries(frame.columns.map((name) => [name, String(frame.getColumn(name).dtype)]));
}

/** Only the bookkeeping and the named columns, to keep expectations short. */
export function pick(rows: StagedRecord[], ...columns: string[]): StagedRecord[] {
  return rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c]])));
}
