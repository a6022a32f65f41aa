import type { ServiceContext } from '../context.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle } from './bundle.ts';
import { describeFailure, listConfigFiles } from './files.ts';
import { activePushedConfigs } from './push.ts';

export interface PipelineEntry {
  pipelineId: string;
  /** The workspace file, or null for a pipeline that exists only as a pushed config. */
  file: string | null;
  valid: boolean;
  description: string | null;
  steps: string[];
  schedule: string | null;
  /** Content hash of the workspace files (null when invalid or absent). */
  localVersion: string | null;
  /** Active version in tenant_pipeline_configs of this env, if pushed. */
  pushedVersion: string | null;
  pushedAt: Date | null;
  error?: string;
}

/**
 * The pipelines of a tenant: those in configs/<tenant>/pipelines/, valid or not (an invalid one
 * says why), with the version pushed to this environment, and pipelines that exist only pushed.
 */
export async function listPipelines(ctx: ServiceContext, tenantId: string): Promise<PipelineEntry[]> {
  await requireTenant(ctx, tenantId);
  const pushed = await activePushedConfigs(ctx, tenantId);
  const entries: PipelineEntry[] = [];
  for (const file of await listConfigFiles(ctx.workspace.root, tenantId, 'pipeline')) {
    const fallbackId = file.replace(/^pipelines\//, '').replace(/\.ya?ml$/, '');
    const remote = pushed.get(fallbackId);
    pushed.delete(fallbackId);
    const base = {
      pipelineId: fallbackId,
      file: `configs/${tenantId}/${file}`,
      pushedVersion: remote?.version ?? null,
      pushedAt: remote?.pushedAt ?? null,
    };
    try {
      const bundle = await loadBundle(ctx.workspace.root, tenantId, fallbackId);
      const p = bundle.pipeline;
      entries.push({
        ...base,
        pipelineId: p.pipeline_id,
        valid: true,
        description: p.description ?? null,
        steps: p.steps.map((s) => `${s.name}:${s.type}`),
        schedule: p.schedule ? `${p.schedule.cron} ${p.schedule.timezone}` : null,
        localVersion: bundle.version,
      });
    } catch (err) {
      entries.push({
        ...base,
        valid: false,
        description: null,
        steps: [],
        schedule: null,
        localVersion: null,
        error: describeFailure(err),
      });
    }
  }
  for (const remote of pushed.values()) {
    entries.push({
      pipelineId: remote.pipelineId,
      file: null,
      valid: true,
      description: null,
      steps: [],
      schedule: null,
      localVersion: null,
      pushedVersion: remote.version,
      pushedAt: remote.pushedAt,
    });
  }
  return entries;
}
