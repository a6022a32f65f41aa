import { glob, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';

export interface InputFile {
  absolute: string;
  /** `__source_file`: the path relative to the workspace root (absolute when outside it), with `/`. */
  label: string;
  size: number;
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * The files a `path:` names, sorted so the load order (and so which duplicate a merge keeps) does
 * not depend on the file system. Relative paths are read from the workspace root and may not leave
 * it; an absolute path is the operator's explicit choice and is allowed.
 */
export async function resolveInputFiles(pattern: string, workspaceRoot: string): Promise<InputFile[]> {
  if (/^gs:\/\//i.test(pattern)) {
    throw new ConvergenceError(
      'SOURCE_NOT_SUPPORTED',
      ExitCode.usage,
      `gs:// paths are not supported on the local engine yet (${pattern})`,
      {
        suggestion: 'copy the files into the workspace, or run the pipeline on the cloud engine',
      },
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pattern)) {
    throw new ConvergenceError(
      'SOURCE_NOT_SUPPORTED',
      ExitCode.usage,
      `file sources read local paths (or gs:// on the cloud engine), not ${pattern}`,
    );
  }
  const root = path.resolve(workspaceRoot);
  const absolutePattern = path.isAbsolute(pattern);
  const outside = (file: string) => {
    const rel = path.relative(root, file);
    return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  };
  if (!absolutePattern && outside(path.resolve(root, pattern.replace(/[*?[{].*$/, '')))) {
    throw new ConvergenceError('SOURCE_PATH', ExitCode.usage, `file source path "${pattern}" leaves the workspace`, {
      suggestion: 'use a path inside the workspace, or an absolute path',
    });
  }

  const candidates: string[] = [];
  if (GLOB_CHARS.test(pattern)) {
    const matches = absolutePattern ? glob(pattern) : glob(pattern, { cwd: root });
    for await (const match of matches) candidates.push(path.resolve(root, match));
  } else {
    candidates.push(path.resolve(root, pattern));
  }

  const files: InputFile[] = [];
  for (const absolute of candidates.sort()) {
    if (!absolutePattern && outside(absolute)) continue;
    const info = await stat(absolute).catch(() => undefined);
    if (!info?.isFile()) continue;
    const rel = path.relative(root, absolute);
    files.push({ absolute, label: outside(absolute) ? absolute : rel.split(path.sep).join('/'), size: info.size });
  }
  if (files.length === 0) {
    throw new ConvergenceError(
      'SOURCE_NO_FILES',
      ExitCode.pipelineFailed,
      `no file matches "${pattern}" (looked in ${absolutePattern ? '/' : root})`,
      {
        suggestion: 'check the source path; relative paths start at the workspace root',
        data: { pattern, root },
      },
    );
  }
  return files;
}
