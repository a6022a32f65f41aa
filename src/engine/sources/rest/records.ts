import { RecordsPathError, safeUrl } from './errors.ts';

/** Read a dotted path (`data.items`) of a JSON value; undefined when any segment is missing. */
export function getPath(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(segment)) return undefined;
      current = current[Number(segment)];
    } else {
      if (!Object.hasOwn(current, segment)) return undefined;
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return current;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** The records array of a page: at `recordsPath`, or the body itself when no path is set. */
export function extractRecords(body: unknown, recordsPath: string | undefined, url: string): unknown[] {
  if (recordsPath === undefined || recordsPath === '') {
    if (Array.isArray(body)) return body;
    throw new RecordsPathError(
      safeUrl(url),
      '',
      `records_path is not set and the response body is not an array (got ${describe(body)}); set records_path to the field holding the records`,
    );
  }
  const found = getPath(body, recordsPath);
  if (found === undefined) throw new RecordsPathError(safeUrl(url), recordsPath, 'was not found');
  if (!Array.isArray(found)) throw new RecordsPathError(safeUrl(url), recordsPath, `is not an array (got ${describe(found)})`);
  return found;
}
