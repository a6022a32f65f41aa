import type { Warehouse, WriteOp } from '../backends/warehouse/port.ts';

/**
 * Incremental cursors live next to the data they describe, in the tenant's own dataset, so the
 * load can commit a cursor in the same transaction as the rows it covers.
 */
const STATE_TABLE = '_convergence_state';

const STATE_SPEC = {
  name: STATE_TABLE,
  description: 'Incremental cursor per pipeline step, committed with the loaded rows',
  fields: [
    { name: 'pipeline_id', type: 'STRING' as const, mode: 'REQUIRED' as const },
    { name: 'step_name', type: 'STRING' as const, mode: 'REQUIRED' as const },
    { name: 'cursor_field', type: 'STRING' as const, mode: 'REQUIRED' as const },
    { name: 'cursor_value', type: 'STRING' as const },
    { name: 'run_id', type: 'STRING' as const },
    { name: 'updated_at', type: 'TIMESTAMP' as const, mode: 'REQUIRED' as const },
  ],
};

export interface StateKey {
  dataset: string;
  pipelineId: string;
  stepName: string;
}

export async function readCursor(warehouse: Warehouse, key: StateKey): Promise<string | undefined> {
  if (!(await warehouse.tableExists(key.dataset, STATE_TABLE))) return undefined;
  const [row] = await warehouse.select(key.dataset, STATE_TABLE, {
    where: { pipeline_id: key.pipelineId, step_name: key.stepName },
    limit: 1,
  });
  const value = row?.['cursor_value'];
  return value === null || value === undefined ? undefined : String(value);
}

export async function ensureStateTable(warehouse: Warehouse, dataset: string): Promise<void> {
  await warehouse.createTable(dataset, STATE_SPEC);
}

/** The writes that move a cursor, for `alsoWrite` of the load that covers it. */
export function cursorWrites(key: StateKey, cursor: { field: string; value: string; runId: string; at: Date }): WriteOp[] {
  const where = { pipeline_id: key.pipelineId, step_name: key.stepName };
  return [
    { kind: 'delete', dataset: key.dataset, table: STATE_TABLE, where },
    {
      kind: 'insert',
      dataset: key.dataset,
      table: STATE_TABLE,
      rows: [{ ...where, cursor_field: cursor.field, cursor_value: cursor.value, run_id: cursor.runId, updated_at: cursor.at }],
    },
  ];
}
