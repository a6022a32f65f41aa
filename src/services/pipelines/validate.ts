import path from 'node:path';
import { sourceSchema, type PipelineConfig, type SourceConfig } from '../../domain/pipeline.ts';
import { parseYamlWith } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import { pipelineNotificationProblems } from '../notifications/validate.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import {
  classify,
  describeFailure,
  listConfigFiles,
  readPipeline,
  readSql,
  readTableSchema,
  readTenantText,
  type ConfigKind,
} from './files.ts';
import { sourcePathProblems } from './paths.ts';
import { restAuthProblems } from './rest-auth-problems.ts';
import { restHostProblems } from './rest-hosts.ts';
import { pipelineWindowProblems, restTemplateProblems } from './rest-templates.ts';
import { restSecretNames } from '../../engine/sources/rest/secret-names.ts';
import { pipelineSqlItems, sqlFileItem, tenantSqlProblems } from './tenant-sql.ts';

interface FileReport {
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

/** A source file as validate read it: parsed, and its text, where a problem's line is found. */
interface SourceFile {
  source: SourceConfig;
  text: string;
}

/** What one validation looks up, each once: source files (a source serves many pipelines) and secrets. */
interface Lookups {
  sourceFile(relative: string): Promise<SourceFile>;
  secretResolves(name: string): Promise<boolean>;
}

function lookups(ctx: ServiceContext, tenantId: string): Lookups {
  const sources = new Map<string, Promise<SourceFile>>();
  const secrets = new Map<string, Promise<boolean>>();
  return {
    sourceFile: (relative) => {
      if (!sources.has(relative)) sources.set(relative, readSourceFile(ctx.workspace.root, tenantId, relative));
      return sources.get(relative)!;
    },
    secretResolves: (name) => {
      if (!secrets.has(name)) secrets.set(name, resolvesSecret(ctx, tenantId, name));
      return secrets.get(name)!;
    },
  };
}

async function readSourceFile(root: string, tenantId: string, relative: string): Promise<SourceFile> {
  const text = await readTenantText(root, tenantId, relative);
  return { source: await parseYamlWith(path.posix.join('configs', tenantId, relative), text, sourceSchema), text };
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
  const read = lookups(ctx, tenantId);

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
        errors.push(...(await pipelineReferences(ctx, tenantId, display, pipeline, read)));
        errors.push(
          ...(await pipelineWindowProblems(display, pipeline, read.sourceFile, () => readTenantText(root, tenantId, target.relative))),
        );
        if (pipeline.notifications) {
          const text = await readTenantText(root, tenantId, target.relative);
          errors.push(...(await pipelineNotificationProblems(ctx, tenantId, display, text)));
        }
        if (errors.length === 0) pipelines.push(pipeline.pipeline_id);
      } else if (target.kind === 'source') {
        const file = await read.sourceFile(target.relative);
        errors.push(...(await sourceReferences(ctx, tenantId, display, file, read)));
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
  read: Lookups,
): Promise<string[]> {
  const root = ctx.workspace.root;
  const errors: string[] = [];
  for (const [index, step] of pipeline.steps.entries()) {
    const at = `${display}: steps.${index} (${step.name})`;
    try {
      if (step.type === 'ingest') {
        const file = await read.sourceFile(step.source_config);
        errors.push(...(await sourceReferences(ctx, tenantId, path.join('configs', tenantId, step.source_config), file, read)));
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
  { source, text }: SourceFile,
  read: Lookups,
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
    errors.push(...(await sourcePathProblems(ctx, tenantId, display, source, text)));
  } catch (err) {
    errors.push(`${display}: path: ${describeFailure(err)}`);
  }
  if (source.type === 'rest_api') {
    errors.push(...(await restHostProblems(ctx, display, source, text)));
    errors.push(...(await restAuthProblems(ctx, display, source, text)));
    errors.push(...(await restTemplateProblems(display, source, text)));
    for (const { key, name } of restSecretNames(source)) {
      if (await read.secretResolves(name)) continue;
      errors.push(
        `${display}: ${key}: secret "${name}" is missing: not in configs/${tenantId}/secrets/${name}.txt nor in tenant credentials ` +
          `(set it with: convergence tenant credentials set ${tenantId} ${name})`,
      );
    }
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
