import type { PipelineStep } from '../../domain/pipeline.ts';
import type { Warehouse } from '../../backends/warehouse/port.ts';
import { viewParametersRefused } from '../../backends/warehouse/views.ts';
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
  input: { tenantId: string; dataset: string; relative: string; text: string; view?: boolean },
): Promise<string[]> {
  const file = `configs/${input.tenantId}/${input.relative}`;
  const names = templateNames(input.text).variables;
  if (input.view && names.length > 0) throw viewParametersRefused(file, names);
  const variables = Object.fromEntries(names.map((name) => [name, '']));
  const rendered = renderSql(input.text, { file, variables, ref: (table) => warehouse.qualify(input.dataset, table) });
  return (await warehouse.checkTenantQuery(rendered.sql, { dataset: input.dataset, params: rendered.params, origin: file })).tables;
}

/**
 * Lands the result of the step's SQL with its write mode. The SQL is tenant text: the load runs it
 * only after the warehouse's tenant SQL gate has passed it (one query over the tenant's dataset).
 */
export async function runTransform(env: StepEnv, step: TransformStep): Promise<StepOutcome> {
  if (step.destination.write_mode === 'view') return runViewTransform(env, step);
  const { sql, params, refs, file } = renderTransform(env, step);
  const dest = { ...step.destination, write_mode: step.destination.write_mode };
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

/**
 * Makes the step's SQL a view (CREATE OR REPLACE VIEW): nothing is copied, readers see the tables'
 * rows as they are when they read. The warehouse checks the SQL with the same gate as any
 * transform. A table of the view's name is replaced only under --full-refresh.
 */
async function runViewTransform(env: StepEnv, step: TransformStep): Promise<StepOutcome> {
  const { sql, params, refs, file } = renderTransform(env, step);
  const view = step.destination.table;
  const request = { dataset: env.dataset, view, sql, origin: file, replaceTable: env.fullRefresh };
  if (Object.keys(params).length > 0) throw viewParametersRefused(file, Object.keys(params));
  env.progress({ message: `creating the view ${view} from ${step.sql}` });
  const result = await env.warehouse.createView(request);
  const notes = result.replacedTable ? [`replaced the table ${view} by a view (full refresh)`] : [];
  return {
    rowsIn: 0,
    rowsOut: 0,
    bytes: 0,
    details: {
      table: view,
      writeMode: 'view',
      refs,
      created: result.created,
      replacedTable: result.replacedTable,
      columns: result.fields.map((f) => f.name),
    },
    notes,
  };
}
