import type { PipelineStep } from '../../domain/pipeline.ts';
import { quarantineTable, type LoadResult } from '../../backends/warehouse/port.ts';
import type { StepEnv } from './types.ts';

/** What the ingest step's parts share: where its state is kept, how it names its file, how it loads and reports. */
export type IngestStep = Extract<PipelineStep, { type: 'ingest' }>;

/** Where the step's cursor and loaded-object state are kept. */
export const stateKey = (env: StepEnv, step: IngestStep) => ({ dataset: env.dataset, pipelineId: env.pipelineId, stepName: step.name });

/** The source file of a step as messages name it. */
export const sourceFile = (env: StepEnv, step: IngestStep) => `configs/${env.tenantId}/${step.source_config}`;

/** A full refresh of an append-only table would duplicate what is there: it replaces instead. */
export function fullRefreshMode(env: StepEnv, mode: IngestStep['destination']['write_mode']) {
  return env.fullRefresh && mode === 'append' ? 'replace' : mode;
}

/** How the step's destination asks to be laid out and merged, as the warehouse's load takes it. */
export function destinationOptions(dest: IngestStep['destination']) {
  return {
    ...(dest.merge_keys ? { mergeKeys: dest.merge_keys } : {}),
    ...(dest.partition_by ? { partitionBy: dest.partition_by } : {}),
    ...(dest.cluster_by ? { clusterBy: dest.cluster_by } : {}),
  };
}

/** What a load did, for the step log, however the rows got there. */
export function loadDetails(table: string, writeMode: string, source: string, result: LoadResult) {
  return {
    table,
    writeMode,
    source,
    quarantined: result.rowsQuarantined,
    inserted: result.rowsInserted,
    updated: result.rowsUpdated,
    columnsAdded: result.columnsAdded,
    created: result.created,
  };
}

/** The notes a load leaves: rows quarantined, columns added. */
export function loadNotes(env: StepEnv, table: string, result: LoadResult): string[] {
  const notes: string[] = [];
  if (result.rowsQuarantined > 0)
    notes.push(`${result.rowsQuarantined} rows could not be typed: see ${env.dataset}.${quarantineTable(table)}`);
  if (result.columnsAdded.length > 0) notes.push(`added columns to ${table}: ${result.columnsAdded.join(', ')}`);
  return notes;
}
