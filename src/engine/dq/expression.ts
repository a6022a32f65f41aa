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
