/**
 * `records_format: rows_with_header`: the records of a response are arrays of cells, and the first
 * one names the columns, as the Google Sheets values API answers (`values: [["Name", "Email"],
 * ["Ann", "ann@x"]]`).
 *
 * The header is the first row of the FIRST page of a fetch only: a paginated API of this shape
 * sends the header once, as Sheets does for a range that starts at row 1 and not for a later
 * range of the same sheet; every row of a later page is data. Sheets leaves out trailing empty
 * cells of a row (and trailing empty rows): a row shorter than the header gets null for the cells
 * it lacks. A row longer than the header has cells no column names, and is an error. Header
 * names are kept as written; staging turns names such as "Email Address" into column names (with
 * a warning saying so).
 */
import { RowsWithHeaderError, safeUrl } from './errors.ts';
import { kindOf, recordAt, type RecordGroup } from './records.ts';

/** A spreadsheet's letters for a 1-based column number: 1 → A, 27 → AA. */
function columnLetters(position: number): string {
  let letters = '';
  for (let n = position; n > 0; n = Math.floor((n - 1) / 26)) letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
  return letters;
}

const columnAt = (index: number) => `column ${index + 1} (${columnLetters(index + 1)})`;

function headerOf(row: unknown[], url: string): string[] {
  const names: string[] = [];
  row.forEach((cell, index) => {
    const name = typeof cell === 'string' || typeof cell === 'number' || typeof cell === 'boolean' ? String(cell) : '';
    if (name.trim() === '') {
      throw new RowsWithHeaderError(
        safeUrl(url),
        `the header row has no name for ${columnAt(index)}; give every column of the header a name`,
      );
    }
    const earlier = names.indexOf(name);
    if (earlier !== -1) {
      throw new RowsWithHeaderError(
        safeUrl(url),
        `the header row names ${columnAt(earlier)} and ${columnAt(index)} both "${name}"; column names must be unique`,
      );
    }
    names.push(name);
  });
  return names;
}

/** Turns the rows of each page of one fetch into records keyed by the header of its first page. */
export class HeaderRows {
  private header: string[] | undefined;
  /** Rows read so far, the header included: row numbers as the sheet counts them from row 1. */
  private rowNumber = 0;

  /** The groups of a page with their rows as records; the fetch's first row is taken off as the header. */
  records(groups: RecordGroup[], url: string): RecordGroup[] {
    return groups.map((group) => {
      const records: Array<Record<string, unknown>> = [];
      let firstIndex = group.firstIndex ?? 0;
      group.records.forEach((row, index) => {
        this.rowNumber += 1;
        if (!Array.isArray(row)) {
          throw new RowsWithHeaderError(
            safeUrl(url),
            `row ${this.rowNumber} (at ${recordAt(group, index)}) is ${kindOf(row)}, not an array of cells`,
          );
        }
        if (this.header === undefined) {
          this.header = headerOf(row, url);
          firstIndex += 1;
        } else records.push(this.recordOf(row, this.header, url));
      });
      return { ...group, records, firstIndex };
    });
  }

  private recordOf(row: unknown[], header: string[], url: string): Record<string, unknown> {
    if (row.length > header.length) {
      throw new RowsWithHeaderError(
        safeUrl(url),
        `row ${this.rowNumber} has ${row.length} cells but the header names ${header.length} columns; name every column in the header row`,
      );
    }
    // fromEntries defines own keys, so a header cell "__proto__" is a column like any other.
    return Object.fromEntries(header.map((name, index) => [name, index < row.length ? (row[index] ?? null) : null]));
  }
}
