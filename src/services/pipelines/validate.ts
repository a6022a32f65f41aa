import path from 'node:path';
import type { PipelineConfig, SourceConfig } from '../../domain/pipeline.ts';
import type { ServiceContext } from '../context.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import {
  classify,
  describeFailure,
  listConfigFiles,
  readPipeline,
  readSource,
  readSql,
  readTableSchema,
  type ConfigKind,
} from './files.ts';
import { sourcePathProblems } from './paths.ts';
import { pipelineSqlItems, sqlFileItem, tenantSqlProblems } from './tenant-sql.ts';

export interface FileReport {
  file: string;
  kind: ConfigKind;
  ok: boolean;
  errors: string[];
}
export interface ValidationReport {
  tenantId: string;
  ok: boolean;
  files: FileReport[];
  pipelines: string[];
}

/**
 * Checks every config file of a tenant (or one file) and the references between them: a
 * pipeline's source_config, sql and schema files must exist and be valid, and the secrets named
 * by sources must resolve (secret files first, then tenant_cloud_credentials). Collects every
 * problem instead of stopping at the first.
 */
export async function validateConfigs(ctx: ServiceContext, input: { tenantId?: string; file?: string }): Promise<ValidationReport> {
  const root = ctx.workspace.root;
  let tenantId: string;
  let targets: Array<{ relative: string; kind: ConfigKind }>;
  if (input.file) {
    const where = classify(root, input.file);
    tenantId = where.tenantId;
    targets = [{ relative: path.relative(path.join(root, 'configs', tenantId), path.resolve(input.file)), kind: where.kind }];
  } else {
    tenantId = input.tenantId!;
    targets = [];
    for (const kind of ['pipeline', 'source', 'schema', 'sql'] as const) {
      for (const relative of await listConfigFiles(root, tenantId, kind)) targets.push({ relative, kind });
    }
  }
  const secretCache = new Map<string, Promise<boolean>>();
  const secretResolves = (name: string) => {
    if (!secretCache.has(name)) secretCache.set(name, resolvesSecret(ctx, tenantId, name));
    return secretCache.get(name)!;
  };

  const files: FileReport[] = [];
  const pipelines: string[] = [];
  for (const target of targets) {
    const errors: string[] = [];
    const display = path.join('configs', tenantId, target.relative);
    try {
      if (target.kind === 'pipeline') {
        const pipeline = await readPipeline(root, tenantId, target.relative);
        const expected = path.basename(target.relative).replace(/\.ya?ml$/, '');
        if (pipeline.pipeline_id !== expected)
          errors.push(`${display}: pipeline_id "${pipeline.pipeline_id}" differs from the file name "${expected}"`);
        errors.push(...(await pipelineReferences(ctx, tenantId, display, pipeline, secretResolves)));
        if (errors.length === 0) pipelines.push(pipeline.pipeline_id);
      } else if (target.kind === 'source') {
        const source = await readSource(root, tenantId, target.relative);
        errors.push(...(await sourceReferences(ctx, tenantId, display, source, secretResolves)));
      } else if (target.kind === 'schema') {
        await readTableSchema(root, tenantId, target.relative);
      } else {
        const text = await readSql(root, tenantId, target.relative);
        if (text.trim() === '') errors.push(`${display}: the SQL file is empty`);
        // The warehouse's own parser: one query over the tenant's dataset (file:line when refused).
        else
          errors.push(
            ...(await tenantSqlProblems([
              sqlFileItem(await ctx.backends.tenantWarehouse(tenantId), { tenantId, relative: target.relative, text }),
            ])),
          );
      }
    } catch (err) {
      errors.push(describeFailure(err));
    }
    files.push({ file: display, kind: target.kind, ok: errors.length === 0, errors });
  }
  return { tenantId, ok: files.every((f) => f.ok), files, pipelines };
}

async function pipelineReferences(
  ctx: ServiceContext,
  tenantId: string,
  display: string,
  pipeline: PipelineConfig,
  secretResolves: (name: string) => Promise<boolean>,
): Promise<string[]> {
  const root = ctx.workspace.root;
  const errors: string[] = [];
  for (const [index, step] of pipeline.steps.entries()) {
    const at = `${display}: steps.${index} (${step.name})`;
    try {
      if (step.type === 'ingest') {
        const source = await readSource(root, tenantId, step.source_config);
        errors.push(...(await sourceReferences(ctx, tenantId, path.join('configs', tenantId, step.source_config), source, secretResolves)));
      } else if (step.type === 'transform') {
        if ((await readSql(root, tenantId, step.sql)).trim() === '') errors.push(`${at}: sql file ${step.sql} is empty`);
      }
      if (step.type !== 'dq' && step.destination.schema) await readTableSchema(root, tenantId, step.destination.schema);
    } catch (err) {
      errors.push(`${at}: ${describeFailure(err)}`);
    }
  }
  const warehouse = await ctx.backends.tenantWarehouse(tenantId);
  const sql = (relative: string) => readSql(root, tenantId, relative);
  errors.push(...(await tenantSqlProblems(pipelineSqlItems(warehouse, { tenantId, display, pipeline, sql }))));
  return errors;
}

async function sourceReferences(
  ctx: ServiceContext,
  tenantId: string,
  display: string,
  source: SourceConfig,
  secretResolves: (name: string) => Promise<boolean>,
): Promise<string[]> {
  const errors: string[] = [];
  if (source.schema) {
    try {
      await readTableSchema(ctx.workspace.root, tenantId, source.schema);
    } catch (err) {
      errors.push(`${display}: schema: ${describeFailure(err)}`);
    }
  }
  try {
    errors.push(...(await sourcePathProblems(ctx, tenantId, display, source)));
  } catch (err) {
    errors.push(`${display}: path: ${describeFailure(err)}`);
  }
  if (source.type === 'rest_api' && source.auth && !(await secretResolves(source.auth.secret))) {
    errors.push(
      `${display}: auth.secret "${source.auth.secret}" not found in configs/${tenantId}/secrets/${source.auth.secret}.txt nor in tenant credentials`,
    );
  }
  return errors;
}

async function resolvesSecret(ctx: ServiceContext, tenantId: string, name: string): Promise<boolean> {
  const secrets = await ctx.backends.secrets();
  if ((await secrets.get(tenantId, name)) !== undefined) return true;
  const warehouse = await ctx.backends.warehouse();
  if (!(await warehouse.tableExists(METADATA_DATASET, T.credentials))) return false;
  return (await warehouse.count(METADATA_DATASET, T.credentials, { tenant_id: tenantId, credential_name: name, status: 'ACTIVE' })) > 0;
}
