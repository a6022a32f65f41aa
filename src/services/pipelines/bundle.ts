import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PipelineConfig, SourceConfig, TableSchemaFile } from '../../domain/pipeline.ts';
import { findPipelineFile, readPipeline, readSource, readSql, readTableSchema, tenantDir } from './files.ts';
import { validationError } from '../../lib/errors.ts';

/**
 * Everything one pipeline run reads, parsed and checked up front: the pipeline, the sources,
 * schema files and SQL it references. `version` is the content hash of those files, recorded on
 * the run so a result can be traced to the exact configuration that produced it.
 */
export interface PipelineBundle {
  tenantId: string;
  pipeline: PipelineConfig;
  /** Pipeline file, relative to the tenant folder. */
  file: string;
  sources: Map<string, SourceConfig>;
  schemas: Map<string, TableSchemaFile>;
  sql: Map<string, string>;
  version: string;
}

export async function loadBundle(root: string, tenantId: string, pipelineId: string): Promise<PipelineBundle> {
  const file = await findPipelineFile(root, tenantId, pipelineId);
  const pipeline = await readPipeline(root, tenantId, file);
  if (pipeline.pipeline_id !== pipelineId) {
    throw validationError(`configs/${tenantId}/${file}: pipeline_id "${pipeline.pipeline_id}" differs from the file name "${pipelineId}"`);
  }
  const sources = new Map<string, SourceConfig>();
  const schemas = new Map<string, TableSchemaFile>();
  const sql = new Map<string, string>();
  const schema = async (relative: string | undefined) => {
    if (relative && !schemas.has(relative)) schemas.set(relative, await readTableSchema(root, tenantId, relative));
  };
  for (const step of pipeline.steps) {
    if (step.type === 'ingest' && !sources.has(step.source_config)) {
      const source = await readSource(root, tenantId, step.source_config);
      sources.set(step.source_config, source);
      await schema(source.schema);
    }
    if (step.type === 'transform' && !sql.has(step.sql)) {
      const text = await readSql(root, tenantId, step.sql);
      if (text.trim() === '') throw validationError(`configs/${tenantId}/${step.sql}: the SQL file is empty`);
      sql.set(step.sql, text);
    }
    if (step.type !== 'dq') await schema(step.destination.schema);
  }
  const files = [file, ...sources.keys(), ...schemas.keys(), ...sql.keys()].sort();
  const hash = createHash('sha256');
  for (const relative of files) {
    hash.update(`${relative}\0`);
    hash.update(await readFile(path.join(tenantDir(root, tenantId), relative)));
    hash.update('\0');
  }
  return { tenantId, pipeline, file, sources, schemas, sql, version: hash.digest('hex').slice(0, 16) };
}
