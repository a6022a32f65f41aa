import { readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { assertTenantId } from '../../domain/ids.ts';
import { pipelineSchema, tableSchemaFileSchema, type PipelineConfig } from '../../domain/pipeline.ts';
import { isConvergenceError, notFoundError, validationError } from '../../lib/errors.ts';
import { isInside } from '../../lib/paths.ts';
import { parseYamlWith, readConfigText } from '../../lib/yaml-errors.ts';

export type ConfigKind = 'pipeline' | 'source' | 'schema' | 'sql';
const FOLDER_KIND: Record<string, ConfigKind> = { pipelines: 'pipeline', sources: 'source', schemas: 'schema', sql: 'sql' };
const KIND_EXT: Record<ConfigKind, RegExp> = { pipeline: /\.ya?ml$/, source: /\.ya?ml$/, schema: /\.json$/, sql: /\.sql$/ };

const tenantDir = (root: string, tenantId: string) => path.join(root, 'configs', assertTenantId(tenantId));

/** Where a file sits in the workspace: its tenant and kind, from configs/<tenant>/<folder>/. */
export function classify(root: string, file: string): { tenantId: string; kind: ConfigKind } {
  const rel = path.relative(path.join(root, 'configs'), path.resolve(file)).split(path.sep);
  const kind = rel.length === 3 ? FOLDER_KIND[rel[1]!] : undefined;
  if (rel[0] === '..' || !kind || !KIND_EXT[kind].test(rel[2]!)) {
    throw validationError(`${file} is not a tenant config file`, {
      suggestion: 'pass a file under configs/<tenant>/{pipelines,sources}/*.yml, schemas/*.json or sql/*.sql',
    });
  }
  return { tenantId: assertTenantId(rel[0]!), kind };
}

/** Files of one kind of a tenant, as paths relative to the tenant folder, sorted. */
export async function listConfigFiles(root: string, tenantId: string, kind: ConfigKind): Promise<string[]> {
  const folder = Object.entries(FOLDER_KIND).find(([, k]) => k === kind)![0];
  const full = path.join(tenantDir(root, tenantId), folder);
  const resolved = await realpath(full).catch(() => undefined);
  if (resolved === undefined) return [];
  // A linked folder could list (and name) another tenant's files: refuse it before reading it.
  await assertTenantPlace(root, tenantId, resolved, `configs/${tenantId}/${folder}`);
  const entries = await readdir(resolved).catch(() => [] as string[]);
  return entries
    .filter((e) => KIND_EXT[kind].test(e))
    .sort()
    .map((e) => `${folder}/${e}`);
}

/**
 * The real place of a tenant's config files: configs/<tenant>/ of the workspace, itself a real
 * folder (configs/ may be a link, as the operator lays out the workspace).
 */
async function tenantPlace(root: string, tenantId: string): Promise<string | undefined> {
  const configs = await realpath(path.join(root, 'configs')).catch(() => undefined);
  return configs && path.join(configs, assertTenantId(tenantId));
}

/**
 * Refuses a resolved path outside the tenant's folder, or inside its secrets/: a link in
 * configs/<tenant>/ must not make another tenant's files, the host's or the tenant's own secrets
 * readable as config. The message names the link, never where it points or what is there.
 */
async function assertTenantPlace(root: string, tenantId: string, resolved: string, shown: string): Promise<void> {
  const own = await tenantPlace(root, tenantId);
  if (own && isInside(resolved, own) && !isInside(resolved, path.join(own, 'secrets'))) return;
  throw validationError(`${shown} leads outside configs/${tenantId}/ (a symbolic link?)`, {
    suggestion: `keep the tenant's config files as files in configs/${tenantId}/; links that point elsewhere are not followed`,
    data: { file: shown },
  });
}

/**
 * The text of a config file of the tenant (relative to its folder), after resolving symlinks and
 * checking the result stays in the tenant's folder; refused when larger than a config file may be.
 */
export async function readTenantText(root: string, tenantId: string, relative: string): Promise<string> {
  const shown = path.posix.join('configs', tenantId, relative.split(path.sep).join('/'));
  const full = path.join(tenantDir(root, tenantId), relative);
  const resolved = await realpath(full).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw notFoundError(`${shown} does not exist`);
    throw err;
  });
  await assertTenantPlace(root, tenantId, resolved, shown);
  return readConfigText(resolved, shown);
}

async function parseFile<T>(root: string, tenantId: string, relative: string, schema: z.ZodType<T>): Promise<T> {
  return parseYamlWith(path.posix.join('configs', tenantId, relative), await readTenantText(root, tenantId, relative), schema);
}

export const readPipeline = (root: string, tenantId: string, relative: string): Promise<PipelineConfig> =>
  parseFile(root, tenantId, relative, pipelineSchema);
export const readTableSchema = (root: string, tenantId: string, relative: string) =>
  parseFile(root, tenantId, relative, tableSchemaFileSchema);
export const readSql = (root: string, tenantId: string, relative: string) => readTenantText(root, tenantId, relative);

/** The pipeline file of `pipelineId`: pipelines/<id>.yml (or .yaml), whose pipeline_id must match. */
export async function findPipelineFile(root: string, tenantId: string, pipelineId: string): Promise<string> {
  const files = await listConfigFiles(root, tenantId, 'pipeline');
  const match = files.find((f) => path.basename(f).replace(/\.ya?ml$/, '') === pipelineId);
  if (!match) {
    throw notFoundError(`pipeline "${pipelineId}" not found in configs/${tenantId}/pipelines/`, {
      suggestion: `list pipelines with \`convergence pipeline list --tenant ${tenantId}\``,
    });
  }
  return match;
}

/** One-line message of a failure while reading a config file, for collected reports. */
export function describeFailure(err: unknown): string {
  if (isConvergenceError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}
