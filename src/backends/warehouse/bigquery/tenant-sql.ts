import type { JobMetadata, QueryParameter } from '@google-cloud/bigquery';
import { assertIdentifier } from '../../../domain/ids.ts';
import type { TenantExpressionScope, TenantQueryCheck } from '../port.ts';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { placeOf, tenantSqlInvalid, tenantSqlRefused, type Place } from '../tenant-sql.ts';
import { errorFacts, isNotFound, warehouseError } from './errors.ts';
import type { JobRunner } from './jobs.ts';
import { tableRef } from './sql.ts';

/**
 * The tenant SQL gate of the BigQuery warehouse: BigQuery's own parser, through a dry run. The
 * job reports `statistics.query.statementType` (one statement, and a query, is "SELECT"; several
 * are a "SCRIPT") and `referencedTables` (every table read, views and CTEs resolved), so the
 * check needs no SQL parsing of ours. Functions are not reported; what a tenant's query can reach
 * beyond tables is bounded by the IAM of the identity running it (see README, "Tenant isolation").
 */

export interface BigQueryGateContext {
  jobs: JobRunner;
  project: string;
}

interface TableReference {
  projectId?: string | null;
  datasetId?: string | null;
  tableId?: string | null;
}
interface RoutineReference {
  projectId?: string | null;
  datasetId?: string | null;
  routineId?: string | null;
}
interface QueryStatistics {
  statementType?: string;
  referencedTables?: TableReference[];
  referencedRoutines?: RoutineReference[];
  schema?: { fields?: Array<{ name?: string }> };
}

/**
 * Dry-runs the SQL. A query BigQuery cannot compile is the tenant's mistake (exit 2). A table of the
 * tenant's own dataset that does not exist yet (an earlier step makes it) leaves the query
 * uncheckable for now: TENANT_SQL_UNCHECKED (exit 8), which validation passes over and the run
 * meets again when the SQL runs. Any other missing table or dataset is an ordinary not-found.
 */
async function dryRun(
  gate: BigQueryGateContext,
  sql: string,
  params: QueryParameter[],
  place: Place & { dataset: string },
  expression: boolean,
): Promise<QueryStatistics> {
  let metadata: JobMetadata;
  const what = `check ${place.origin ?? 'tenant SQL'}`;
  try {
    metadata = await gate.jobs.dryRun({ sql, params, what, labels: { step: 'check' } });
  } catch (err) {
    const facts = errorFacts(err);
    if (facts.reasons.some((r) => r === 'invalidQuery' || r === 'invalid')) {
      // An expression whose framing does not parse ("a > 0; DROP ...") is no single expression: BigQuery reads it as a broken script.
      const framing = expression && /^Syntax error\b/.test(facts.message) ? ' (it is not one expression)' : '';
      throw tenantSqlInvalid(place, `BigQuery cannot run it: ${facts.message}${framing}`, { expression });
    }
    if (isNotFound(facts) && facts.message.includes(`Table ${gate.project}:${place.dataset}.`)) {
      throw new ConvergenceError('TENANT_SQL_UNCHECKED', ExitCode.notFound, `${placeOf(place)}: ${facts.message}`, {
        suggestion: 'the table is made by an earlier step; the SQL is checked again when it runs',
        data: { origin: place.origin ?? null, reasons: facts.reasons },
        cause: err,
      });
    }
    throw warehouseError(err, { what, project: gate.project }, facts);
  }
  return (metadata.statistics?.query ?? {}) as QueryStatistics;
}

function statementProblem(type: string | undefined): string | undefined {
  if (type === 'SELECT') return undefined;
  if (type === 'SCRIPT') return 'holds several statements (a script); tenant SQL is exactly one query';
  return `found ${type ? `a ${type} statement` : 'a statement BigQuery did not classify'}, not a query`;
}

/** What, if anything, a referenced table or routine does wrong for a tenant confined to `dataset`. */
function outside(
  gate: BigQueryGateContext,
  dataset: string,
  ref: { projectId?: string | null; datasetId?: string | null },
  id: string,
  verb: 'reads' | 'calls',
) {
  const shown = [ref.projectId, ref.datasetId, id].filter(Boolean).join('.');
  // Dataset ids are case-sensitive in BigQuery: only the exact tenant dataset is its own.
  if (ref.projectId !== gate.project || ref.datasetId !== dataset) return `${verb} ${shown}, outside the tenant's dataset ${dataset}`;
  if (id.toUpperCase().startsWith('INFORMATION_SCHEMA')) return `${verb} ${shown}, which is catalog metadata`;
  return undefined;
}

export async function checkBigQueryQuery(
  gate: BigQueryGateContext,
  sql: string,
  params: QueryParameter[],
  scope: { dataset: string; origin?: string | undefined },
): Promise<TenantQueryCheck> {
  const dataset = assertIdentifier('dataset', scope.dataset);
  const place = { origin: scope.origin, dataset };
  const stats = await dryRun(gate, sql, params, place, false);
  const problem = statementProblem(stats.statementType);
  if (problem) throw tenantSqlRefused(place, problem);
  const tables: string[] = [];
  for (const ref of stats.referencedTables ?? []) {
    const reason = outside(gate, dataset, ref, ref.tableId ?? '', 'reads');
    if (reason) throw tenantSqlRefused(place, reason);
    tables.push(`${ref.datasetId}.${ref.tableId}`);
  }
  for (const ref of stats.referencedRoutines ?? []) {
    const reason = outside(gate, dataset, ref, ref.routineId ?? '', 'calls');
    if (reason) throw tenantSqlRefused(place, reason);
  }
  return { tables: [...new Set(tables)].sort() };
}

/**
 * A DQ expression, dry-run as the query `SELECT (<expr>) AS dq_expr FROM <table>`: it must stay one
 * query with one column, read that table and nothing else, and use no parameters (none are bound,
 * so an @name fails to compile). The statement the DQ step then runs is gated again as a whole.
 * Returns the expression between newlines, the framing it was checked in.
 */
export async function checkBigQueryExpression(gate: BigQueryGateContext, expr: string, scope: TenantExpressionScope): Promise<string> {
  const dataset = assertIdentifier('dataset', scope.dataset);
  const table = assertIdentifier('table', scope.table);
  const place = { origin: scope.origin, dataset };
  const refuse = (reason: string) => tenantSqlRefused(place, reason, { expression: true });
  const text = expr.trim();
  if (text === '') throw refuse('is empty');
  // Newlines keep a trailing comment (-- or #) of the tenant's away from our closing parenthesis.
  const sql = `SELECT (\n${text}\n) AS dq_expr FROM ${tableRef(gate.project, dataset, table)}`;
  const stats = await dryRun(gate, sql, [], place, true);
  if (stats.statementType !== 'SELECT') throw refuse('is not one expression (it holds a statement of its own)');
  const columns = stats.schema?.fields ?? [];
  if (columns.length !== 1 || columns[0]?.name !== 'dq_expr') throw refuse('is not one expression (it closes its parentheses and goes on)');
  for (const ref of stats.referencedTables ?? []) {
    if (ref.projectId !== gate.project || ref.datasetId !== dataset || ref.tableId !== table) {
      throw refuse(`reads ${[ref.projectId, ref.datasetId, ref.tableId].filter(Boolean).join('.')}; an expression reads only its own row`);
    }
  }
  if ((stats.referencedRoutines ?? []).length > 0) throw refuse('calls a routine; an expression uses built-in functions only');
  // Framed as it was checked: a trailing comment of the tenant's ends before the engine's SQL goes on.
  return `\n${text}\n`;
}
