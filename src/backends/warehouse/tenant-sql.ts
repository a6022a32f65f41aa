import { ConvergenceError, ExitCode } from '../../lib/errors.ts';

/**
 * What both warehouses say when tenant SQL is refused. The rule every adapter enforces: one query
 * statement (SELECT or WITH … SELECT) reading only tables of the tenant's own dataset.
 */
const TENANT_QUERY_RULE =
  "a transform is one query (SELECT or WITH … SELECT) over the tenant's own tables, named with {{ ref('table') }}; " +
  'no table functions, files, URLs, catalogs, settings or other datasets';

const TENANT_EXPRESSION_RULE =
  'a dq expression is one condition on a row of its table, e.g. "input_tokens >= 0" or "status != \'DELETED\'" ' +
  '(no subqueries, parameters, settings or other tables)';

export interface Place {
  origin?: string | undefined;
  line?: number | undefined;
}

/** "configs/acme/sql/x.sql:3", "configs/acme/sql/x.sql", "line 3" or "the query". */
export function placeOf(place: Place): string {
  if (place.origin) return place.line ? `${place.origin}:${place.line}` : place.origin;
  return place.line ? `line ${place.line}` : 'the query';
}

/** The tenant's SQL breaks the rule: exit 2, naming where and what was found. */
export function tenantSqlRefused(place: Place, reason: string, options: { expression?: boolean } = {}): ConvergenceError {
  return new ConvergenceError('TENANT_SQL_REFUSED', ExitCode.usage, `${placeOf(place)}: ${reason}`, {
    suggestion: options.expression ? TENANT_EXPRESSION_RULE : TENANT_QUERY_RULE,
    data: { origin: place.origin ?? null, line: place.line ?? null, reason },
  });
}

/** The warehouse's parser could not read the tenant's SQL at all. */
export function tenantSqlInvalid(place: Place, message: string, options: { expression?: boolean } = {}): ConvergenceError {
  return new ConvergenceError('TENANT_SQL_INVALID', ExitCode.usage, `${placeOf(place)}: ${message}`, {
    suggestion: options.expression ? TENANT_EXPRESSION_RULE : TENANT_QUERY_RULE,
    data: { origin: place.origin ?? null, line: place.line ?? null, reason: message },
  });
}

/** 1-based line of a UTF-8 byte offset into `text` (parsers report byte offsets). */
export function lineAtByte(text: string, byteOffset: number): number {
  const before = Buffer.from(text, 'utf8').subarray(0, Math.max(0, byteOffset)).toString('utf8');
  return before.split('\n').length;
}

/**
 * The first word of a statement, past blanks, comments and opening parentheses: used only to
 * name what a parser refused ("found a COPY statement"), never to decide anything.
 */
export function leadingWord(sql: string): { word: string; offset: number } | undefined {
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '(') i++;
    else if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else break;
  }
  let j = i;
  while (j < sql.length && /[A-Za-z_]/.test(sql[j]!)) j++;
  return j > i ? { word: sql.slice(i, j).toUpperCase(), offset: i } : undefined;
}

/** 1-based line of a character offset. */
export function lineAtChar(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

/** Identifiers compare like the warehouses compare them: ASCII case folded, nothing else. */
export function asciiLower(value: string): string {
  let out = '';
  for (const ch of value) out += ch >= 'A' && ch <= 'Z' ? String.fromCharCode(ch.charCodeAt(0) + 32) : ch;
  return out;
}
