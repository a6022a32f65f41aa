import type { Storage } from '@google-cloud/storage';
import { toConvergenceError } from '../../../backends/gcp/errors.ts';
import type { FieldSpec } from '../../../backends/warehouse/port.ts';
import { matchColumn } from '../../staging/fields.ts';
import { gcsUri } from './gcs-path.ts';
import type { SourceObject } from './gcs-objects.ts';

/**
 * What a warehouse that reads CSV objects itself needs to read them by header name, as the polars
 * path does: BigQuery reads CSV objects (load jobs and external tables alike) by column position.
 * Each object's header line is read (the first bytes only) and matched to the schema with the
 * polars path's rule (csv.ts schemaColumnMap); columns the schema lacks are not loaded and fields the header lacks are
 * staged as null, with the staged path's notes. Objects whose headers lay the fields out
 * differently cannot share one external table: the caller stages them through the engine instead.
 */
type CsvObjectLayout = { columns: Array<string | null>; notes: string[] } | { differs: string };

/** A header line longer than this is no header BigQuery should be given to map (and not worth reading on). */
const MAX_HEADER_BYTES = 64 * 1024;
const PARALLEL_READS = 8;

export async function csvObjectLayout(
  storage: Storage,
  objects: SourceObject[],
  fields: FieldSpec[],
  delimiter: string,
): Promise<CsvObjectLayout> {
  const lines = await firstLines(
    storage,
    objects.filter((o) => o.size > 0),
  );
  const empty = objects.filter((o) => o.size === 0).map((o) => gcsUri(o.bucket, o.name));
  const layouts: Array<{ uri: string; names: string[]; columns: Array<string | null> }> = [];
  for (const { object, line } of lines) {
    const uri = gcsUri(object.bucket, object.name);
    if (line === undefined) return { differs: `the first line of ${uri} is longer than ${MAX_HEADER_BYTES / 1024} KiB` };
    const names = headerNames(line, delimiter);
    layouts.push({ uri, names, columns: columnsOf(names, fields) });
  }
  const first = layouts[0];
  if (!first) return { columns: fields.map((f) => f.name), notes: emptyNote(empty) };
  const other = layouts.find((l) => JSON.stringify(l.columns) !== JSON.stringify(first.columns));
  if (other) {
    return {
      differs: `the header of ${other.uri} (${other.names.join(', ')}) differs from that of ${first.uri} (${first.names.join(', ')})`,
    };
  }
  const uris = layouts.map((l) => l.uri);
  const notes = [
    ...first.names
      .filter((_, i) => first.columns[i] === null)
      .map((name) => `column "${name}" is not in the schema and was not loaded (${shown(uris)})`),
    ...fields
      .filter((f) => !first.columns.includes(f.name))
      .map((f) => `schema column ${f.name} is missing from ${shown(uris)}: staged as null`),
    ...emptyNote(empty),
  ];
  return { columns: first.columns, notes };
}

/** Each header column's field, or null; a field two columns match is read from the first. */
function columnsOf(names: string[], fields: FieldSpec[]): Array<string | null> {
  const columns: Array<string | null> = names.map(() => null);
  for (const field of fields) {
    const column = matchColumn(field.name, names);
    if (column !== undefined) columns[names.indexOf(column)] = field.name;
  }
  return columns;
}

/** The first lines of many objects, a few reads at a time (a wildcard may match thousands), in object order. */
async function firstLines(storage: Storage, objects: SourceObject[]): Promise<Array<{ object: SourceObject; line: string | undefined }>> {
  const lines: Array<{ object: SourceObject; line: string | undefined }> = [];
  for (let i = 0; i < objects.length; i += PARALLEL_READS) {
    const batch = objects.slice(i, i + PARALLEL_READS);
    const read = await Promise.all(batch.map((object) => firstLine(storage, object)));
    batch.forEach((object, j) => lines.push({ object, line: read[j] }));
  }
  return lines;
}

/** The object's first line, read as a stream that stops there; undefined when it is too long. */
async function firstLine(storage: Storage, object: SourceObject): Promise<string | undefined> {
  const file = storage.bucket(object.bucket).file(object.name, { generation: Number(object.generation) });
  const chunks: Buffer[] = [];
  let newline = false;
  try {
    // A ranged read, given up at the first line end: the rest of the object is never read.
    for await (const chunk of file.createReadStream({ start: 0, end: MAX_HEADER_BYTES - 1, validation: false })) {
      const buffer = chunk as Buffer;
      const end = buffer.indexOf(0x0a);
      newline = end >= 0;
      chunks.push(newline ? buffer.subarray(0, end) : buffer);
      if (newline) break;
    }
  } catch (err) {
    throw toConvergenceError(err, {
      what: gcsUri(object.bucket, object.name),
      permission: 'storage.objects.get',
      role: 'roles/storage.objectViewer',
      resource: `gs://${object.bucket}`,
      api: 'storage.googleapis.com',
    });
  }
  if (!newline && object.size > MAX_HEADER_BYTES) return undefined;
  const bytes = Buffer.concat(chunks).subarray(0, MAX_HEADER_BYTES);
  return bytes
    .toString('utf8')
    .replace(/\r$/, '')
    .replace(/^\uFEFF/, '');
}

/** Header names as a CSV reader splits them: the delimiter outside quotes, "" a quote inside them. */
function headerNames(line: string, delimiter: string): string[] {
  const names: string[] = [];
  let name = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch !== '"') name += ch;
      else if (line[i + 1] === '"') name += line[++i];
      else quoted = false;
    } else if (ch === '"' && name === '') quoted = true;
    else if (ch === delimiter) {
      names.push(name);
      name = '';
    } else name += ch;
  }
  names.push(name);
  return names;
}

const shown = (uris: string[]) => (uris.length <= 3 ? uris.join(', ') : `${uris.slice(0, 3).join(', ')} and ${uris.length - 3} more`);

/** As the staged path notes an empty file: no error, but maybe a failed export. */
function emptyNote(empty: string[]): string[] {
  if (empty.length === 0) return [];
  return [
    `${empty.length === 1 ? 'file is' : `${empty.length} files are`} empty, no rows loaded from ${empty.length === 1 ? 'it' : 'them'}: ${shown(empty)}`,
  ];
}
