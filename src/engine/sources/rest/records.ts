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

/** One records array of a response, and the array element it sits in. */
export interface RecordGroup {
  /** The records, as the response holds them (the response's own array, not a copy). */
  records: unknown[];
  /** The element of the innermost `[*]` level above the records (`data[i]` for `data[*].results[*]`). */
  parent?: unknown;
  /** Where the array is, for messages: `data[0].results`. */
  at: string;
  /** The index in that array of `records[0]` (1 once a header row is taken off). */
  firstIndex?: number;
}

/** Where a record of a group is, for messages: `data[0].results[2]`. */
export const recordAt = (group: RecordGroup, index: number) => `${group.at}[${(group.firstIndex ?? 0) + index}]`;

/** The records of the groups as one array: the response's own array when there is one group. */
export const recordsOf = (groups: RecordGroup[]): unknown[] =>
  groups.length === 1 ? groups[0]!.records : groups.flatMap((g) => g.records);

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
export function locateRecords(body: unknown, recordsPath: string | undefined, url: string, options: LocateOptions = {}): RecordGroup[] {
  if (recordsPath === undefined || recordsPath === '') {
    if (Array.isArray(body)) return [{ records: body, at: '' }];
    throw new RecordsPathError(
      safeUrl(url),
      '',
      `records_path is not set and the response body is not an array (got ${describe(body)}); set records_path to the field holding the records`,
    );
  }
  const segments = parsePath(recordsPath);
  let branches: Branch[] = [{ value: body, at: '', flattened: false }];
  const groups: RecordGroup[] = [];
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
      if (last) {
        groups.push({ records: value, parent: branch.parent, at });
        return [];
      }
      return value.map((element, i) => ({ value: element, parent: element, at: `${at}[${i}]`, flattened: true }));
    });
  });
  return groups;
}

function notFound(url: string, recordsPath: string, at: string): RecordsPathError {
  return new RecordsPathError(safeUrl(url), recordsPath, at === recordsPath ? 'was not found' : `was not found (no ${at})`);
}

/** The records array of a page: at `recordsPath`, or the body itself when no path is set. */
export function extractRecords(body: unknown, recordsPath: string | undefined, url: string): unknown[] {
  return recordsOf(locateRecords(body, recordsPath, url));
}

/**
 * Each record with the `include_parent` columns copied from its parent element: `{ bucket_start:
 * starting_at }` sets `bucket_start` to the parent's `starting_at` (null when the parent has none).
 * A record that already has such a key is an error: its own value is never overwritten silently.
 */
export function withParentColumns(
  groups: RecordGroup[],
  includeParent: Record<string, string>,
  recordsPath: string,
  url: string,
): Array<Record<string, unknown>> {
  const columns = Object.entries(includeParent);
  return groups.flatMap((group) =>
    group.records.map((record, index) => {
      if (!isObject(record)) {
        throw new RecordsPathError(
          safeUrl(url),
          recordsPath,
          `yields ${kindOf(record)} at ${recordAt(group, index)}, not an object: include_parent adds columns to object records only`,
        );
      }
      if (group.parent === undefined) {
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
            `yields a record at ${recordAt(group, index)} that already has a key "${column}": include_parent would overwrite it; name the column differently`,
          );
        }
        // Defined, not assigned: a column named "__proto__" stays a plain own key.
        Object.defineProperty(out, column, {
          value: getPath(group.parent, path) ?? null,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }),
  );
}
