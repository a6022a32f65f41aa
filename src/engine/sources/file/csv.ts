import pl from 'nodejs-polars';
import type { Expr, LazyDataFrame } from 'nodejs-polars';
import type { FieldSpec } from '../../../backends/warehouse/port.ts';
import { identifiersFor, matchColumn } from '../../staging/fields.ts';
import { textType, TypeVote } from '../../staging/infer.ts';
import type { CsvLayout } from './csv-layout.ts';
import { malformedFile, polarsMessage, quotingHint } from './errors.ts';
import type { InputFile } from './resolve.ts';
import type { Warnings } from './warnings.ts';

/**
 * CSV through polars: every column is read as text (inferSchemaLength 0) and typed by
 * stage/typing.ts, so a bad value anywhere in the file quarantines its row instead of failing the
 * scan. Ragged lines are read with truncateRaggedLines (extra fields cut, missing ones null) and
 * then quarantined by their row index, which the layout pass found. Bytes that are not UTF-8 are
 * read as U+FFFD (polars would otherwise refuse the whole file) and their rows quarantined the
 * same way.
 */
export interface CsvSettings {
  delimiter: string;
  hasHeader: boolean;
}

export const ROW_INDEX = '__convergence_row_index';
/** Rows sampled per file to infer types without a schema. */
export const SAMPLE_ROWS = 10_000;
/** Multi-line records tracked exactly; beyond this, __source_row counts records. */
const MAX_SHIFTS = 64;
/** Distinct ragged widths named in reasons; the rest share a generic reason. */
const MAX_RAGGED_GROUPS = 16;

export function scanCsv(file: string, settings: CsvSettings, extra: { nRows?: number } = {}): LazyDataFrame {
  return pl.scanCSV(file, {
    sep: settings.delimiter,
    hasHeader: settings.hasHeader,
    inferSchemaLength: 0,
    truncateRaggedLines: true,
    raiseIfEmpty: false,
    encoding: 'utf8-lossy',
    rowIndexName: ROW_INDEX,
    ...extra,
  });
}

/** Runs a polars read of one file, reporting a parse failure against the file (and a suspicious quote). */
export async function csvRead<T>(file: InputFile, layout: CsvLayout, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw malformedFile(file.label, `cannot be read as CSV: ${polarsMessage(err)}`, quotingHint(layout.quoteProblemLine));
  }
}

/** Column names polars gives the file: the header, or column_1, column_2, ... without one. */
export async function csvColumns(file: string, settings: CsvSettings): Promise<string[]> {
  const frame = await scanCsv(file, settings).limit(0).collect();
  return frame.columns.filter((c) => c !== ROW_INDEX);
}

/** Which raw column feeds each field, per file. */
export type ColumnMap = Map<string, string>;

/**
 * Without a schema: fields from the headers (as identifiers) and types voted over the first rows of
 * every file. Ragged and blank lines are left out of the vote: they are quarantined anyway, and a
 * shifted value would otherwise turn a whole column into STRING.
 */
export async function inferCsvFields(
  files: InputFile[],
  layouts: CsvLayout[],
  settings: CsvSettings,
): Promise<{ fields: FieldSpec[]; maps: ColumnMap[]; renamed: string[] }> {
  const votes = new Map<string, TypeVote>();
  const maps: ColumnMap[] = [];
  const renamed = new Set<string>();
  for (const [i, file] of files.entries()) {
    const layout = layouts[i]!;
    const skip = new Set([...layout.blank, ...layout.invalidUtf8, ...[...layout.ragged.values()].flat()].filter((r) => r < SAMPLE_ROWS));
    const sample = await csvRead(file, layout, () => scanCsv(file.absolute, settings, { nRows: SAMPLE_ROWS }).collect());
    const index = sample.getColumn(ROW_INDEX).toArray() as number[];
    const raw = sample.columns.filter((c) => c !== ROW_INDEX);
    const ids = identifiersFor(raw);
    ids.renamed.forEach((r) => renamed.add(r));
    const map: ColumnMap = new Map();
    raw.forEach((column, c) => {
      const name = ids.names[c]!;
      map.set(name, column);
      const vote = votes.get(name) ?? new TypeVote();
      votes.set(name, vote);
      (sample.getColumn(column).toArray() as Array<string | null>).forEach((value, r) => {
        if (value !== null && !skip.has(index[r]!)) vote.add(textType(value));
      });
    });
    maps.push(map);
  }
  const fields = [...votes].map(([name, vote]) => ({ name, type: vote.result }));
  return { fields, maps, renamed: [...renamed] };
}

/**
 * With a schema: header names matched to fields; without a header, fields are taken in order.
 * The file's columns the schema leaves out, and the fields it lacks, go to `warnings`.
 */
export function schemaColumnMap(
  fields: FieldSpec[],
  columns: string[],
  settings: CsvSettings,
  file: InputFile,
  warnings: Warnings,
): ColumnMap {
  const map: ColumnMap = new Map();
  fields.forEach((field, i) => {
    const column = settings.hasHeader ? matchColumn(field.name, columns) : columns[i];
    if (column !== undefined) map.set(field.name, column);
  });
  const used = new Set(map.values());
  warnings.unused(
    columns.filter((c) => !used.has(c)),
    file.label,
  );
  warnings.missing(
    fields.filter((f) => !map.has(f.name)).map((f) => f.name),
    file.label,
  );
  return map;
}

const rowIndex = () => pl.col(ROW_INDEX).cast(pl.Int64);

/**
 * Blank lines are not data, as in most CSV readers (polars reads each as a row of nulls). In a
 * one-column file an empty value is written the same way, and is skipped too.
 */
export function dropBlankLines(frame: LazyDataFrame, layout: CsvLayout): LazyDataFrame {
  if (layout.blank.length === 0) return frame;
  return frame.filter(
    pl
      .col(ROW_INDEX)
      .isIn(pl.Series('blank', layout.blank, pl.UInt32).implode())
      .not(),
  );
}

export const INVALID_UTF8_REASON = 'line is not valid UTF-8 (is the file in another encoding, e.g. Windows-1252?)';

/**
 * The reason of each record the layout pass found unfit: not UTF-8 (first: its values are
 * unreliable), or "line has 5 fields, expected 4".
 */
export function lineReason(layout: CsvLayout): Expr | undefined {
  if (layout.raggedCount === 0 && layout.invalidUtf8.length === 0) return undefined;
  const groups = [...layout.ragged].sort((a, b) => b[1].length - a[1].length);
  const named = groups
    .slice(0, MAX_RAGGED_GROUPS)
    .map(([width, records]) => ({ records, message: `line has ${width} fields, expected ${layout.width}` }));
  const rest = groups.slice(MAX_RAGGED_GROUPS).flatMap(([, records]) => records);
  if (rest.length > 0) named.push({ records: rest, message: `line does not have the expected ${layout.width} fields` });
  if (layout.invalidUtf8.length > 0) named.unshift({ records: layout.invalidUtf8, message: INVALID_UTF8_REASON });
  return named.reduceRight<Expr>(
    (otherwise, group) =>
      pl
        .when(pl.col(ROW_INDEX).isIn(pl.Series('ragged', group.records, pl.UInt32).implode()))
        .then(pl.lit(group.message))
        .otherwise(otherwise),
    pl.lit(null).cast(pl.Utf8),
  );
}

/**
 * The line a record starts on, as an editor shows it (the header is line 1). Records after a
 * quoted field that spans lines are shifted by the lines it took; past MAX_SHIFTS such records the
 * expression would get long, so the number is then the record's (header = 1) and `exact` is false.
 */
export function lineNumber(layout: CsvLayout): { expr: Expr; exact: boolean } {
  const base = rowIndex().add(pl.lit(layout.firstLine));
  if (layout.shifts.length === 0) return { expr: base, exact: true };
  if (layout.shifts.length > MAX_SHIFTS) return { expr: base, exact: false };
  const extra = layout.shifts.reduce<Expr>(
    (otherwise, [record, shift]) =>
      pl
        .when(rowIndex().gtEq(pl.lit(record)))
        .then(pl.lit(shift))
        .otherwise(otherwise),
    pl.lit(0),
  );
  return { expr: base.add(extra), exact: true };
}
