import pl from 'nodejs-polars';
import type { DataType } from 'nodejs-polars';
import type { FieldSpec } from '../../../backends/warehouse/port.ts';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { identifiersFor, matchColumn, widerType } from '../../staging/fields.ts';
import { fieldTypeOf } from '../../staging/typing.ts';
import { malformedFile, polarsMessage } from './errors.ts';
import type { InputFile } from './resolve.ts';

/**
 * Parquet keeps its own types; columns are cast to the schema's types (or to the warehouse type
 * their polars type maps to) with the same rules as text. Binary columns cannot be staged:
 * nodejs-polars cannot even describe them to JS, so they are refused unless a schema leaves them out.
 */
export interface ParquetColumn {
  name: string;
  /** Undefined for a type nodejs-polars cannot describe (Binary). */
  dtype: DataType | undefined;
}

export async function parquetColumns(file: InputFile): Promise<ParquetColumn[]> {
  let frame: pl.DataFrame;
  try {
    frame = await pl.scanParquet(file.absolute).limit(0).collect();
  } catch (err) {
    throw malformedFile(file.label, `cannot be read as Parquet: ${polarsMessage(err)}`);
  }
  return frame.columns.map((name) => {
    try {
      return { name, dtype: frame.getColumn(name).dtype };
    } catch {
      return { name, dtype: undefined };
    }
  });
}

function unsupported(file: InputFile, column: string, detail: string): ConvergenceError {
  return new ConvergenceError('SOURCE_UNSUPPORTED_TYPE', ExitCode.pipelineFailed, `${file.label}: column "${column}" ${detail}`, {
    suggestion: 'give the source a schema file without this column: columns not in the schema are skipped',
  });
}

/** Without a schema: the warehouse types the Parquet types map to, widened across files. */
export function inferParquetFields(files: InputFile[], columns: ParquetColumn[][]): { fields: FieldSpec[]; renamed: string[] } {
  const types = new Map<string, FieldSpec['type']>();
  const renamed = new Set<string>();
  columns.forEach((cols, i) => {
    const ids = identifiersFor(cols.map((c) => c.name));
    ids.renamed.forEach((r) => renamed.add(r));
    cols.forEach((col, j) => {
      const type = col.dtype ? fieldTypeOf(col.dtype) : undefined;
      if (!type)
        throw unsupported(files[i]!, col.name, `has a type the local engine cannot stage (${col.dtype ? String(col.dtype) : 'Binary'})`);
      const name = ids.names[j]!;
      const known = types.get(name);
      types.set(name, known ? widerType(known, type) : type);
    });
  });
  return { fields: [...types].map(([name, type]) => ({ name, type })), renamed: [...renamed] };
}

/** The raw column for each field in one file; fails on a needed column polars cannot describe. */
export function parquetColumnMap(
  file: InputFile,
  fields: FieldSpec[],
  columns: ParquetColumn[],
  bySchema: boolean,
): { map: Map<string, ParquetColumn>; unused: string[] } {
  const names = columns.map((c) => c.name);
  const ids = bySchema ? names : identifiersFor(names).names;
  const map = new Map<string, ParquetColumn>();
  for (const field of fields) {
    const name = bySchema ? matchColumn(field.name, names) : names[ids.indexOf(field.name)];
    const column = columns.find((c) => c.name === name);
    if (!column) continue;
    if (!column.dtype) throw unsupported(file, column.name, 'is binary, which the local engine cannot stage yet');
    map.set(field.name, column);
  }
  const used = new Set([...map.values()].map((c) => c.name));
  return { map, unused: names.filter((n) => !used.has(n)) };
}
