import { RecordsPathError, safeUrl } from './errors.ts';

/** Read a dotted path (`data.items`) of a JSON value; undefined when any segment is missing. */
export function getPath(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const segment of path.split('.')) current = child(current, segment);
  return current;
}

/** One key of an object, or one index of an array; undefined when absent. */
function child(value: unknown, key: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) return /^\d+$/.test(key) ? value[Number(key)] : undefined;
  return Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** The kind of a value as a sentence says it: "an object", "a number", "null". */
export function kindOf(value: unknown): string {
  const kind = describe(value);
  if (kind === 'null') return kind;
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}

/** A record where the response holds it, and the array element its records array sits in. */
export interface LocatedRecord {
  record: unknown;
  /** The element of the innermost `[*]` level above the records (`data[i]` for `data[*].results[*]`). */
  parent?: unknown;
  /** Where the record is, for messages: `data[0].results[2]`. */
  at: string;
}

interface PathSegment {
  key: string;
  /** `[*]`: each element of the array at this key. */
  each: boolean;
}

function parsePath(path: string): PathSegment[] {
  return path.split('.').map((part) => (part.endsWith('[*]') ? { key: part.slice(0, -3), each: true } : { key: part, each: false }));
}

interface Branch {
  value: unknown;
  parent?: unknown;
  at: string;
  /** Reached through a `[*]` level: an absent or null array below it holds no records. */
  flattened: boolean;
}

export interface LocateOptions {
  /** An object response without the records key holds none (Sheets omits `values` for an empty range). */
  missingIsEmpty?: boolean;
}

/**
 * The records of a response, at `recordsPath`: a dotted path whose levels marked `[*]` are
 * flattened (`data[*].results[*]`: each element of each `results` of each element of `data`).
 * The path ends at the records array; a trailing `[*]` says the same thing.
 *
 * Below a `[*]` level an absent or null array holds no records, as JSONPath (and so dlt) reads
 * `data[*].results[*]`: an element without `results` contributes nothing (Anthropic sends
 * `results: []` for an empty bucket; other APIs drop the key). Anything else that is not an
 * array is an error, and so is the path missing from the response before any `[*]` level.
 */
export function locateRecords(body: unknown, recordsPath: string | undefined, url: string, options: LocateOptions = {}): LocatedRecord[] {
  if (recordsPath === undefined || recordsPath === '') {
    if (Array.isArray(body)) return body.map((record, i) => ({ record, at: `[${i}]` }));
    throw new RecordsPathError(
      safeUrl(url),
      '',
      `records_path is not set and the response body is not an array (got ${describe(body)}); set records_path to the field holding the records`,
    );
  }
  const segments = parsePath(recordsPath);
  let branches: Branch[] = [{ value: body, at: '', flattened: false }];
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    branches = branches.flatMap((branch) => {
      const at = branch.at ? `${branch.at}.${segment.key}` : segment.key;
      const value = child(branch.value, segment.key);
      if (!last && !segment.each) {
        if (value === undefined && !branch.flattened) throw notFound(url, recordsPath, at);
        return [{ ...branch, value, at }];
      }
      if (value === undefined || (value === null && branch.flattened)) {
        if (branch.flattened || (options.missingIsEmpty && isObject(branch.value))) return [];
        throw notFound(url, recordsPath, at);
      }
      if (!Array.isArray(value)) {
        const where = at === recordsPath ? '' : ` at ${at}`;
        throw new RecordsPathError(safeUrl(url), recordsPath, `is not an array${where} (got ${describe(value)})`);
      }
      return value.map((element, i) => ({ value: element, parent: last ? branch.parent : element, at: `${at}[${i}]`, flattened: true }));
    });
  });
  return branches.map(({ value, parent, at }) => ({ record: value, parent, at }));
}

function notFound(url: string, recordsPath: string, at: string): RecordsPathError {
  return new RecordsPathError(safeUrl(url), recordsPath, at === recordsPath ? 'was not found' : `was not found (no ${at})`);
}

/** The records array of a page: at `recordsPath`, or the body itself when no path is set. */
export function extractRecords(body: unknown, recordsPath: string | undefined, url: string): unknown[] {
  return locateRecords(body, recordsPath, url).map((located) => located.record);
}

/**
 * Each record with the `include_parent` columns copied from its parent element: `{ bucket_start:
 * starting_at }` sets `bucket_start` to the parent's `starting_at` (null when the parent has none).
 * A record that already has such a key is an error: its own value is never overwritten silently.
 */
export function withParentColumns(
  located: LocatedRecord[],
  includeParent: Record<string, string>,
  recordsPath: string,
  url: string,
): Array<Record<string, unknown>> {
  const columns = Object.entries(includeParent);
  return located.map(({ record, parent, at }) => {
    if (!isObject(record)) {
      throw new RecordsPathError(
        safeUrl(url),
        recordsPath,
        `yields ${kindOf(record)} at ${at}, not an object: include_parent adds columns to object records only`,
      );
    }
    if (parent === undefined) {
      throw new RecordsPathError(
        safeUrl(url),
        recordsPath,
        'has no [*] level above the records: include_parent has no parent to copy from',
      );
    }
    const out: Record<string, unknown> = { ...record };
    for (const [column, path] of columns) {
      if (Object.hasOwn(out, column)) {
        throw new RecordsPathError(
          safeUrl(url),
          recordsPath,
          `yields a record at ${at} that already has a key "${column}": include_parent would overwrite it; name the column differently`,
        );
      }
      // Defined, not assigned: a column named "__proto__" stays a plain own key.
      Object.defineProperty(out, column, { value: getPath(parent, path) ?? null, enumerable: true, writable: true, configurable: true });
    }
    return out;
  });
}
