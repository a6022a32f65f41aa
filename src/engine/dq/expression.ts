import type { FieldSpec } from '../../backends/warehouse/port.ts';
import { ConvergenceError, isConvergenceError } from '../../lib/errors.ts';
import type { DqWarehouse } from './types.ts';

/**
 * The tenant-written `expression` check. Its text ends up inside the engine's aggregate, so the
 * warehouse's own parser checks it first (Warehouse.checkTenantExpression: one condition on a row
 * of the table, no subqueries, parameters, settings or other tables) and what goes into the SQL
 * is the text the warehouse returns — on DuckDB its parser's restatement of the expression. The
 * aggregate holding it is then run through the same gate as a whole (Warehouse.queryTenant).
 */
const SHOWN = 200;
const shown = (expr: string) => JSON.stringify(expr.length > SHOWN ? `${expr.slice(0, SHOWN - 3)}...` : expr);

/** Where an expression is named in messages: `dq rule "x": expression "a > 0"`. */
export const expressionOrigin = (ruleName: string, expr: string) => `dq rule "${ruleName}": expression ${shown(expr.trim())}`;

/** Asks the warehouse to check the expression; returns the text to put in SQL. */
export async function checkExpression(
  warehouse: Pick<DqWarehouse, 'checkTenantExpression'>,
  ruleName: string,
  expr: string,
  table: { dataset: string; table: string },
): Promise<string> {
  try {
    return await warehouse.checkTenantExpression(expr, { ...table, origin: expressionOrigin(ruleName, expr) });
  } catch (err) {
    if (!isConvergenceError(err) || !err.code.startsWith('TENANT_SQL')) throw err;
    throw new ConvergenceError(err.code, err.exitCode, err.message, {
      suggestion: err.suggestion,
      data: { ...err.data, rule: ruleName, expr: expr.trim() },
      cause: err,
    });
  }
}

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
