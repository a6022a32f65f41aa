import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pl from 'nodejs-polars';
import type { FieldSpec, FieldType } from '../../src/backends/warehouse/port.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN } from '../../src/backends/warehouse/staged.ts';

const POLARS_TYPE: Partial<Record<FieldType, pl.DataType>> = {
  STRING: pl.Utf8,
  INT64: pl.Int64,
  FLOAT64: pl.Float64,
  BOOL: pl.Bool,
  DATE: pl.Date,
  // Staged as base64 text, as the sources stage it.
  BYTES: pl.Utf8,
};

export interface StagedRow {
  values: Record<string, unknown>;
  reason?: string;
}

/** Writes one staged Parquet file the way a source would, for load tests. */
export async function writeStaged(
  dir: string,
  name: string,
  fields: FieldSpec[],
  rows: StagedRow[],
  sourceFile = 'data/in.csv',
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const columns = fields.map((f) => {
    const type = POLARS_TYPE[f.type];
    if (!type) throw new Error(`writeStaged: no test mapping for ${f.type}`);
    const values = rows.map((r) => {
      const v = r.values[f.name] ?? null;
      return f.type === 'DATE' && typeof v === 'string' ? new Date(`${v}T00:00:00Z`) : v;
    });
    return pl.Series(f.name, values, type);
  });
  const df = pl.DataFrame([
    ...columns,
    pl.Series(
      REASON_COLUMN,
      rows.map((r) => r.reason ?? null),
      pl.Utf8,
    ),
    pl.Series(
      SOURCE_FILE_COLUMN,
      rows.map(() => sourceFile),
      pl.Utf8,
    ),
    pl.Series(
      SOURCE_ROW_COLUMN,
      rows.map((_, i) => i + 2),
      pl.Int64,
    ),
  ]);
  const file = path.join(dir, `${name}.parquet`);
  df.writeParquet(file);
  return file;
}
