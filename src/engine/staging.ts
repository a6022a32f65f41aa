import type { FieldSpec } from '../backends/warehouse/port.ts';

/**
 * The hand-over between a source and a load: Parquet files in a run's staging folder
 * (`.convergence/staging/<run_id>/<step>/`). Every file has the destination columns (typed as
 * `fields` says) plus three bookkeeping columns. A row whose `__reason` is not null could not be
 * parsed or typed: the load sends it to `<table>__quarantine` instead of the destination.
 *
 * Parquet types: INT64 Int64, FLOAT64 Float64, BOOL Boolean, DATE Date, TIMESTAMP Datetime(us, UTC),
 * STRING and JSON Utf8; NUMERIC as exact decimal text and BYTES as base64 text (nodejs-polars
 * cannot hand binary columns over), which the load decodes.
 */
export const REASON_COLUMN = '__reason';
export const SOURCE_FILE_COLUMN = '__source_file';
export const SOURCE_ROW_COLUMN = '__source_row';
export const BOOKKEEPING_COLUMNS = [REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN] as const;

export interface StagedData {
  /** Absolute paths of the Parquet files, in load order. May be empty when nothing was read. */
  files: string[];
  /** Destination columns, in order, without the bookkeeping columns. */
  fields: FieldSpec[];
  /** Rows written to staging, good and quarantined together. */
  rows: number;
  /** Rows whose __reason is set. */
  rejected: number;
  /** Bytes read from the source (file sizes or response bodies). */
  bytesRead: number;
  /** Greatest value of the incremental cursor field among the good rows, as text; undefined when none. */
  cursorMax?: string;
  /** Things the operator should know that did not stop the run, e.g. source columns left out of the schema. */
  warnings?: string[];
}

/** Live counters a step reports while it works (shown by listr2 and kept in step logs). */
export interface StepProgress {
  (update: { rows?: number; bytes?: number; message?: string }): void;
}
