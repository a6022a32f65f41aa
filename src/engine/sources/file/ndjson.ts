import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { RecordBatch } from '../../stage/records.ts';
import type { InputFile } from './resolve.ts';

/**
 * NDJSON is read line by line in Node rather than by polars' scanJson, which stops the whole scan
 * at the first malformed line. Here a line that is not JSON becomes a quarantined row (with the
 * line's start in the reason) and the rest of the file still loads. Blank lines are skipped.
 */
const LINES_PER_BATCH = 10_000;
const SHOWN_CHARS = 80;

export async function* ndjsonBatches(
  files: InputFile[],
  options: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {},
): AsyncGenerator<RecordBatch> {
  let bytesDone = 0;
  for (const file of files) {
    const input = createReadStream(file.absolute, { encoding: 'utf8', ...(options.signal ? { signal: options.signal } : {}) });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let batch = emptyBatch(file.label);
    let lineNumber = 0;
    for await (const raw of lines) {
      lineNumber++;
      const line = lineNumber === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '') continue;
      let value: unknown = null;
      try {
        value = JSON.parse(line);
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err);
        batch.errors!.set(batch.records.length, `line is not valid JSON (${detail}): ${line.slice(0, SHOWN_CHARS)}`);
      }
      batch.records.push(value);
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

function emptyBatch(sourceFile: string): RecordBatch {
  return { sourceFile, records: [], rows: [], errors: new Map() };
}
