import { open } from 'node:fs/promises';
import { Utf8Stream } from './utf8.ts';

/**
 * One quick pass over a CSV file's bytes, before polars reads it, to learn what polars cannot
 * report: which records have the wrong number of fields (polars truncates or pads them silently,
 * or refuses the whole file), which lines are blank, which hold bytes that are not UTF-8 (polars
 * would refuse the whole file), and on which line each record starts (a quoted field may span
 * lines). Record boundaries follow RFC 4180 as polars applies it: a quote
 * opens a quoted field only at the start of a field, and "" inside one is a literal quote.
 */
export interface CsvLayout {
  /** Fields of the first record (the header when there is one): the expected width. */
  width: number;
  /** Data records, blank lines included, numbered as polars' row index numbers them (from 0). */
  records: number;
  /** Line of the first data record (1-based, header lines counted). */
  firstLine: number;
  /** Data records whose field count is not `width`, grouped by their count. */
  ragged: Map<number, number[]>;
  raggedCount: number;
  /** Data records that are empty lines. */
  blank: number[];
  /** Data records with bytes that are not valid UTF-8. */
  invalidUtf8: number[];
  /** The header line has bytes that are not valid UTF-8. */
  headerInvalidUtf8: boolean;
  /** [record, extra]: from this record on, line = firstLine + record + extra (records after a multi-line one). */
  shifts: Array<[record: number, extra: number]>;
  /** First line where a quote appears inside an unquoted field or after a closing quote, or a quote never closes. */
  quoteProblemLine?: number;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

// Parser states.
const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3;

export async function scanCsvLayout(
  file: string,
  options: {
    delimiter: string;
    hasHeader: boolean;
    signal?: AbortSignal;
    onBytes?: (bytes: number) => void;
    /** Stop once this many data records are read (a sample's layout, for type inference). */
    stopAfterRecords?: number;
  },
): Promise<CsvLayout> {
  const delimiter = options.delimiter.charCodeAt(0);
  const layout: CsvLayout = {
    width: -1,
    records: 0,
    firstLine: 1,
    ragged: new Map(),
    raggedCount: 0,
    blank: [],
    invalidUtf8: [],
    headerInvalidUtf8: false,
    shifts: [],
  };
  const utf8 = new Utf8Stream();
  let recordInvalid = false;
  let state = FIELD_START;
  let fields = 1;
  let recordBytes = 0;
  let line = 1;
  let recordLine = 1;
  let headerPending = options.hasHeader;
  let extra = 0;
  let quoteOpened = 0;

  const endRecord = () => {
    if (layout.width < 0) layout.width = fields;
    if (headerPending) {
      headerPending = false;
      layout.firstLine = line + 1;
      layout.headerInvalidUtf8 = recordInvalid;
    } else {
      const index = layout.records++;
      if (recordInvalid) layout.invalidUtf8.push(index);
      if (recordBytes === 0) layout.blank.push(index);
      else if (fields !== layout.width) {
        const group = layout.ragged.get(fields) ?? [];
        if (group.length === 0) layout.ragged.set(fields, group);
        group.push(index);
        layout.raggedCount++;
      }
      const shift = recordLine - layout.firstLine - index;
      if (shift !== extra) {
        extra = shift;
        layout.shifts.push([index, shift]);
      }
    }
    state = FIELD_START;
    fields = 1;
    recordBytes = 0;
    recordLine = line + 1;
    recordInvalid = false;
  };
  const problem = () => {
    layout.quoteProblemLine ??= line;
  };

  // One reused buffer: streaming chunks would leave ~file-size of garbage for the GC to find.
  const chunk = Buffer.allocUnsafe(1 << 20);
  const handle = await open(file, 'r');
  let bytes = 0;
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      if (options.stopAfterRecords !== undefined && layout.records >= options.stopAfterRecords) break;
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      // Almost every chunk is valid UTF-8 (checked natively); one that is not is walked byte by byte.
      const utf8Valid = utf8.chunkIsValid(chunk.subarray(0, bytesRead));
      // Most files have no quotes at all: then only delimiters and line ends matter.
      const quoteFree = utf8Valid && state !== QUOTED && state !== QUOTE_IN_QUOTED && chunk.subarray(0, bytesRead).indexOf(QUOTE) < 0;
      for (let i = 0; quoteFree && i < bytesRead; i++) {
        const b = chunk[i]!;
        if (b === delimiter) {
          fields++;
          recordBytes++;
        } else if (b === LF) {
          endRecord();
          line++;
        } else if (b !== CR) recordBytes++;
      }
      if (quoteFree) state = bytesRead > 0 && chunk[bytesRead - 1] !== delimiter && chunk[bytesRead - 1] !== LF ? UNQUOTED : FIELD_START;
      for (let i = 0; !quoteFree && i < bytesRead; i++) {
        const b = chunk[i]!;
        if (!utf8Valid && !utf8.step(b)) recordInvalid = true;
        if (state === QUOTED) {
          if (b === QUOTE) state = QUOTE_IN_QUOTED;
          else if (b === LF) line++;
          recordBytes++;
          continue;
        }
        if (state === QUOTE_IN_QUOTED) {
          if (b === QUOTE) {
            state = QUOTED;
            recordBytes++;
            continue;
          }
          if (b !== delimiter && b !== LF && b !== CR) problem();
          state = UNQUOTED;
        }
        if (b === LF) {
          endRecord();
          line++;
        } else if (b === delimiter) {
          fields++;
          recordBytes++;
          state = FIELD_START;
        } else if (b !== CR) {
          if (b === QUOTE) {
            if (state === FIELD_START) {
              state = QUOTED;
              quoteOpened = line;
            } else problem();
          } else state = UNQUOTED;
          recordBytes++;
        }
      }
      bytes += bytesRead;
      options.onBytes?.(bytes);
    }
  } finally {
    await handle.close();
  }
  if (state === QUOTED) layout.quoteProblemLine ??= quoteOpened;
  // The file ends inside a multi-byte character: the last record is cut.
  if (utf8.open) recordInvalid = true;
  if (recordBytes > 0 || fields > 1) endRecord();
  if (layout.width < 0) layout.width = 0;
  return layout;
}
