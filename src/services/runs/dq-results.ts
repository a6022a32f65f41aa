import { randomUUID } from 'node:crypto';
import type { Row } from '../../backends/warehouse/port.ts';
import type { DqOutcome } from '../../engine/dq/types.ts';
import type { ServiceContext } from '../context.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';

export interface DqResultContext {
  runId: string;
  tenantId: string;
  pipelineId: string;
  stepName: string;
  tableName: string;
  checkedAt: Date;
}

/** One tenant_dq_results row per rule, passed or not, so a run's full report can be read back. */
export function dqResultRows(outcome: DqOutcome, ctx: DqResultContext): Row[] {
  return outcome.results.map((r) => ({
    dq_result_id: randomUUID(),
    pipeline_logging_id: ctx.runId,
    tenant_id: ctx.tenantId,
    pipeline_id: ctx.pipelineId,
    step_name: ctx.stepName,
    table_name: ctx.tableName,
    rule_name: r.ruleName,
    check_type: r.check,
    // The table has one column_name; multi-column rules list theirs comma-separated.
    column_name: r.columns.length ? r.columns.join(',') : null,
    severity: r.severity,
    passed: r.passed,
    failing_count: r.failingCount,
    total_count: r.totalCount,
    sample_values: JSON.stringify(r.sampleValues),
    details: JSON.stringify(r.details),
    checked_at: ctx.checkedAt,
  }));
}

/** Writes a DQ step's outcome to tenant_dq_results (nothing when the step checked no rule). */
export async function recordDqResults(ctx: ServiceContext, outcome: DqOutcome, row: DqResultContext): Promise<void> {
  const rows = dqResultRows(outcome, row);
  if (rows.length) await (await ctx.backends.warehouse()).insert(METADATA_DATASET, T.dqResults, rows);
}
