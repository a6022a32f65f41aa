import type { FieldSpec } from '../../backends/warehouse/port.ts';
import { validationError } from '../../lib/errors.ts';

/**
 * Guard for the tenant-written `expression` check. Its text is spliced into the aggregate
 * statement (it is the tenant's SQL against the tenant's own dataset), so it must stay one boolean
 * expression over the row: no statement separators, comments, subqueries, DDL/DML, extension
 * loading, file readers or parameters of ours.
 *
 * Words inside single-quoted literals are allowed (`status != 'DELETED'`), which means we must
 * find literals exactly as the warehouse does. We only trust our reading when the text has no
 * backslash and no triple quote — the places where DuckDB and BigQuery lex literals differently —
 * and otherwise check the raw text, literals included. Double-quoted and backquoted tokens are
 * always checked, never skipped.
 */
const MAX_LENGTH = 4000;

const FORBIDDEN_WORDS = [
  'SELECT', 'FROM', 'WITH', 'TABLE', 'VALUES', 'UNION', 'INTERSECT', 'EXCEPT', 'INTO',
  'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'UPSERT', 'TRUNCATE', 'DROP', 'CREATE', 'ALTER',
  'ATTACH', 'DETACH', 'USE', 'COPY', 'EXPORT', 'IMPORT', 'PRAGMA', 'INSTALL', 'LOAD',
  'CALL', 'EXEC', 'EXECUTE', 'PREPARE', 'DEALLOCATE', 'DECLARE', 'SET', 'RESET', 'BEGIN', 'COMMIT', 'ROLLBACK',
  'TRANSACTION', 'GRANT', 'REVOKE', 'VACUUM', 'CHECKPOINT', 'ANALYZE', 'DESCRIBE', 'SHOW', 'SUMMARIZE', 'ASSERT',
]; // prettier-ignore
const FORBIDDEN_WORD = new RegExp(`\\b(${FORBIDDEN_WORDS.join('|')})\\b`, 'i');
/** Functions that reach outside the row: files, the environment, settings, other queries. */
const FORBIDDEN_FUNCTION =
  /\b(read_\w+|\w*_scan|glob|getenv|current_setting|query|query_table|sniff_csv|external_query|load_extension)\s*\(/i;

const RAW_FORBIDDEN: Array<[string, string]> = [
  [';', 'contains ";" (one expression, not statements)'],
  ['--', 'contains a comment ("--")'],
  ['/*', 'contains a comment ("/*")'],
  ['*/', 'contains a comment ("*/")'],
  ['#', 'contains "#" (a comment in BigQuery)'],
];

/** Replaces single-quoted literals by '' when they can be located reliably; otherwise returns the text as is. */
export function maskLiterals(expr: string): string {
  if (expr.includes('\\') || expr.includes("'''") || expr.includes('"""')) return expr;
  let out = '';
  let i = 0;
  while (i < expr.length) {
    const ch = expr[i]!;
    if (ch === "'") {
      const end = expr.indexOf("'", i + 1);
      if (end === -1) return expr;
      out += "''";
      i = end + 1;
    } else if (ch === '"' || ch === '`') {
      const end = expr.indexOf(ch, i + 1);
      const stop = end === -1 ? expr.length : end + 1;
      out += expr.slice(i, stop);
      i = stop;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

function problemWith(expr: string): string | undefined {
  if (expr.length === 0) return 'is empty';
  if (expr.length > MAX_LENGTH) return `is longer than ${MAX_LENGTH} characters`;
  for (const [needle, reason] of RAW_FORBIDDEN) if (expr.includes(needle)) return reason;
  const masked = maskLiterals(expr);
  const word = FORBIDDEN_WORD.exec(masked);
  if (word) return `uses ${word[1]!.toUpperCase()}, which does not belong in a row condition`;
  const fn = FORBIDDEN_FUNCTION.exec(masked);
  if (fn) return `calls ${fn[1]}(), which reads outside the row`;
  const placeholder = /[@$?]/.exec(masked);
  if (placeholder) return `contains "${placeholder[0]}" (query parameters are not available to expressions)`;
  let depth = 0;
  for (const ch of masked) {
    if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) return 'closes a parenthesis it did not open';
  }
  if (depth !== 0) return 'leaves a parenthesis open';
  return undefined;
}

/** Returns the trimmed expression, or throws a validation error naming the rule. */
export function guardExpression(ruleName: string, expr: string): string {
  const text = expr.trim();
  const problem = problemWith(text);
  if (problem) {
    throw validationError(`dq rule "${ruleName}": expression ${JSON.stringify(text)} ${problem}`, {
      suggestion:
        'write one boolean condition on a row, e.g. "input_tokens >= 0" or "status != \'DELETED\'" ' +
        '(no statements, subqueries, comments or ";"); use the other checks for what a condition cannot say',
      data: { rule: ruleName, expr: text },
    });
  }
  return text;
}

/** Table columns the expression mentions, in order of first mention (used for samples and reporting). */
export function referencedColumns(expr: string, fields: FieldSpec[], dialect: 'duckdb' | 'bigquery'): string[] {
  const byName = new Map(fields.map((f) => [f.name.toLowerCase(), f.name]));
  const quotedIdentifier = dialect === 'bigquery' ? '`' : '"';
  const found: string[] = [];
  const token = /"([^"]*)"|`([^`]*)`|([A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g;
  for (const m of maskLiterals(expr).matchAll(token)) {
    let name: string | undefined;
    if (m[1] !== undefined) name = quotedIdentifier === '"' ? m[1] : undefined;
    else if (m[2] !== undefined) name = quotedIdentifier === '`' ? m[2] : undefined;
    else if (m[4] === undefined) name = m[3];
    const column = name === undefined ? undefined : byName.get(name.toLowerCase());
    if (column && !found.includes(column)) found.push(column);
  }
  return found;
}
