import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import type { RecordBatch } from '../../staging/records.ts';
import type { InputFile } from './resolve.ts';

/**
 * NDJSON is read line by line in Node rather than by polars' scanJson, which stops the whole scan
 * at the first malformed line. Here a line that is not JSON, or not UTF-8, becomes a quarantined
 * row (with the line's start in the reason) and the rest of the file still loads. Blank lines are
 * skipped. Lines are split as bytes, so a bad byte is found instead of silently becoming U+FFFD.
 */
const LINES_PER_BATCH = 10_000;
const SHOWN_CHARS = 80;
const LF = 0x0a;

export async function* ndjsonBatches(
  files: InputFile[],
  options: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {},
): AsyncGenerator<RecordBatch> {
  let bytesDone = 0;
  for (const file of files) {
    let batch = emptyBatch(file.label);
    let lineNumber = 0;
    for await (const bytes of byteLines(file.absolute, options.signal)) {
      lineNumber++;
      const parsed = parseLine(bytes, lineNumber === 1);
      if (parsed === undefined) continue;
      if ('error' in parsed) batch.errors!.set(batch.records.length, parsed.error);
      batch.records.push('error' in parsed ? null : parsed.value);
      batch.rows.push(lineNumber);
      if (batch.records.length >= LINES_PER_BATCH) {
        yield batch;
        batch = emptyBatch(file.label);
      }
    }
    if (batch.records.length > 0) yield batch;
    bytesDone += file.size;
    options.onBytes?.(bytesDone);
  }
}

/** One line's record, its problem, or undefined for a blank line. */
function parseLine(bytes: Buffer, first: boolean): { value: unknown } | { error: string } | undefined {
  if (!isUtf8(bytes)) return { error: 'line is not valid UTF-8 (is the file in another encoding, e.g. Windows-1252?)' };
  const text = bytes.toString('utf8');
  const line = first ? text.replace(/^\uFEFF/, '') : text;
  if (line.trim() === '') return undefined;
  try {
    // JSON.parse does not recurse, so a deeply nested line parses; the stager refuses its depth.
    return { value: JSON.parse(line) as unknown };
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { error: `line is not valid JSON (${detail}): ${line.slice(0, SHOWN_CHARS)}` };
  }
}

/** The lines of a file as bytes, without their line end (LF or CRLF). A long line is joined once, not per chunk. */
async function* byteLines(file: string, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  for await (const chunk of createReadStream(file, signal ? { signal } : {})) {
    const data = chunk as Buffer;
    let start = 0;
    for (let end = data.indexOf(LF); end >= 0; end = data.indexOf(LF, start)) {
      const piece = data.subarray(start, end);
      yield withoutCr(pending.length > 0 ? Buffer.concat([...pending, piece]) : piece);
      pending = [];
      start = end + 1;
    }
    if (start < data.length) pending.push(data.subarray(start));
  }
  if (pending.length > 0) yield withoutCr(Buffer.concat(pending));
}

const withoutCr = (line: Buffer) => (line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line);

function emptyBatch(sourceFile: string): RecordBatch {
  return { sourceFile, records: [], rows: [], errors: new Map() };
}
