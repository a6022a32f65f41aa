import type { CsvFilesSource, FieldSpec, FieldType } from '../../../backends/warehouse/port.ts';
import type { SourceConfig, TableSchemaFile } from '../../../domain/pipeline.ts';
import { fieldsFromSchema } from '../../staging/fields.ts';
import { scanCsvLayout } from './csv-layout.ts';
import { csvColumns, inferCsvFields, SAMPLE_ROWS, schemaColumnMap, type ColumnMap, type CsvSettings } from './csv.ts';
import { resolveInputFiles, type FileScope, type InputFile } from './resolve.ts';
import { Warnings } from './warnings.ts';

type FileSource = Extract<SourceConfig, { type: 'file' }>;

/**
 * The fast way in for local CSV on a warehouse that reads CSV itself (DuckDB): the engine does
 * what needs no pass over the data — finds and checks the files, reads their headers, takes the
 * columns from the schema (or infers them from the first rows, as staging does) — and the
 * warehouse reads and types the rows in its load transaction. When a file holds anything the
 * warehouse cannot take exactly as staging would, the load writes nothing and the step stages
 * the files instead (CsvNeedsStaging), so the rows, quarantine reasons and lines are the same
 * either way.
 */
export interface CsvFilesPlan {
  source: CsvFilesSource;
  files: InputFile[];
  bytes: number;
  notes: string[];
}

/** Why the fast way does not apply (the step then stages the files), or the plan. */
export async function planCsvInWarehouse(
  source: FileSource,
  options: { scope: FileScope; tableSchema?: TableSchemaFile; types: readonly FieldType[]; signal?: AbortSignal },
): Promise<CsvFilesPlan | { skip: string }> {
  const files = await resolveInputFiles(source.path, options.scope);
  const readable = files.filter((f) => f.size > 0);
  const settings: CsvSettings = { delimiter: source.csv?.delimiter ?? ',', hasHeader: source.csv?.has_header ?? true };
  const warnings = new Warnings();
  const columns: string[][] = [];
  for (const file of readable) {
    options.signal?.throwIfAborted();
    const names = await csvColumns(file.absolute, settings);
    // polars reads header bytes that are not UTF-8 as U+FFFD; staging says so in a note.
    if (names.some((n) => n.includes('\uFFFD'))) return { skip: `${file.label}: the header line is not valid UTF-8` };
    columns.push(names);
  }
  let fields: FieldSpec[];
  let maps: ColumnMap[];
  if (options.tableSchema) {
    fields = fieldsFromSchema(options.tableSchema);
    maps = readable.map((file, i) => schemaColumnMap(fields, columns[i]!, settings, file, warnings));
  } else {
    // Only the sample's layout: inference leaves ragged and blank lines out of the vote.
    const layouts = await Promise.all(
      readable.map((f) =>
        scanCsvLayout(f.absolute, { ...settings, stopAfterRecords: SAMPLE_ROWS, ...(options.signal ? { signal: options.signal } : {}) }),
      ),
    );
    const inferred = await inferCsvFields(readable, layouts, settings);
    ({ fields, maps } = inferred);
    warnings.renamed(inferred.renamed);
  }
  const unsupported = fields.find((f) => !options.types.includes(f.type));
  if (unsupported) return { skip: `column ${unsupported.name} is ${unsupported.type}` };
  const plannedFiles: CsvFilesSource['files'] = [];
  for (const [i, file] of readable.entries()) {
    const byColumn = new Map([...maps[i]!].map(([field, column]) => [column, field]));
    // Two fields read from one column: a reader hands each column out once.
    if (byColumn.size < maps[i]!.size) return { skip: `${file.label}: two columns of the schema match one column of the file` };
    plannedFiles.push({ path: file.absolute, columns: columns[i]!.map((c) => byColumn.get(c) ?? null) });
  }
  return {
    source: { kind: 'csv-files', files: plannedFiles, delimiter: settings.delimiter, hasHeader: settings.hasHeader, fields },
    files,
    bytes: readable.reduce((sum, f) => sum + f.size, 0),
    notes: warnings.list(),
  };
}
