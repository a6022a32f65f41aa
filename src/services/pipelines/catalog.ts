import type { ServiceContext } from '../context.ts';
import { requireTenant } from '../tenants.ts';
import { describeFailure, listConfigFiles, readPipeline } from './files.ts';

export interface PipelineEntry {
  pipelineId: string;
  file: string;
  valid: boolean;
  description: string | null;
  steps: string[];
  schedule: string | null;
  error?: string;
}

/** The pipelines found in configs/<tenant>/pipelines/, valid or not (an invalid one says why). */
export async function listPipelines(ctx: ServiceContext, tenantId: string): Promise<PipelineEntry[]> {
  await requireTenant(ctx, tenantId);
  const entries: PipelineEntry[] = [];
  for (const file of await listConfigFiles(ctx.workspace.root, tenantId, 'pipeline')) {
    const fallbackId = file.replace(/^pipelines\//, '').replace(/\.ya?ml$/, '');
    try {
      const p = await readPipeline(ctx.workspace.root, tenantId, file);
      entries.push({
        pipelineId: p.pipeline_id,
        file: `configs/${tenantId}/${file}`,
        valid: true,
        description: p.description ?? null,
        steps: p.steps.map((s) => `${s.name}:${s.type}`),
        schedule: p.schedule ? `${p.schedule.cron} ${p.schedule.timezone}` : null,
      });
    } catch (err) {
      entries.push({
        pipelineId: fallbackId,
        file: `configs/${tenantId}/${file}`,
        valid: false,
        description: null,
        steps: [],
        schedule: null,
        error: describeFailure(err),
      });
    }
  }
  return entries;
}
