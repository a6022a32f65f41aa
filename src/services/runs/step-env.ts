import path from 'node:path';
import type { PipelineStep } from '../../domain/pipeline.ts';
import type { StepEnv, StepOutcome } from '../../engine/steps/types.ts';
import { validationError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import type { PipelineBundle } from '../pipelines/bundle.ts';
import { fileScope } from '../pipelines/paths.ts';
import { resolveSecret } from '../credentials.ts';

/** What a run asked for, as the steps see it. */
export interface StepEnvInput {
  tenantId: string;
  pipelineId: string;
  /** --param k=v; override the pipeline's `params` defaults. */
  params?: Record<string, string>;
  fullRefresh?: boolean;
  runId: string;
  runDate: string;
  signal: AbortSignal;
  progress: StepEnv['progress'];
}

function runVariables(ctx: ServiceContext, bundle: PipelineBundle, input: StepEnvInput): Record<string, string> {
  return {
    ...(bundle.pipeline.params ?? {}),
    ...(input.params ?? {}),
    run_date: input.runDate,
    run_id: input.runId,
    tenant_id: input.tenantId,
    pipeline_id: input.pipelineId,
    env: ctx.env.name,
  };
}

/** Everything a step of the run reads and writes through: warehouse, files, secrets, variables, the stop signal. */
export async function stepEnv(ctx: ServiceContext, bundle: PipelineBundle, input: StepEnvInput): Promise<StepEnv> {
  const { tenantId, runId } = input;
  // The tenant's own identity where the environment configures one (tenant_service_account).
  const warehouse = await ctx.backends.tenantWarehouse(tenantId);
  return {
    // Every job of the run is labelled with it, where the warehouse keeps job labels (BigQuery).
    warehouse: warehouse.withLabels?.({ tenant_id: tenantId, pipeline_id: input.pipelineId, run_id: runId }) ?? warehouse,
    tenantId,
    dataset: tenantId,
    pipelineId: input.pipelineId,
    runId,
    variables: runVariables(ctx, bundle, input),
    fileScope: fileScope(ctx, tenantId),
    // What the operator lets REST sources reach (rest_sources of convergence.yaml); nothing internal by default.
    ...(ctx.env.restSources ? { restSources: ctx.env.restSources } : {}),
    objectStorage: () => ctx.backends.tenantStorage(tenantId),
    stagingDir: runStagingDir(ctx, runId),
    fullRefresh: Boolean(input.fullRefresh),
    signal: input.signal,
    progress: input.progress,
    now: () => ctx.now(),
    warn: (m) => ctx.warn(m),
    source: (relative) => bundle.sources.get(relative)!,
    schema: (relative) => (relative ? bundle.schemas.get(relative) : undefined),
    sql: (relative) => bundle.sql.get(relative)!,
    secret: async (name) => {
      const value = await resolveSecret(ctx, tenantId, name);
      if (value === undefined) {
        throw validationError(`secret "${name}" of tenant ${tenantId} not found`, {
          suggestion: `put it in configs/${tenantId}/secrets/${name}.txt (mode 0600) or run \`convergence tenant credentials set ${tenantId} ${name}\``,
        });
      }
      return value;
    },
  };
}

/** Where a run stages its data; removed when the run completes. */
export const runStagingDir = (ctx: ServiceContext, runId: string) => path.join(ctx.env.stateDir, 'staging', runId);

/** Runs one step, each in a staging folder of its own. The engines load on first use. */
export async function executeStep(env: StepEnv, step: PipelineStep): Promise<StepOutcome> {
  const own = { ...env, stagingDir: path.join(env.stagingDir, step.name) };
  if (step.type === 'ingest') return (await import('../../engine/steps/ingest.ts')).runIngest(own, step);
  if (step.type === 'dq') return (await import('../../engine/steps/dq.ts')).runDq(own, step);
  return (await import('../../engine/steps/transform.ts')).runTransform(own, step);
}
