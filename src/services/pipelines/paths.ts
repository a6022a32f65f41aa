import path from 'node:path';
import { sourceSchema, type SourceConfig } from '../../domain/pipeline.ts';
import { isGcsPath } from '../../engine/sources/file/gcs-path.ts';
import { checkObjectPath, parseObjectRoot } from '../../engine/sources/file/gcs-scope.ts';
import { isRemotePath, matchInputFiles, type FileScope } from '../../engine/sources/file/resolve.ts';
import { ConvergenceError, ExitCode, isConvergenceError, validationError } from '../../lib/errors.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import type { PipelineBundle } from './bundle.ts';

/**
 * Where the file sources of `tenantId` may read in this environment: data/<tenant>/ of the
 * workspace, and the environment's file_roots (folders and gs:// prefixes) with `{tenant}`
 * replaced. The local state folder and the environment's state bucket are never readable, even
 * when a root contains them.
 */
export function fileScope(ctx: ServiceContext, tenantId: string): FileScope {
  const roots = (ctx.env.fileRoots ?? []).map((root) => root.replaceAll('{tenant}', tenantId));
  const stateBucket = ctx.env.backend === 'gcp' ? ctx.env.settings.state_bucket : undefined;
  return {
    workspaceRoot: ctx.workspace.root,
    tenantId,
    roots: roots.filter((root) => !isGcsPath(root)).map((root) => path.resolve(root)),
    denied: [ctx.env.stateDir],
    objectRoots: roots.filter(isGcsPath).map(parseObjectRoot),
    deniedBuckets: stateBucket ? [stateBucket] : [],
  };
}

type FileSource = Extract<SourceConfig, { type: 'file' }>;

/**
 * A local `path:` in an environment on Google Cloud: its pipelines run in Cloud Run Jobs, which
 * get the pushed configs and no workspace files, so such a source could only fail at run time.
 */
function localPathInCloud(source: FileSource): ConvergenceError {
  return new ConvergenceError(
    'SOURCE_PATH',
    ExitCode.usage,
    `"${source.path}" is a local path, and pipelines of a Google Cloud environment run where the workspace's files are not`,
    {
      suggestion:
        'upload the data to gs://<bucket>/... (`gcloud storage cp`) and point `path:` at it, e.g. gs://<bucket>/usage/usage_*.csv',
    },
  );
}

/** Throws SOURCE_PATH (exit 2) when a path may not be read; gs:// paths are checked without listing. */
async function checkPath(scope: FileScope, source: FileSource, cloud: boolean): Promise<void> {
  if (isGcsPath(source.path)) checkObjectPath(source.path, scope);
  else if (isRemotePath(source.path)) return;
  else if (cloud) throw localPathInCloud(source);
  else await matchInputFiles(source.path, scope);
}

/**
 * The reason a file source's `path:` may not be read, at the line of `path:` in its file, or
 * undefined when it may (a path that matches no file or object yet is fine: data may arrive
 * later). With `cloud`, only gs:// paths may be read.
 */
async function pathProblem(
  scope: FileScope,
  source: FileSource,
  sourceFile: string,
  text: string,
  cloud = false,
): Promise<string | undefined> {
  try {
    await checkPath(scope, source, cloud);
    return undefined;
  } catch (err) {
    if (!isConvergenceError(err) || err.code !== 'SOURCE_PATH') throw err;
    const { locate } = await parseYamlLocated(sourceFile, text, sourceSchema);
    const { line, col } = locate(['path']);
    return `${sourceFile}:${line}:${col}: path: ${err.message}${err.suggestion ? ` (${err.suggestion})` : ''}`;
  }
}

/**
 * For `pipeline validate`: the problems of a source's `path:` (none for REST sources); in an
 * environment on Google Cloud a local path is one. `text` is
 * the source file as validate read it, where a problem's line is found.
 */
export async function sourcePathProblems(
  ctx: ServiceContext,
  tenantId: string,
  sourceFile: string,
  source: SourceConfig,
  text: string,
): Promise<string[]> {
  if (source.type !== 'file') return [];
  const problem = await pathProblem(fileScope(ctx, tenantId), source, sourceFile, text, ctx.env.backend === 'gcp');
  return problem ? [problem] : [];
}

/**
 * Before a run takes its lock or writes its run row: every file source of the bundle reads only
 * where its tenant may. A refused path is a configuration error (exit 2), not a failed run.
 */
export async function assertSourcePaths(ctx: ServiceContext, bundle: PipelineBundle): Promise<void> {
  const scope = fileScope(ctx, bundle.tenantId);
  const problems: string[] = [];
  for (const [relative, source] of bundle.sources) {
    if (source.type !== 'file') continue;
    const problem = await pathProblem(scope, source, `configs/${bundle.tenantId}/${relative}`, bundle.files[relative] ?? '');
    if (problem) problems.push(problem);
  }
  if (problems.length > 0) {
    throw validationError(problems.join('\n'), {
      suggestion: `relative paths start in data/${bundle.tenantId}/; absolute and gs:// ones need a folder or prefix listed under file_roots in convergence.yaml`,
    });
  }
}
