import type { FieldType } from './port.ts';

/**
 * The staged-data contract between the engine and the warehouse adapters: Parquet files in a
 * run's staging folder (`.convergence/staging/<run_id>/<step>/`), handed to `Warehouse.load` as a
 * `parquet` source. Every file has the destination columns (typed as `fields` says, see
 * `stagedType`) plus three bookkeeping columns. A row whose `__reason` is not null could not be
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

/** A column's type as staged: NUMERIC (decimal text), BYTES (base64 text) and JSON are text; the rest as they are. */
export function stagedType(type: FieldType): FieldType {
  return type === 'NUMERIC' || type === 'BYTES' || type === 'JSON' ? 'STRING' : type;
}
