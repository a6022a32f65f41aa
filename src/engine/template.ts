import { validationError } from '../lib/errors.ts';
import { formatDate, formatRfc3339, parseInstant } from './instants.ts';

/**
 * `{{ }}` templating of tenant files. Three forms: a variable (`{{ run_date }}`, `{{ cursor }}`,
 * a `--param` name), `{{ ref('table') }}` and `{{ secret('name') }}`. A variable may go through
 * one filter (`{{ window_start | epoch_ms }}`, see FILTERS). In SQL a variable never becomes
 * text: it turns into a bound `@name` parameter (a quoted `'{{ x }}'` included), so a parameter
 * value cannot change the statement.
 */
const TAG = /('?)\{\{\s*(?:(ref|secret)\(\s*(['"])([^'"]*)\3\s*\)|([A-Za-z_][A-Za-z0-9_]*))(?:\s*\|\s*([A-Za-z_][A-Za-z0-9_]*))?\s*\}\}\1/g;

/**
 * Filters turn a date (YYYY-MM-DD, 00:00 UTC) or an RFC 3339 timestamp into the spelling an API
 * wants. The numeric ones make a JSON number of a body value that is nothing but their tag.
 */
const FILTERS = {
  epoch_ms: { numeric: true, apply: (instant: Date) => String(instant.getTime()) },
  epoch_s: { numeric: true, apply: (instant: Date) => String(Math.floor(instant.getTime() / 1000)) },
  rfc3339: { numeric: false, apply: formatRfc3339 },
  date: { numeric: false, apply: formatDate },
} as const;

type FilterName = keyof typeof FILTERS;
export const FILTER_NAMES = Object.keys(FILTERS) as FilterName[];

const isFilter = (name: string): name is FilterName => Object.hasOwn(FILTERS, name);

interface TemplateSite {
  /** File the text came from, for messages. */
  file: string;
}

/** One `{{ }}` tag as the pattern matched it. */
interface Tag {
  quote: string;
  fn: 'ref' | 'secret' | undefined;
  arg: string | undefined;
  name: string | undefined;
  filter: string | undefined;
  index: number;
}

/** Calls `replace` for every tag of `text`, with the tag's parts. */
function replaceTags(text: string, replace: (tag: Tag) => string): string {
  return text.replace(TAG, (...m: unknown[]) =>
    replace({
      quote: m[1] as string,
      fn: m[2] as Tag['fn'],
      arg: m[4] as string | undefined,
      name: m[5] as string | undefined,
      filter: m[6] as string | undefined,
      index: m[7] as number,
    }),
  );
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

function unknownVariable(site: TemplateSite, text: string, index: number, name: string, known: string[]): Error {
  return validationError(`${site.file}:${lineOf(text, index)}: unknown template variable {{ ${name} }}`, {
    suggestion: `available: ${known.length ? known.join(', ') : '(none)'}; pass others with --param ${name}=VALUE`,
  });
}

/** The value of `name` through `filter`: refused with the file and line when the filter or the value is not one it knows. */
function filtered(site: TemplateSite, text: string, tag: Tag, value: string): string {
  const where = `${site.file}:${lineOf(text, tag.index)}`;
  const filter = tag.filter!;
  if (!isFilter(filter)) {
    throw validationError(`${where}: unknown template filter "${filter}" in {{ ${tag.name} | ${filter} }}`, {
      suggestion: `available filters: ${FILTER_NAMES.join(', ')}`,
    });
  }
  const instant = parseInstant(value);
  if (!instant) {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    throw validationError(
      `${where}: {{ ${tag.name} | ${filter} }}: ${JSON.stringify(shown)} is not a date (YYYY-MM-DD) or an RFC 3339 timestamp`,
      { suggestion: tag.name === 'cursor' ? 'set incremental.initial to a date, e.g. initial: "2025-01-01"' : undefined },
    );
  }
  return FILTERS[filter].apply(instant);
}

export interface SqlTemplateInput extends TemplateSite {
  variables: Record<string, string>;
  ref(table: string): string;
}

/** Renders a transform: refs become qualified tables, variables become `@name` parameters. */
export function renderSql(text: string, input: SqlTemplateInput): { sql: string; params: Record<string, string>; refs: string[] } {
  const params: Record<string, string> = {};
  const refs: string[] = [];
  const sql = replaceTags(text, ({ quote, fn, arg, name, filter, index }) => {
    const where = `${input.file}:${lineOf(text, index)}`;
    if (fn === 'secret') throw validationError(`${where}: secrets cannot be used in SQL`);
    // A filtered value would be a second parameter the SQL cannot see the origin of; SQL converts its own values.
    if (filter !== undefined) {
      throw validationError(`${where}: template filters such as | ${filter} are not available in SQL`, {
        suggestion: `use {{ ${name ?? arg} }} and convert it in SQL, e.g. CAST(@run_date AS DATE) or CAST(@run_date AS TIMESTAMP)`,
      });
    }
    if (fn === 'ref') {
      refs.push(arg!);
      return `${quote}${input.ref(arg!)}${quote}`;
    }
    if (!Object.hasOwn(input.variables, name!)) throw unknownVariable(input, text, index, name!, Object.keys(input.variables));
    params[name!] = input.variables[name!]!;
    return `@${name}`;
  });
  return { sql, params, refs };
}

export interface TextTemplateInput extends TemplateSite {
  variables: Record<string, string>;
  secret?(name: string): string;
}

/** Renders a value such as a URL parameter or header: plain substitution, filters applied. */
export function renderText(text: string, input: TextTemplateInput): string {
  return replaceTags(text, (tag) => {
    const { quote, fn, arg, name, filter, index } = tag;
    const where = `${input.file}:${lineOf(text, index)}`;
    if (fn === 'ref') throw validationError(`${where}: ref() only works in SQL`);
    if (fn === 'secret') {
      if (filter !== undefined) throw validationError(`${where}: filters apply to variables, not to secret('${arg}')`);
      if (!input.secret) throw validationError(`${where}: secrets are not available here`);
      return `${quote}${input.secret(arg!)}${quote}`;
    }
    if (!Object.hasOwn(input.variables, name!)) throw unknownVariable(input, text, index, name!, Object.keys(input.variables));
    const value = input.variables[name!]!;
    return `${quote}${filter === undefined ? value : filtered(input, text, tag, value)}${quote}`;
  });
}

/** A JSON value as YAML writes it (a request body). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A text that is one tag and nothing else, through a numeric filter (`"{{ window_start | epoch_ms }}"`). */
function isNumericTag(text: string): boolean {
  const matches = [...text.trim().matchAll(TAG)];
  return matches.length === 1 && matches[0]![0] === text.trim() && FILTERS[matches[0]![6] as FilterName]?.numeric === true;
}

/**
 * Renders every string of a JSON value (a POST body) as renderText does; keys stay as written. A
 * string that is only a numeric filter's tag becomes a JSON number, as APIs taking epoch
 * milliseconds want (Cursor's Admin API: `"startDate": 1735689600000`).
 */
export function renderJson(value: JsonValue, input: TextTemplateInput): JsonValue {
  if (typeof value === 'string') {
    const rendered = renderText(value, input);
    return isNumericTag(value) ? Number(rendered) : rendered;
  }
  if (Array.isArray(value)) return value.map((item) => renderJson(item, input));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renderJson(item, input)]));
  }
  return value;
}

/** Names used by a text: variables (filtered or not), secrets and refs, for validation and dry runs. */
export function templateNames(text: string): { variables: string[]; secrets: string[]; refs: string[] } {
  const out = { variables: new Set<string>(), secrets: new Set<string>(), refs: new Set<string>() };
  for (const m of text.matchAll(TAG)) {
    if (m[2] === 'ref') out.refs.add(m[4]!);
    else if (m[2] === 'secret') out.secrets.add(m[4]!);
    else out.variables.add(m[5]!);
  }
  return { variables: [...out.variables], secrets: [...out.secrets], refs: [...out.refs] };
}

/** The tables a transform's `{{ ref('x') }}` tags name, each once, in order of first mention. */
export function sqlRefs(text: string): string[] {
  const refs = new Set<string>();
  replaceTags(text, (tag) => {
    if (tag.fn === 'ref') refs.add(tag.arg!);
    return '';
  });
  return [...refs];
}

/** The filters a text uses that do not exist, each with its tag, for validation. */
export function unknownFilters(text: string): Array<{ tag: string; filter: string }> {
  return [...text.matchAll(TAG)]
    .filter((m) => m[6] !== undefined && !isFilter(m[6]))
    .map((m) => ({ tag: m[0].replace(/^'|'$/g, ''), filter: m[6]! }));
}
