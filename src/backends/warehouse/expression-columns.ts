import type { FieldSpec } from './port.ts';

/**
 * Replaces single-quoted literals by '' when they can be located reliably (no backslash, no triple
 * quote, where the dialects lex differently); otherwise returns the text as is. For reporting
 * which columns an expression mentions only: nothing is decided on it.
 */
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

/**
 * Table columns an expression mentions, in order of first mention: bare names that are not
 * function calls, and names between the dialect's identifier quotes (`"` in DuckDB, `` ` `` in
 * BigQuery; the other quote does not hold a name there).
 */
export function mentionedColumns(expr: string, fields: readonly FieldSpec[], identifierQuote: '"' | '`'): string[] {
  const byName = new Map(fields.map((f) => [f.name.toLowerCase(), f.name]));
  const found: string[] = [];
  const token = /"([^"]*)"|`([^`]*)`|([A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g;
  for (const m of maskLiterals(expr).matchAll(token)) {
    let name: string | undefined;
    if (m[1] !== undefined) name = identifierQuote === '"' ? m[1] : undefined;
    else if (m[2] !== undefined) name = identifierQuote === '`' ? m[2] : undefined;
    else if (m[4] === undefined) name = m[3];
    const column = name === undefined ? undefined : byName.get(name.toLowerCase());
    if (column && !found.includes(column)) found.push(column);
  }
  return found;
}
