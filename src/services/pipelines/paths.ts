import path from 'node:path';
import { sourceSchema, type SourceConfig } from '../../domain/pipeline.ts';
import { isRemotePath, matchInputFiles, type FileScope } from '../../engine/sources/file/resolve.ts';
import { isConvergenceError, validationError } from '../../lib/errors.ts';
import { parseYamlLocated } from '../../lib/yaml-errors.ts';
import type { ServiceContext } from '../context.ts';
import type { PipelineBundle } from './bundle.ts';

/**
 * Where the file sources of `tenantId` may read in this environment: data/<tenant>/ of the
 * workspace, and the environment's file_roots with `{tenant}` replaced. The local state folder is
 * never readable, even when a root contains it.
 */
export function fileScope(ctx: ServiceContext, tenantId: string): FileScope {
  return {
    workspaceRoot: ctx.workspace.root,
    tenantId,
    roots: (ctx.env.fileRoots ?? []).map((root) => path.resolve(root.replaceAll('{tenant}', tenantId))),
    denied: [ctx.env.stateDir],
  };
}

type FileSource = Extract<SourceConfig, { type: 'file' }>;

/**
 * The reason a file source's `path:` may not be read, at the line of `path:` in its file, or
 * undefined when it may (a path that matches no file yet is fine: data may arrive later).
 * gs:// and other URLs are left to the engine that reads them.
 */
async function pathProblem(scope: FileScope, source: FileSource, sourceFile: string, text: string): Promise<string | undefined> {
  if (isRemotePath(source.path)) return undefined;
  try {
    await matchInputFiles(source.path, scope);
    return undefined;
  } catch (err) {
    if (!isConvergenceError(err) || err.code !== 'SOURCE_PATH') throw err;
    const { locate } = await parseYamlLocated(sourceFile, text, sourceSchema);
    const { line, col } = locate(['path']);
    return `${sourceFile}:${line}:${col}: path: ${err.message}${err.suggestion ? ` (${err.suggestion})` : ''}`;
  }
}

/**
 * For `pipeline validate`: the problems of a source's `path:` (none for REST sources). `text` is
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
  const problem = await pathProblem(fileScope(ctx, tenantId), source, sourceFile, text);
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
      suggestion: `relative paths start in data/${bundle.tenantId}/; absolute ones need a folder listed under file_roots in convergence.yaml`,
    });
  }
}
