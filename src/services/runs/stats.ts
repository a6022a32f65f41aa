import type { Row } from '../../backends/warehouse/port.ts';
import { assertName, assertTenantId } from '../../domain/ids.ts';
import { validationError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { requireBootstrapped } from '../metadata/guard.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { requireTenant } from '../tenants.ts';

/**
 * Run statistics per pipeline (`pipeline runs --stats`, GET /api/v1/pipelines/stats): the seed's
 * success-rate query with durations, rows and the last failure, over the runs created since a
 * moment. One statement per call, whatever the number of pipelines.
 */
export interface PipelineStats {
  pipelineId: string;
  /** Every run created in the window, live ones included. */
  runs: number;
  /** Runs that ended (COMPLETE, FAILED, TIMEOUT, CANCELLED): what the success rate is taken over. */
  finished: number;
  succeeded: number;
  /** FAILED or TIMEOUT. */
  failed: number;
  /** succeeded / finished, between 0 and 1; null while no run has ended. */
  successRate: number | null;
  /** Continuous percentiles of the ended runs' durations. */
  p50DurationMs: number | null;
  p95DurationMs: number | null;
  rowsProcessed: number;
  lastFailure: { at: Date; runId: string; status: string; error: string | null } | null;
}

export interface PipelineStatsOptions {
  tenantId: string;
  since: Date;
  pipelineId?: string;
}

/** A failure is a run the pipeline did not finish on its own terms; a cancel is someone's choice. */
const FAILURE_STATES = ['FAILED', 'TIMEOUT'] as const;
const FINISHED_STATES = ['COMPLETE', ...FAILURE_STATES, 'CANCELLED'] as const;

export async function pipelineStats(ctx: ServiceContext, options: PipelineStatsOptions): Promise<PipelineStats[]> {
  assertTenantId(options.tenantId);
  if (options.pipelineId !== undefined) assertName('pipeline id', options.pipelineId);
  if (Number.isNaN(options.since.getTime())) throw validationError('since is not a valid time');
  const warehouse = await ctx.backends.warehouse();
  await requireBootstrapped(warehouse, ctx.env.name);
  const d = warehouse.dialect;
  const p = d.params();
  const within = (states: readonly string[]) => `status IN (${states.map((s) => p.add(s)).join(', ')})`;
  const isFailure = () => within(FAILURE_STATES);
  // The window's runs, each with its pipeline's duration percentiles and its rank among the
  // pipeline's failures (or non-failures), newest first: rank 1 of a failure is the last one.
  const sql = `WITH recent AS (
  SELECT pipeline_id, pipeline_logging_id, status, duration_ms, rows_processed, error_message, created_at,
    ${d.percentileOver('duration_ms', 0.5, 'pipeline_id')} AS p50_ms,
    ${d.percentileOver('duration_ms', 0.95, 'pipeline_id')} AS p95_ms,
    ROW_NUMBER() OVER (
      PARTITION BY pipeline_id, CASE WHEN ${isFailure()} THEN 1 ELSE 0 END
      ORDER BY created_at DESC, pipeline_logging_id
    ) AS recency
  FROM ${warehouse.qualify(METADATA_DATASET, T.runs)}
  WHERE tenant_id = ${p.add(options.tenantId)} AND created_at >= ${p.add(options.since)}${
    options.pipelineId !== undefined ? ` AND pipeline_id = ${p.add(options.pipelineId)}` : ''
  }
)
SELECT pipeline_id,
  COUNT(*) AS runs,
  ${d.countIf(within(FINISHED_STATES))} AS finished,
  ${d.countIf(within(['COMPLETE']))} AS succeeded,
  ${d.countIf(isFailure())} AS failed,
  MAX(p50_ms) AS p50_ms,
  MAX(p95_ms) AS p95_ms,
  COALESCE(SUM(rows_processed), 0) AS rows_processed,
  MAX(CASE WHEN ${isFailure()} AND recency = 1 THEN created_at END) AS last_failure_at,
  MAX(CASE WHEN ${isFailure()} AND recency = 1 THEN pipeline_logging_id END) AS last_failure_run_id,
  MAX(CASE WHEN ${isFailure()} AND recency = 1 THEN status END) AS last_failure_status,
  MAX(CASE WHEN ${isFailure()} AND recency = 1 THEN error_message END) AS last_failure_error
FROM recent
GROUP BY pipeline_id
ORDER BY pipeline_id`;
  const rows = await warehouse.query(sql, p.values);
  // Only an empty answer needs to tell an unknown tenant (exit 8) from one without runs.
  if (rows.length === 0) await requireTenant(ctx, options.tenantId, { allowDeleted: true });
  return rows.map(toStats);
}

const count = (value: unknown) => (value === null || value === undefined ? 0 : Number(value));
const milliseconds = (value: unknown) => (value === null || value === undefined ? null : Math.round(Number(value)));

function toStats(row: Row): PipelineStats {
  const finished = count(row.finished);
  const succeeded = count(row.succeeded);
  const failedAt = row.last_failure_at;
  return {
    pipelineId: String(row.pipeline_id),
    runs: count(row.runs),
    finished,
    succeeded,
    failed: count(row.failed),
    successRate: finished === 0 ? null : succeeded / finished,
    p50DurationMs: milliseconds(row.p50_ms),
    p95DurationMs: milliseconds(row.p95_ms),
    rowsProcessed: count(row.rows_processed),
    lastFailure:
      failedAt instanceof Date
        ? {
            at: failedAt,
            runId: String(row.last_failure_run_id),
            status: String(row.last_failure_status),
            error: typeof row.last_failure_error === 'string' ? (row.last_failure_error.split('\n')[0] ?? null) : null,
          }
        : null,
  };
}
