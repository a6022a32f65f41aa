import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { assertTenantId } from '../../domain/ids.ts';
import { pipelineSchema, sourceSchema, tableSchemaFileSchema, type PipelineConfig, type SourceConfig } from '../../domain/pipeline.ts';
import { isConvergenceError, notFoundError, validationError } from '../../lib/errors.ts';
import { parseYamlWith } from '../../lib/yaml-errors.ts';

export type ConfigKind = 'pipeline' | 'source' | 'schema' | 'sql';
const FOLDER_KIND: Record<string, ConfigKind> = { pipelines: 'pipeline', sources: 'source', schemas: 'schema', sql: 'sql' };
const KIND_EXT: Record<ConfigKind, RegExp> = { pipeline: /\.ya?ml$/, source: /\.ya?ml$/, schema: /\.json$/, sql: /\.sql$/ };

export const tenantDir = (root: string, tenantId: string) => path.join(root, 'configs', assertTenantId(tenantId));

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
  const entries = await readdir(path.join(tenantDir(root, tenantId), folder)).catch(() => [] as string[]);
  return entries
    .filter((e) => KIND_EXT[kind].test(e))
    .sort()
    .map((e) => `${folder}/${e}`);
}

async function readText(root: string, full: string): Promise<string> {
  try {
    return await readFile(full, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFoundError(`${path.relative(root, full)} does not exist`);
    throw err;
  }
}

async function parseFile<T>(root: string, full: string, schema: z.ZodType<T>): Promise<T> {
  return parseYamlWith(path.relative(root, full), await readText(root, full), schema);
}

export const readPipeline = (root: string, tenantId: string, relative: string): Promise<PipelineConfig> =>
  parseFile(root, path.join(tenantDir(root, tenantId), relative), pipelineSchema);
export const readSource = (root: string, tenantId: string, relative: string): Promise<SourceConfig> =>
  parseFile(root, path.join(tenantDir(root, tenantId), relative), sourceSchema);
export const readTableSchema = (root: string, tenantId: string, relative: string) =>
  parseFile(root, path.join(tenantDir(root, tenantId), relative), tableSchemaFileSchema);
export const readSql = (root: string, tenantId: string, relative: string) => readText(root, path.join(tenantDir(root, tenantId), relative));

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
