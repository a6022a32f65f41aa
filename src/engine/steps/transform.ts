import type { PipelineStep } from '../../domain/pipeline.ts';
import { renderSql } from '../template.ts';
import type { StepEnv, StepOutcome } from './types.ts';

type TransformStep = Extract<PipelineStep, { type: 'transform' }>;

/** Renders the step's SQL against the tenant's tables: refs become qualified names, variables parameters. */
export function renderTransform(env: Pick<StepEnv, 'warehouse' | 'dataset' | 'tenantId' | 'variables' | 'sql'>, step: TransformStep) {
  const file = `configs/${env.tenantId}/${step.sql}`;
  return {
    file,
    ...renderSql(env.sql(step.sql), { file, variables: env.variables, ref: (table) => env.warehouse.qualify(env.dataset, table) }),
  };
}

/**
 * Lands the result of the step's SQL with its write mode. The SQL is tenant text: the load runs it
 * only after the warehouse's tenant SQL gate has passed it (one query over the tenant's dataset).
 */
export async function runTransform(env: StepEnv, step: TransformStep): Promise<StepOutcome> {
  const { sql, params, refs, file } = renderTransform(env, step);
  const dest = step.destination;
  env.progress({ message: `running ${step.sql} into ${dest.table} (${dest.write_mode})` });
  const result = await env.warehouse.load({
    dataset: env.dataset,
    table: dest.table,
    source: { kind: 'query', sql, params, origin: file },
    writeMode: dest.write_mode,
    ...(dest.merge_keys ? { mergeKeys: dest.merge_keys } : {}),
    ...(dest.partition_by ? { partitionBy: dest.partition_by } : {}),
    ...(dest.cluster_by ? { clusterBy: dest.cluster_by } : {}),
    runId: env.runId,
  });
  env.progress({ rows: result.rowsLoaded });
  const notes = result.columnsAdded.length ? [`added columns to ${dest.table}: ${result.columnsAdded.join(', ')}`] : [];
  return {
    rowsIn: result.rowsLoaded,
    rowsOut: result.rowsLoaded,
    bytes: 0,
    details: { table: dest.table, writeMode: dest.write_mode, refs, ...result },
    notes,
  };
}
