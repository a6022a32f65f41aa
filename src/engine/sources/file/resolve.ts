import { glob, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { isInside } from '../../../lib/paths.ts';
import { checkWrittenPath, dataFolder, pathError, placesFor, type FileScope } from './scope.ts';

export { type FileScope } from './scope.ts';

export interface InputFile {
  /** The file read: the match with its symlinks resolved, checked to lie where the tenant may read. */
  absolute: string;
  /** `__source_file`: the match as the source names it, relative to the workspace root (absolute when outside it), with `/`. */
  label: string;
  size: number;
}

const GLOB_CHARS = /[*?[\]{}]/;
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** True for a `path:` the local engine does not read from disk (gs://, or another URL scheme). */
export const isRemotePath = (pattern: string) => URL_SCHEME.test(pattern);

/**
 * The files a `path:` names, sorted so the load order (and so which duplicate a merge keeps) does
 * not depend on the file system. Confined to the tenant's data folder or the listed roots (see
 * scope.ts); a match that leads elsewhere refuses the whole source rather than being skipped, so a
 * planted link is reported instead of silently changing what loads.
 */
export async function resolveInputFiles(pattern: string, scope: FileScope): Promise<InputFile[]> {
  if (/^gs:\/\//i.test(pattern)) {
    throw new ConvergenceError(
      'SOURCE_NOT_SUPPORTED',
      ExitCode.usage,
      `gs:// paths are listed in their bucket, not matched on disk (${pattern})`,
      {
        suggestion: 'read it with the gs:// source path of the ingest step (sources/file/gcs-source.ts)',
      },
    );
  }
  if (isRemotePath(pattern)) {
    throw new ConvergenceError(
      'SOURCE_NOT_SUPPORTED',
      ExitCode.usage,
      `file sources read local paths (or gs:// on the cloud engine), not ${pattern}`,
    );
  }
  const files = await matchInputFiles(pattern, scope);
  if (files.length === 0) {
    const written = checkWrittenPath(pattern, scope);
    throw new ConvergenceError('SOURCE_NO_FILES', ExitCode.pipelineFailed, `no file matches "${pattern}" (looked in ${written.where})`, {
      suggestion: written.absolute ? 'check the source path' : `check the source path; relative paths start in data/${scope.tenantId}/`,
      data: { pattern },
    });
  }
  return files;
}

/**
 * Every file a local `path:` matches today, each checked (none is an error here: data may arrive
 * later). What `pipeline validate` and the check before a run use; throws SOURCE_PATH (exit 2) for
 * a path or a match the tenant may not read.
 */
export async function matchInputFiles(pattern: string, scope: FileScope): Promise<InputFile[]> {
  const written = checkWrittenPath(pattern, scope);
  const places = await placesFor(written, scope);
  const root = path.resolve(scope.workspaceRoot);
  const candidates: string[] = [];
  if (GLOB_CHARS.test(written.pattern)) {
    const matches = written.absolute ? glob(written.pattern) : glob(written.pattern, { cwd: written.cwd });
    for await (const match of matches) candidates.push(path.resolve(written.cwd, match));
  } else {
    candidates.push(path.resolve(written.cwd, written.pattern));
  }

  const files: InputFile[] = [];
  for (const candidate of candidates.sort()) {
    const rel = path.relative(root, candidate);
    const label = rel.startsWith('..') || path.isAbsolute(rel) ? candidate : rel.split(path.sep).join('/');
    // A dangling link or a vanished file is no file; what it pointed at is never shown.
    const resolved = await realpath(candidate).catch(() => undefined);
    if (resolved === undefined) continue;
    if (!places.allows(resolved)) {
      // A match the tenant wrote, or one in its own folder, is named; a glob's match elsewhere (under a
      // shared root) is not: its name may belong to someone else.
      const named = !GLOB_CHARS.test(written.pattern) || isInside(candidate, dataFolder(scope)) ? label : 'one of its matches';
      throw pathError(
        `file source path "${pattern}": ${named} leads outside ${written.where} (a symbolic link?)`,
        `keep the tenant's files in ${written.where}; links that point elsewhere are not followed`,
      );
    }
    const info = await stat(resolved).catch(() => undefined);
    if (!info?.isFile()) continue;
    files.push({ absolute: resolved, label, size: info.size });
  }
  return files;
}
