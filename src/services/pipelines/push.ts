import { randomUUID } from 'node:crypto';
import type { Row } from '../../backends/warehouse/port.ts';
import { assertName } from '../../domain/ids.ts';
import { notFoundError, validationError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { withLease } from '../leases.ts';
import { requireBootstrapped } from '../metadata/guard.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle, loadPushedBundle, type PipelineBundle } from './bundle.ts';
import { listConfigFiles } from './files.ts';

export interface PushedPipeline {
  pipelineId: string;
  version: string;
  /** False when the same version was already the active one. */
  changed: boolean;
  previousVersion: string | null;
  files: string[];
}

export interface PushedConfig {
  pipelineId: string;
  version: string;
  pushedAt: Date;
  pushedBy: string | null;
  files: Record<string, string>;
}

const pipelineIdOf = (file: string) => file.replace(/^pipelines\//, '').replace(/\.ya?ml$/, '');

function toPushed(row: Row): PushedConfig {
  return {
    pipelineId: String(row['pipeline_id']),
    version: String(row['version']),
    pushedAt: row['created_at'] as Date,
    pushedBy: row['pushed_by'] === null ? null : String(row['pushed_by']),
    files: JSON.parse(String(row['files'])) as Record<string, string>,
  };
}

/** The active pushed config of each pipeline of a tenant. */
export async function activePushedConfigs(ctx: ServiceContext, tenantId: string): Promise<Map<string, PushedConfig>> {
  const warehouse = await ctx.backends.warehouse();
  await requireBootstrapped(warehouse, ctx.env.name);
  const rows = await warehouse.select(METADATA_DATASET, T.pipelineConfigs, { where: { tenant_id: tenantId, is_active: true } });
  return new Map(rows.map((r) => [String(r['pipeline_id']), toPushed(r)]));
}

/**
 * Uploads a tenant's pipelines (each with the sources, schema files and SQL it references) to
 * tenant_pipeline_configs, versioned by content hash. Every pipeline is loaded and checked before
 * anything is written; a version already active is left as it is.
 */
export async function pushPipelines(ctx: ServiceContext, input: { tenantId: string; pipelineId?: string }): Promise<PushedPipeline[]> {
  await requireTenant(ctx, input.tenantId);
  const root = ctx.workspace.root;
  const ids = input.pipelineId
    ? [assertName('pipeline id', input.pipelineId)]
    : (await listConfigFiles(root, input.tenantId, 'pipeline')).map(pipelineIdOf);
  if (ids.length === 0) {
    throw validationError(`no pipelines in configs/${input.tenantId}/pipelines/ to push`, {
      suggestion: 'add a pipeline file, then `convergence pipeline validate --tenant ' + input.tenantId + '`',
    });
  }
  const bundles: PipelineBundle[] = [];
  for (const id of ids) bundles.push(await loadBundle(root, input.tenantId, id));

  return withLease(ctx, `push/${input.tenantId}`, { waitMs: 10_000, what: `the pushed pipelines of ${input.tenantId}` }, async () => {
    const active = await activePushedConfigs(ctx, input.tenantId);
    const warehouse = await ctx.backends.warehouse();
    const results: PushedPipeline[] = [];
    const now = ctx.now();
    for (const bundle of bundles) {
      const pipelineId = bundle.pipeline.pipeline_id;
      const previous = active.get(pipelineId);
      const result = {
        pipelineId,
        version: bundle.version,
        previousVersion: previous?.version ?? null,
        files: Object.keys(bundle.files).sort(),
      };
      if (previous?.version === bundle.version) {
        results.push({ ...result, changed: false });
        continue;
      }
      await warehouse.atomic([
        {
          kind: 'update',
          dataset: METADATA_DATASET,
          table: T.pipelineConfigs,
          set: { is_active: false, updated_at: now },
          where: { tenant_id: input.tenantId, pipeline_id: pipelineId, is_active: true },
        },
        {
          kind: 'insert',
          dataset: METADATA_DATASET,
          table: T.pipelineConfigs,
          rows: [
            {
              config_id: randomUUID(),
              tenant_id: input.tenantId,
              pipeline_id: pipelineId,
              version: bundle.version,
              files: JSON.stringify(bundle.files),
              is_active: true,
              pushed_by: ctx.actor,
              created_at: now,
              updated_at: now,
            },
          ],
        },
      ]);
      results.push({ ...result, changed: true });
    }
    return results;
  });
}

/** The pushed bundle a remote run executes: the active version, or a given one. */
export async function loadActiveBundle(
  ctx: ServiceContext,
  tenantId: string,
  pipelineId: string,
  version?: string,
): Promise<PipelineBundle> {
  const warehouse = await ctx.backends.warehouse();
  const [row] = await warehouse.select(METADATA_DATASET, T.pipelineConfigs, {
    where: { tenant_id: tenantId, pipeline_id: pipelineId, ...(version ? { version } : { is_active: true }) },
    orderBy: [['created_at', 'desc']],
    limit: 1,
  });
  if (!row) {
    throw notFoundError(`no pushed ${version ? `version ${version} of ` : ''}pipeline "${pipelineId}" for ${tenantId} in ${ctx.env.name}`, {
      suggestion: `push it first: convergence pipeline push --tenant ${tenantId} --env ${ctx.env.name}`,
    });
  }
  const pushed = toPushed(row);
  const pipelineFile = Object.keys(pushed.files).find((f) => f.startsWith('pipelines/') && pipelineIdOf(f) === pipelineId);
  if (!pipelineFile) throw validationError(`pushed config ${pushed.version} of ${tenantId}/${pipelineId} has no pipeline file`);
  return loadPushedBundle(tenantId, pipelineFile, pushed.files, pushed.version);
}
