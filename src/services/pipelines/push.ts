import { randomUUID } from 'node:crypto';
import type { Row, WriteOp } from '../../backends/warehouse/port.ts';
import { assertName } from '../../domain/ids.ts';
import { notFoundError, validationError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { withLease } from '../leases.ts';
import { requireBootstrapped } from '../metadata/guard.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle, loadPushedBundle, type PipelineBundle } from './bundle.ts';
import { listConfigFiles } from './files.ts';
import { sourcePathProblems } from './paths.ts';

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
 * anything is written, and all of them are written in one transaction: a push lands whole or not
 * at all. A version already active is left as it is.
 */
export async function pushPipelines(ctx: ServiceContext, input: { tenantId: string; pipelineId?: string }): Promise<PushedPipeline[]> {
  await requireTenant(ctx, input.tenantId);
  const bundles = await loadPushBundles(ctx, input);
  await assertPushablePaths(ctx, input.tenantId, bundles);

  return withLease(ctx, `push/${input.tenantId}`, { waitMs: 10_000, what: `the pushed pipelines of ${input.tenantId}` }, async () => {
    const active = await activePushedConfigs(ctx, input.tenantId);
    const results: PushedPipeline[] = [];
    const writes: WriteOp[] = [];
    const now = ctx.now();
    for (const bundle of bundles) {
      const previous = active.get(bundle.pipeline.pipeline_id);
      const changed = previous?.version !== bundle.version;
      results.push({
        pipelineId: bundle.pipeline.pipeline_id,
        version: bundle.version,
        changed,
        previousVersion: previous?.version ?? null,
        files: Object.keys(bundle.files).sort(),
      });
      if (changed) writes.push(...activateVersion(bundle, ctx.actor, now));
    }
    await (await ctx.backends.warehouse()).atomic(writes);
    return results;
  });
}

/** The bundles of the pipelines a push names (one, or every pipeline of the tenant), each loaded and parsed. */
async function loadPushBundles(ctx: ServiceContext, input: { tenantId: string; pipelineId?: string }): Promise<PipelineBundle[]> {
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
  return bundles;
}

/**
 * Refuses the push (exit 2, every problem at its file:line:col) when a file source reads where
 * this environment's runs may not, as `pipeline validate` reports it: in an environment on Google
 * Cloud the runs are Cloud Run Jobs executions, which get the pushed configs and no workspace
 * files, so a local `path:` there could only fail when it runs. Each source file is checked once,
 * however many of the pipelines read it.
 */
async function assertPushablePaths(ctx: ServiceContext, tenantId: string, bundles: PipelineBundle[]): Promise<void> {
  const checked = new Set<string>();
  const problems: string[] = [];
  for (const bundle of bundles) {
    for (const [relative, source] of bundle.sources) {
      if (checked.has(relative)) continue;
      checked.add(relative);
      const display = `configs/${tenantId}/${relative}`;
      problems.push(...(await sourcePathProblems(ctx, tenantId, display, source, bundle.files[relative] ?? '')));
    }
  }
  if (problems.length === 0) return;
  const refused = problems.length === 1 ? 'a source path is refused' : `${problems.length} source paths are refused`;
  throw validationError(`nothing pushed to ${ctx.env.name}: ${refused}\n${problems.join('\n')}`, {
    suggestion: `fix the path: of the source${problems.length === 1 ? '' : 's'} above, check with \`convergence pipeline validate --tenant ${tenantId} --env ${ctx.env.name}\`, then push again`,
  });
}

/** The writes that make `bundle` the active pushed version of its pipeline. */
function activateVersion(bundle: PipelineBundle, pushedBy: string, now: Date): WriteOp[] {
  const pipelineId = bundle.pipeline.pipeline_id;
  return [
    {
      kind: 'update',
      dataset: METADATA_DATASET,
      table: T.pipelineConfigs,
      set: { is_active: false, updated_at: now },
      where: { tenant_id: bundle.tenantId, pipeline_id: pipelineId, is_active: true },
    },
    {
      kind: 'insert',
      dataset: METADATA_DATASET,
      table: T.pipelineConfigs,
      rows: [
        {
          config_id: randomUUID(),
          tenant_id: bundle.tenantId,
          pipeline_id: pipelineId,
          version: bundle.version,
          files: JSON.stringify(bundle.files),
          is_active: true,
          pushed_by: pushedBy,
          created_at: now,
          updated_at: now,
        },
      ],
    },
  ];
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
