import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { pipelineSchema, sourceSchema, tableSchemaFileSchema } from '../../domain/pipeline.ts';
import type { PipelineConfig, SourceConfig, TableSchemaFile } from '../../domain/pipeline.ts';
import { notFoundError, validationError } from '../../lib/errors.ts';
import { parseYamlWith } from '../../lib/yaml-errors.ts';
import { findPipelineFile, readTenantText } from './files.ts';

/**
 * Everything one pipeline run reads, parsed and checked up front: the pipeline, the sources,
 * schema files and SQL it references. `version` is the content hash of those files, recorded on
 * the run; `files` holds their text, which is what `pipeline push` stores, so a remote run
 * executes exactly the configuration that was pushed.
 */
export interface PipelineBundle {
  tenantId: string;
  pipeline: PipelineConfig;
  /** Pipeline file, relative to the tenant folder. */
  file: string;
  sources: Map<string, SourceConfig>;
  schemas: Map<string, TableSchemaFile>;
  sql: Map<string, string>;
  /** Text of every file above, by path relative to the tenant folder. */
  files: Record<string, string>;
  version: string;
}

/** Where bundle files come from: the workspace, or a pushed config. */
type ReadText = (relative: string) => Promise<string>;

/** Workspace files are read through the tenant-folder check: a link cannot pull in another tenant's file. */
function workspaceReader(root: string, tenantId: string): ReadText {
  return (relative) => readTenantText(root, tenantId, relative);
}

function pushedReader(tenantId: string, files: Record<string, string>, version: string): ReadText {
  return async (relative) => {
    const text = files[relative];
    if (text === undefined) throw notFoundError(`configs/${tenantId}/${relative} is not in pushed version ${version}`);
    return text;
  };
}

function bundleVersion(files: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const relative of Object.keys(files).sort()) hash.update(`${relative}\0${files[relative]}\0`);
  return hash.digest('hex').slice(0, 16);
}

async function assemble(tenantId: string, file: string, read: ReadText): Promise<PipelineBundle> {
  const files: Record<string, string> = {};
  const parse = async <T>(relative: string, schema: z.ZodType<T>): Promise<T> => {
    files[relative] = await read(relative);
    return parseYamlWith(`configs/${tenantId}/${relative}`, files[relative], schema);
  };
  const pipeline = await parse(file, pipelineSchema);
  const sources = new Map<string, SourceConfig>();
  const schemas = new Map<string, TableSchemaFile>();
  const sql = new Map<string, string>();
  const schema = async (relative: string | undefined) => {
    if (relative && !schemas.has(relative)) schemas.set(relative, await parse(relative, tableSchemaFileSchema));
  };
  for (const step of pipeline.steps) {
    if (step.type === 'ingest' && !sources.has(step.source_config)) {
      const source = await parse(step.source_config, sourceSchema);
      sources.set(step.source_config, source);
      await schema(source.schema);
    }
    if (step.type === 'transform' && !sql.has(step.sql)) {
      const text = (files[step.sql] = await read(step.sql));
      if (text.trim() === '') throw validationError(`configs/${tenantId}/${step.sql}: the SQL file is empty`);
      sql.set(step.sql, text);
    }
    if (step.type !== 'dq') await schema(step.destination.schema);
  }
  return { tenantId, pipeline, file, sources, schemas, sql, files, version: bundleVersion(files) };
}

/** The bundle of `pipelineId` as it is in the workspace's configs/<tenant>/ folder. */
export async function loadBundle(root: string, tenantId: string, pipelineId: string): Promise<PipelineBundle> {
  const file = await findPipelineFile(root, tenantId, pipelineId);
  const bundle = await assemble(tenantId, file, workspaceReader(root, tenantId));
  if (bundle.pipeline.pipeline_id !== pipelineId) {
    throw validationError(
      `configs/${tenantId}/${file}: pipeline_id "${bundle.pipeline.pipeline_id}" differs from the file name "${pipelineId}"`,
    );
  }
  return bundle;
}

/** A bundle from pushed files (tenant_pipeline_configs.files); the hash must still match. */
export async function loadPushedBundle(
  tenantId: string,
  pipelineFile: string,
  files: Record<string, string>,
  version: string,
): Promise<PipelineBundle> {
  const bundle = await assemble(tenantId, pipelineFile, pushedReader(tenantId, files, version));
  if (bundle.version !== version)
    throw validationError(`pushed config ${version} of ${tenantId} does not match its content hash ${bundle.version}`);
  return bundle;
}
