import { rm } from 'node:fs/promises';
import pl from 'nodejs-polars';
import type { Expr, LazyDataFrame } from 'nodejs-polars';
import type { FieldSpec } from '../../../backends/warehouse/port.ts';
import type { SourceConfig, TableSchemaFile } from '../../../domain/pipeline.ts';
import { fieldsFromSchema } from '../../staging/fields.ts';
import { typeFrame } from '../../staging/frame.ts';
import { countRows, ensureStagingDir, partPath, sinkPart, summarizeParts } from '../../staging/parts.ts';
import { stageRecordBatches } from '../../staging/records.ts';
import { cursorFieldOf, cursorFilter, type RawColumn } from '../../staging/typing.ts';
import type { StagedData, StepProgress } from '../../staging/staged-data.ts';
import { scanCsvLayout, type CsvLayout } from './csv-layout.ts';
import {
  csvColumns,
  csvRead,
  dropBlankLines,
  inferCsvFields,
  lineNumber,
  lineReason,
  ROW_INDEX,
  scanCsv,
  schemaColumnMap,
  type CsvSettings,
} from './csv.ts';
import { malformedFile, polarsMessage, quotingHint } from './errors.ts';
import { ndjsonBatches } from './ndjson.ts';
import { inferParquetFields, parquetColumnMap, parquetColumns } from './parquet.ts';
import { resolveInputFiles, type FileScope, type InputFile } from './resolve.ts';
import { Warnings } from './warnings.ts';

export { type FileScope } from './resolve.ts';

type FileSource = Extract<SourceConfig, { type: 'file' }>;

export interface StageFileOptions {
  /** Where the tenant's files may be read from (its data folder, the environment's file roots). */
  scope: FileScope;
  stagingDir: string;
  /** The BigQuery JSON schema: fixes the columns and their types. Without it types are inferred. */
  tableSchema?: TableSchemaFile;
  /** Only rows whose cursor is greater than `after` are staged; cursorMax is computed either way. */
  incremental?: { cursorField: string; after?: string };
  signal?: AbortSignal;
  onProgress?: StepProgress;
}

/**
 * Stages a file source (csv, ndjson or parquet; a path or a glob) as Parquet parts in stagingDir,
 * one per input file for csv and parquet. Rows that cannot be parsed or typed are kept with a
 * `__reason` so the load quarantines them; the run fails only when a file cannot be read at all.
 */
export async function stageFileSource(source: FileSource, options: StageFileOptions): Promise<StagedData> {
  return stageInputFiles(await resolveInputFiles(source.path, options.scope), source, options);
}

/** Stages files already found (local matches, or gs:// objects downloaded to the staging folder). */
export async function stageInputFiles(
  files: InputFile[],
  source: FileSource,
  options: Omit<StageFileOptions, 'scope'>,
): Promise<StagedData> {
  await ensureStagingDir(options.stagingDir);
  // An empty file has nothing to read (and is not even valid Parquet): it only gets a warning.
  const readable = files.filter((f) => f.size > 0);
  let staged: StagedData;
  if (source.format === 'ndjson') staged = await stageNdjson(readable, options);
  else {
    const plan = source.format === 'csv' ? await planCsv(readable, source, options) : await planParquet(readable, options);
    staged = await stageParts(readable, plan, options);
  }
  return withEmptyFileNote(staged, files);
}

/** An empty input file is no error (an export with nothing in it), but worth a warning: it may be a failed export. */
export function emptyFileNote(files: InputFile[]): string | undefined {
  const empty = files.filter((f) => f.size === 0).map((f) => f.label);
  if (empty.length === 0) return undefined;
  const shown = empty.length <= 3 ? empty.join(', ') : `${empty.slice(0, 3).join(', ')} and ${empty.length - 3} more`;
  return `${empty.length === 1 ? 'file is' : `${empty.length} files are`} empty, no rows loaded from ${empty.length === 1 ? 'it' : 'them'}: ${shown}`;
}

function withEmptyFileNote(staged: StagedData, files: InputFile[]): StagedData {
  const note = emptyFileNote(files);
  return note ? { ...staged, warnings: [...(staged.warnings ?? []), note] } : staged;
}

async function stageNdjson(files: InputFile[], options: Omit<StageFileOptions, 'scope'>): Promise<StagedData> {
  let bytes = 0;
  const batches = ndjsonBatches(files, { ...(options.signal ? { signal: options.signal } : {}), onBytes: (b) => (bytes = b) });
  return stageRecordBatches(batches, { ...options, sourceLabel: '', bytesRead: () => bytes });
}

/** What the csv and parquet paths share: per file, a lazy frame of raw columns, typed and streamed to one part. */
interface FilePlan {
  fields: FieldSpec[];
  warnings: Warnings;
  /** Undefined when the file has no data rows. */
  frame(file: InputFile, index: number): Promise<FileFrame | undefined>;
}

interface FileFrame {
  raw: LazyDataFrame;
  rawFor: (field: FieldSpec) => RawColumn | undefined;
  rowReason?: Expr;
  sourceRow: Expr;
  /** Rows the part must have when nothing is filtered out; a mismatch means polars split records differently. */
  expectedRows?: number;
  quoteProblemLine?: number;
  format: string;
}

async function stageParts(files: InputFile[], plan: FilePlan, options: Omit<StageFileOptions, 'scope'>): Promise<StagedData> {
  const { fields, warnings } = plan;
  const cursorField = options.incremental?.cursorField;
  // A file with no columns at all (empty) has no cursor to check; any other file must have it.
  const cursor = cursorField && fields.length > 0 ? cursorFieldOf(fields, cursorField) : undefined;
  const after = options.incremental?.after;
  const keep = cursor && after !== undefined ? cursorFilter(cursor, pl.col(cursor.name), after) : undefined;

  const parts: string[] = [];
  let rows = 0;
  let bytes = 0;
  for (const [index, file] of files.entries()) {
    options.signal?.throwIfAborted();
    const frame = await plan.frame(file, index);
    bytes += file.size;
    if (!frame) continue;
    const typed = typeFrame(frame.raw, fields, frame.rawFor, {
      ...(frame.rowReason ? { rowReason: frame.rowReason } : {}),
      ...(cursorField ? { cursorField } : {}),
      sourceFile: pl.lit(file.label),
      sourceRow: frame.sourceRow,
    });
    const lazy = keep ? typed.filter(keep) : typed;
    const part = partPath(options.stagingDir, parts.length);
    try {
      await sinkPart(lazy, part);
    } catch (err) {
      throw malformedFile(file.label, `cannot be read as ${frame.format}: ${polarsMessage(err)}`, quotingHint(frame.quoteProblemLine));
    }
    const count = await countRows(part);
    if (!keep && frame.expectedRows !== undefined && count !== frame.expectedRows) {
      await rm(part, { force: true });
      const near = frame.quoteProblemLine ? ` (look at the quoting near line ${frame.quoteProblemLine})` : '';
      throw malformedFile(file.label, `records could not be split reliably: found ${frame.expectedRows}, polars read ${count}${near}`);
    }
    if (count === 0) await rm(part, { force: true });
    else parts.push(part);
    rows += count;
    options.onProgress?.({ rows, bytes, message: `staged ${file.label}` });
  }
  const summary = await summarizeParts(parts, cursor);
  const notes = warnings.list();
  return { files: parts, fields, ...summary, bytesRead: bytes, ...(notes.length > 0 ? { warnings: notes } : {}) };
}

async function planCsv(files: InputFile[], source: FileSource, options: Omit<StageFileOptions, 'scope'>): Promise<FilePlan> {
  const settings: CsvSettings = { delimiter: source.csv?.delimiter ?? ',', hasHeader: source.csv?.has_header ?? true };
  const warnings = new Warnings();
  // The layout pass comes first: inference must not vote with ragged lines.
  const layouts: CsvLayout[] = [];
  let scanned = 0;
  for (const file of files) {
    options.signal?.throwIfAborted();
    layouts.push(
      await scanCsvLayout(file.absolute, {
        ...settings,
        ...(options.signal ? { signal: options.signal } : {}),
        onBytes: (b) => options.onProgress?.({ message: `checking ${file.label} (${Math.round((scanned + b) / 1e6)} MB)` }),
      }),
    );
    scanned += file.size;
  }
  let fields: FieldSpec[];
  let maps: Array<Map<string, string>>;
  if (options.tableSchema) {
    fields = fieldsFromSchema(options.tableSchema);
    maps = [];
    for (const [i, file] of files.entries()) {
      const columns = await csvRead(file, layouts[i]!, () => csvColumns(file.absolute, settings));
      maps.push(schemaColumnMap(fields, columns, settings, file, warnings));
    }
  } else {
    const inferred = await inferCsvFields(files, layouts, settings);
    ({ fields, maps } = inferred);
    warnings.renamed(inferred.renamed);
  }
  return {
    fields,
    warnings,
    async frame(file, index) {
      const layout = layouts[index]!;
      const dataRecords = layout.records - layout.blank.length;
      if (dataRecords === 0) return undefined;
      if (layout.raggedCount === dataRecords && dataRecords >= 10) {
        throw malformedFile(
          file.label,
          `no line has as many fields as the first line (${layout.width})`,
          'check csv.delimiter and csv.has_header',
        );
      }
      const line = lineNumber(layout);
      if (!line.exact) warnings.add(`${file.label}: many quoted fields span lines; __source_row counts records there, not lines`);
      const map = maps[index]!;
      const rowReason = lineReason(layout);
      if (layout.headerInvalidUtf8)
        warnings.add(`${file.label}: the header line is not valid UTF-8; its names were read with U+FFFD in place of the bad bytes`);
      return {
        raw: dropBlankLines(scanCsv(file.absolute, settings), layout),
        rawFor: (f) => {
          const column = map.get(f.name);
          return column === undefined ? undefined : { expr: pl.col(column), dtype: 'text' };
        },
        ...(rowReason ? { rowReason } : {}),
        sourceRow: line.expr,
        expectedRows: dataRecords,
        format: 'CSV',
        ...(layout.quoteProblemLine ? { quoteProblemLine: layout.quoteProblemLine } : {}),
      };
    },
  };
}

async function planParquet(files: InputFile[], options: Omit<StageFileOptions, 'scope'>): Promise<FilePlan> {
  const warnings = new Warnings();
  const columns = await Promise.all(files.map((f) => parquetColumns(f)));
  let fields: FieldSpec[];
  if (options.tableSchema) {
    fields = fieldsFromSchema(options.tableSchema);
  } else {
    const inferred = inferParquetFields(files, columns);
    fields = inferred.fields;
    warnings.renamed(inferred.renamed);
  }
  return {
    fields,
    warnings,
    async frame(file, index) {
      const { map, unused } = parquetColumnMap(file, fields, columns[index]!, Boolean(options.tableSchema));
      warnings.unused(unused, file.label);
      warnings.missing(
        fields.filter((f) => !map.has(f.name)).map((f) => f.name),
        file.label,
      );
      return {
        raw: pl.scanParquet(file.absolute, { rowIndexName: ROW_INDEX, rowIndexOffset: 1 }),
        rawFor: (f) => {
          const column = map.get(f.name);
          return column ? { expr: pl.col(column.name), dtype: column.dtype! } : undefined;
        },
        sourceRow: pl.col(ROW_INDEX),
        format: 'Parquet',
      };
    },
  };
}
