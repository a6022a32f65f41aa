/**
 * BigQuery GoogleSQL -> DuckDB SQL, for the subset the project writes (and a little more): enough
 * that a query which runs here would parse and mean the same in BigQuery. It is a token rewrite,
 * not a parser: literals, identifiers, parameters, comments and a few function and type names are
 * translated; everything else is passed through because the two dialects share it.
 */
import { FakeError } from './errors.ts';

export interface TableRef {
  project: string | undefined;
  dataset: string;
  table: string;
}

export interface TranslateContext {
  project: string;
  /** Bound parameters: lower-cased name -> SQL expression that reads the value. */
  params: Map<string, string>;
  /** Script variables: lower-cased name -> SQL expression that reads the value. */
  variables?: Map<string, string>;
  /** System variables such as @@row_count: lower-cased name without @@ -> SQL literal. */
  systemVariables?: Map<string, string>;
  /**
   * The `_FILE_NAME` pseudo-column of a job's external table: the SQL that reads it, given the
   * qualifier written before it (`raw` of raw._FILE_NAME), if any. Without it the name is a plain word.
   */
  fileName?: (qualifier: string | undefined) => string;
}

export interface Translated {
  sql: string;
  tables: TableRef[];
}

/** Type names that differ; the rest (DATE, JSON, TIME, INTERVAL) are shared. */
const TYPES: Record<string, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  INTEGER: 'BIGINT',
  FLOAT64: 'DOUBLE',
  FLOAT: 'DOUBLE',
  BOOL: 'BOOLEAN',
  BYTES: 'BLOB',
  NUMERIC: 'DECIMAL(38,9)',
  BIGNUMERIC: 'DECIMAL(38,9)',
  DECIMAL: 'DECIMAL(38,9)',
  TIMESTAMP: 'TIMESTAMPTZ',
  DATETIME: 'TIMESTAMP',
};

/** Functions whose name differs (arguments are the same). */
const FUNCTIONS: Record<string, string> = {
  COUNTIF: 'bq_countif',
  REGEXP_CONTAINS: 'regexp_matches',
  TO_JSON_STRING: 'bq_to_json_string',
  PARSE_JSON: 'bq_parse_json',
  SAFE_CAST: 'TRY_CAST',
  LOGICAL_OR: 'bool_or',
  LOGICAL_AND: 'bool_and',
  CURRENT_TIMESTAMP: 'get_current_timestamp',
  CURRENT_DATE: 'today',
  GENERATE_UUID: 'bq_generate_uuid',
  TIMESTAMP_SUB: 'bq_minus',
  DATE_SUB: 'bq_minus',
  TIMESTAMP_ADD: 'bq_plus',
  DATE_ADD: 'bq_plus',
  SAFE_DIVIDE: 'bq_safe_divide',
  IFNULL: 'coalesce',
  // PERCENTILE_CONT(x, f) OVER (...): DuckDB's window quantile takes the same arguments.
  PERCENTILE_CONT: 'quantile_cont',
  FORMAT_TIMESTAMP: 'bq_format_timestamp',
};

/** DuckDB macros the translated SQL relies on; run once per database. */
export const MACROS = [
  // DuckDB's count_if is NULL over no rows; BigQuery's COUNTIF is 0.
  'CREATE OR REPLACE MACRO bq_countif(x) AS count(CASE WHEN x THEN 1 END)',
  'CREATE OR REPLACE MACRO bq_to_json_string(x) AS CAST(to_json(x) AS VARCHAR)',
  'CREATE OR REPLACE MACRO bq_generate_uuid() AS CAST(uuid() AS VARCHAR)',
  'CREATE OR REPLACE MACRO bq_minus(a, b) AS a - b',
  'CREATE OR REPLACE MACRO bq_plus(a, b) AS a + b',
  'CREATE OR REPLACE MACRO bq_safe_divide(a, b) AS CASE WHEN b = 0 THEN NULL ELSE a / b END',
  // PARSE_JSON's default wide_number_mode 'exact' fails on a number FLOAT64 cannot hold exactly;
  // the fake's test for one is more than 17 significant digits in a number outside strings.
  `CREATE OR REPLACE MACRO bq_wide_json_number(x) AS regexp_matches(regexp_replace(x, '"(\\\\.|[^"\\\\])*"', '""', 'g'), '([0-9]\\.?){18,}')`,
  "CREATE OR REPLACE MACRO bq_parse_json(x, wide_number_mode := 'exact') AS CASE WHEN wide_number_mode = 'exact' AND bq_wide_json_number(x) THEN error('Invalid input to PARSE_JSON: a number cannot be stored in JSON without loss of precision (wide_number_mode exact)') ELSE json(x) END",
  // SAFE.PARSE_JSON: NULL instead of an error, for malformed text and for a wide number in exact mode.
  "CREATE OR REPLACE MACRO bq_safe_parse_json(x, wide_number_mode := 'exact') AS CASE WHEN NOT json_valid(x) THEN NULL WHEN wide_number_mode = 'exact' AND bq_wide_json_number(x) THEN NULL ELSE json(x) END",
  // FORMAT_TIMESTAMP(format, ts, zone): %E6S is seconds with six fractional digits.
  "CREATE OR REPLACE MACRO bq_format_timestamp(fmt, ts, zone) AS strftime(timezone(zone, ts), replace(fmt, '%E6S', '%S.%f'))",
];

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteString = (value: string) => `'${value.replace(/'/g, "''")}'`;
const isWordStart = (ch: string | undefined) => ch !== undefined && /[A-Za-z_]/.test(ch);
const isWord = (ch: string | undefined) => ch !== undefined && /[A-Za-z0-9_]/.test(ch);

const ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  b: '\b',
  f: '\f',
  v: '\v',
  a: '\x07',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '`': '`',
  '?': '?',
};

function position(sql: string, index: number): string {
  const before = sql.slice(0, index).split('\n');
  return `[${before.length}:${(before.at(-1)?.length ?? 0) + 1}]`;
}

/** Reads a BigQuery string literal starting at `i` (after any r/b prefix); returns its value and end. */
function readString(sql: string, i: number, raw: boolean): { value: string; end: number } {
  const quote = sql[i]!;
  const triple = sql.startsWith(quote.repeat(3), i);
  const closing = triple ? quote.repeat(3) : quote;
  let j = i + closing.length;
  let value = '';
  while (j < sql.length) {
    if (sql.startsWith(closing, j)) return { value, end: j + closing.length };
    const ch = sql[j]!;
    if (ch === '\\' && !raw) {
      const next = sql[j + 1] ?? '';
      if (next === 'x' || next === 'X') {
        value += String.fromCharCode(parseInt(sql.slice(j + 2, j + 4), 16));
        j += 4;
      } else if (next === 'u' || next === 'U') {
        const width = next === 'u' ? 4 : 8;
        value += String.fromCodePoint(parseInt(sql.slice(j + 2, j + 2 + width), 16));
        j += 2 + width;
      } else if (/[0-7]/.test(next)) {
        value += String.fromCharCode(parseInt(sql.slice(j + 1, j + 4), 8));
        j += 4;
      } else if (next in ESCAPES) {
        value += ESCAPES[next];
        j += 2;
      } else {
        throw new FakeError(400, 'invalidQuery', `Syntax error: Illegal escape sequence: \\${next} at ${position(sql, j)}`);
      }
      continue;
    }
    if (!triple && ch === '\n') throw new FakeError(400, 'invalidQuery', `Syntax error: Unclosed string literal at ${position(sql, i)}`);
    value += ch;
    j++;
  }
  throw new FakeError(400, 'invalidQuery', `Syntax error: Unclosed string literal at ${position(sql, i)}`);
}

/** Next non-space character at or after `i`. */
function peek(sql: string, i: number): string | undefined {
  while (i < sql.length && /\s/.test(sql[i]!)) i++;
  return sql[i];
}

/** Last non-space character already written. */
function lastChar(out: string): string | undefined {
  const trimmed = out.trimEnd();
  return trimmed[trimmed.length - 1];
}

export function translate(sql: string, ctx: TranslateContext): Translated {
  const tables: TableRef[] = [];
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
      out += ' ';
      continue;
    }
    if (ch === '#') {
      while (i < sql.length && sql[i] !== '\n') i++;
      out += ' ';
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) throw new FakeError(400, 'invalidQuery', `Syntax error: Unclosed comment at ${position(sql, i)}`);
      i = end + 2;
      out += ' ';
      continue;
    }
    if (/[rRbB]/.test(ch) && !isWord(sql[i - 1])) {
      // String prefixes: r'raw', b'bytes', rb'..', br'..'.
      const prefix = /^([rRbB]{1,2})(?=['"])/.exec(sql.slice(i, i + 3));
      if (prefix) {
        const raw = /r/i.test(prefix[1]!);
        const bytes = /b/i.test(prefix[1]!);
        const { value, end } = readString(sql, i + prefix[1]!.length, raw);
        out += bytes ? `encode(${quoteString(value)})` : quoteString(value);
        i = end;
        continue;
      }
    }
    if (ch === "'" || ch === '"') {
      const { value, end } = readString(sql, i, false);
      out += quoteString(value);
      i = end;
      continue;
    }
    if (ch === '`') {
      const end = sql.indexOf('`', i + 1);
      if (end === -1) throw new FakeError(400, 'invalidQuery', `Syntax error: Unclosed identifier literal at ${position(sql, i)}`);
      const body = sql.slice(i + 1, end);
      i = end + 1;
      const parts = body.split('.');
      if (parts.length === 1) {
        out += quoteIdent(body);
      } else if (parts.length === 2 || parts.length === 3) {
        const [project, dataset, table] = parts.length === 3 ? parts : [undefined, ...parts];
        tables.push({ project, dataset: dataset!, table: table! });
        out += `${quoteIdent(dataset!)}.${quoteIdent(table!)}`;
      } else {
        throw new FakeError(400, 'invalidQuery', `Invalid table name: ${body}`);
      }
      continue;
    }
    if (ch === '=' && next === '>') {
      // A named argument (wide_number_mode => 'round'), as DuckDB macros take it.
      out += ':=';
      i += 2;
      continue;
    }
    if (ch === '@' && next === '@') {
      const m = /^@@([A-Za-z_][A-Za-z0-9_.]*)/.exec(sql.slice(i));
      const name = m?.[1]?.toLowerCase() ?? '';
      const value = ctx.systemVariables?.get(name);
      if (value === undefined) throw new FakeError(400, 'invalidQuery', `Unrecognized name: @@${name} at ${position(sql, i)}`);
      out += value;
      i += (m?.[0] ?? '').length;
      continue;
    }
    if (ch === '@') {
      const m = /^@([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i));
      if (!m) throw new FakeError(400, 'invalidQuery', `Syntax error: Unexpected "@" at ${position(sql, i)}`);
      const value = ctx.params.get(m[1]!.toLowerCase());
      if (value === undefined) throw new FakeError(400, 'invalidQuery', `Query parameter '${m[1]}' not found at ${position(sql, i)}`);
      out += value;
      i += m[0].length;
      continue;
    }
    if (isWordStart(ch) && !isWord(sql[i - 1])) {
      let j = i;
      while (isWord(sql[j])) j++;
      const word = sql.slice(i, j);
      const upper = word.toUpperCase();
      const afterDot = lastChar(out) === '.';
      const call = peek(sql, j) === '(';
      i = j;
      if (upper === 'SAFE' && sql[j] === '.') {
        // SAFE.<function>: NULL instead of an error. The fake knows it for PARSE_JSON only.
        const fn = /^\.([A-Za-z_]\w*)\s*\(/.exec(sql.slice(j));
        if (fn?.[1]?.toUpperCase() !== 'PARSE_JSON')
          throw new FakeError(400, 'invalidQuery', `SAFE.${fn?.[1] ?? ''} is not supported by this fake at ${position(sql, j)}`);
        out += 'bq_safe_parse_json';
        i = j + 1 + fn[1]!.length;
      } else if (upper === '_FILE_NAME' && !call && ctx.fileName) {
        const qualified = afterDot ? /("(?:[^"]|"")+"|[A-Za-z_]\w*)\s*\.\s*$/.exec(out) : null;
        if (qualified) out = out.slice(0, qualified.index);
        out += ctx.fileName(qualified?.[1]);
      } else if (!afterDot && ctx.variables?.has(word.toLowerCase())) {
        out += ctx.variables.get(word.toLowerCase());
      } else if (!afterDot && word === ctx.project && sql[j] === '.') {
        // An unquoted project prefix: DuckDB would read it as a catalog.
        i = j + 1;
      } else if (!afterDot && call && FUNCTIONS[upper]) {
        out += FUNCTIONS[upper];
      } else if (!afterDot && !call && TYPES[upper]) {
        out += TYPES[upper];
      } else if (!afterDot && call && (upper === 'NUMERIC' || upper === 'BIGNUMERIC')) {
        out += 'DECIMAL';
      } else {
        out += word;
      }
      continue;
    }
    out += ch;
    i++;
  }
  return { sql: rewriteStructs(out), tables };
}

/** Skips a DuckDB-quoted region (already translated text) starting at i; returns the index after it. */
function skipQuoted(sql: string, i: number): number {
  const quote = sql[i]!;
  let j = i + 1;
  while (j < sql.length) {
    if (sql[j] === quote) {
      if (sql[j + 1] === quote) j += 2;
      else return j + 1;
    } else j++;
  }
  return j;
}

/** Splits on top-level commas, respecting parentheses and quotes. */
export function splitTopLevel(text: string, separator = ','): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length;) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      i = skipQuoted(text, i);
      continue;
    }
    if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') depth--;
    else if (depth === 0 && text.startsWith(separator, i)) {
      parts.push(text.slice(start, i));
      start = i + separator.length;
      i += separator.length;
      continue;
    }
    i++;
  }
  parts.push(text.slice(start));
  return parts;
}

/** Index of the parenthesis closing the one at `open`. */
export function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length;) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      i = skipQuoted(text, i);
      continue;
    }
    if (ch === '(') depth++;
    else if (ch === ')') {
      depth--;
      if (depth === 0) return i;
    }
    i++;
  }
  return -1;
}

/** STRUCT(expr AS name, col) -> struct_pack(name := expr, col := col). */
function rewriteStructs(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = skipQuoted(sql, i);
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    const m = /^STRUCT\s*\(/i.exec(sql.slice(i));
    if (m && !isWord(sql[i - 1])) {
      const open = i + m[0].length - 1;
      const close = closingParen(sql, open);
      if (close === -1) throw new FakeError(400, 'invalidQuery', 'Syntax error: unbalanced parentheses in STRUCT');
      const items = splitTopLevel(rewriteStructs(sql.slice(open + 1, close))).map((item, index) => {
        const pieces = splitTopLevel(item, ' AS ').length > 1 ? splitTopLevel(item, ' AS ') : splitTopLevel(item, ' as ');
        const expr = pieces.length > 1 ? pieces.slice(0, -1).join(' AS ').trim() : item.trim();
        let name =
          pieces.length > 1 ? pieces.at(-1)!.trim() : (/("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)$/.exec(expr)?.[1] ?? `_field_${index + 1}`);
        if (!name.startsWith('"')) name = quoteIdent(name);
        return `${name} := ${expr}`;
      });
      out += `struct_pack(${items.join(', ')})`;
      i = close + 1;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

/** Splits a script on top-level semicolons (outside literals, identifiers and comments). */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if ((ch === '-' && next === '-') || ch === '#') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      current += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? sql.length : end + 2;
      current += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === "'" || ch === '"') {
      const raw = /[rR]/.test(sql[i - 1] ?? '') && !isWord(sql[i - 2]);
      const { end } = readString(sql, i, raw);
      current += sql.slice(i, end);
      i = end;
      continue;
    }
    if (ch === '`') {
      const end = sql.indexOf('`', i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      current += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === ';') {
      statements.push(current);
      current = '';
      i++;
      continue;
    }
    current += ch;
    i++;
  }
  statements.push(current);
  return statements.map((s) => s.trim()).filter((s) => stripComments(s).trim().length > 0);
}

/** The statement without comments, for keyword checks. */
export function stripComments(sql: string): string {
  return sql
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(--|#)[^\n]*/g, ' ')
    .trim();
}
