import type { PipelineStep } from '../../domain/pipeline.ts';
import { safeUrl } from '../../engine/sources/rest/errors.ts';
import { startingCursor } from '../../engine/steps/ingest.ts';
import { renderTransform } from '../../engine/steps/transform.ts';
import type { StepEnv } from '../../engine/steps/types.ts';
import { isConvergenceError } from '../../lib/errors.ts';
import { formatBytes } from '../../lib/bytes.ts';
import type { PipelineBundle } from './bundle.ts';

/**
 * What a transform would scan, from the warehouse's dry run (BigQuery). A table the pipeline
 * has not created yet makes the estimate unknown rather than the plan fail.
 */
async function estimateScan(env: StepEnv, sql: string, params: Record<string, string>): Promise<{ bytes?: number; estimate?: string }> {
  if (!env.warehouse.estimateBytes) return {};
  try {
    return { bytes: await env.warehouse.estimateBytes(sql, params) };
  } catch (err) {
    if (isConvergenceError(err) && err.exitCode === 8) return { estimate: `unknown until its tables exist (${err.message})` };
    throw err;
  }
}

interface PlannedStep {
  index: number;
  name: string;
  type: PipelineStep['type'];
  onFailure: 'stop' | 'continue';
  /** One line for humans: what the step reads and where it writes. */
  summary: string;
  detail: Record<string, unknown>;
}

export interface RunPlan {
  tenantId: string;
  pipelineId: string;
  runDate: string;
  configVersion: string;
  fullRefresh: boolean;
  timeout: string;
  steps: PlannedStep[];
}

/** What a run would do, resolved against the current state (cursors, tables), without writing. */
export async function describePlan(
  env: StepEnv,
  bundle: PipelineBundle,
  options: { runDate: string; fullRefresh: boolean },
): Promise<RunPlan> {
  const steps: PlannedStep[] = [];
  for (const [index, step] of bundle.pipeline.steps.entries()) {
    const base = { index, name: step.name, type: step.type, onFailure: step.on_failure };
    if (step.type === 'ingest') {
      const source = env.source(step.source_config);
      const cursor = await startingCursor(env, step);
      // A URL as messages show it: credentials in its userinfo or query never reach the plan.
      const from = source.type === 'file' ? `${source.format} ${source.path}` : safeUrl(source.url);
      const mode = options.fullRefresh && step.destination.write_mode === 'append' ? 'replace' : step.destination.write_mode;
      steps.push({
        ...base,
        summary: `${from} → ${step.destination.table} (${mode}${cursor?.committed ? `, ${source.incremental!.cursor_field} > ${cursor.value}` : cursor ? `, cursor ${cursor.value}` : ''})`,
        detail: {
          source: source.source_id,
          sourceType: source.type,
          table: step.destination.table,
          writeMode: mode,
          cursor: cursor ?? null,
        },
      });
    } else if (step.type === 'dq') {
      steps.push({
        ...base,
        summary: `${step.rules.length} rules on ${step.table}`,
        detail: { table: step.table, rules: step.rules.map((r) => `${r.check} (${r.severity})`) },
      });
    } else {
      const rendered = renderTransform(env, step);
      const scan = await estimateScan(env, rendered.sql, rendered.params);
      steps.push({
        ...base,
        summary: `${step.sql} → ${step.destination.table} (${step.destination.write_mode})${scan.bytes !== undefined ? `, would scan ${formatBytes(scan.bytes)}` : ''}`,
        detail: { sql: rendered.sql, params: rendered.params, refs: rendered.refs, table: step.destination.table, ...scan },
      });
    }
  }
  return {
    tenantId: bundle.tenantId,
    pipelineId: bundle.pipeline.pipeline_id,
    runDate: options.runDate,
    configVersion: bundle.version,
    fullRefresh: options.fullRefresh,
    timeout: bundle.pipeline.timeout,
    steps,
  };
}
