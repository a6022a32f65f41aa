import type { PipelineStep } from '../../domain/pipeline.ts';
import type { Warehouse } from '../../backends/warehouse/port.ts';
import { renderSql, templateNames } from '../template.ts';
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
 * Checks a transform's SQL with the warehouse's tenant SQL gate before any run: rendered as a run
 * would render it, with every variable it names bound (to an empty string: the gate reads the
 * statement, not the values). Unknown variables are the run's to report.
 */
export async function checkTransformSql(
  warehouse: Warehouse,
  input: { tenantId: string; dataset: string; relative: string; text: string },
): Promise<string[]> {
  const file = `configs/${input.tenantId}/${input.relative}`;
  const variables = Object.fromEntries(templateNames(input.text).variables.map((name) => [name, '']));
  const rendered = renderSql(input.text, { file, variables, ref: (table) => warehouse.qualify(input.dataset, table) });
  return (await warehouse.checkTenantQuery(rendered.sql, { dataset: input.dataset, params: rendered.params, origin: file })).tables;
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
