import type { FieldSpec } from '../../backends/warehouse/port.ts';

/**
 * What a source hands to the ingest step: the Parquet files it staged, in the format of the
 * staged-data contract (src/backends/warehouse/staged.ts), and what it counted on the way.
 */
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
