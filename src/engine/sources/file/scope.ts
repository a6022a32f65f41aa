import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { isInside as inside } from '../../../lib/paths.ts';
import type { ObjectRoot } from './gcs-scope.ts';

/**
 * Where a tenant's file source may read (DESIGN "Tenant isolation"). A relative `path:` starts in
 * the tenant's data folder, data/<tenant>/ of the workspace, and stays in it; an absolute path must
 * lie under one of the roots the operator lists for the environment (convergence.yaml
 * `file_roots`, none by default). Whatever the roots say, nothing under configs/, the local state
 * folder or another tenant's data folder is read. Every path is checked twice: as written, before
 * the disk is touched, and for each file a pattern matches after resolving symlinks, so a link
 * cannot lead out. The file read is the resolved one, never the link.
 */
export interface FileScope {
  workspaceRoot: string;
  tenantId: string;
  /** Absolute folders from the environment's file_roots, `{tenant}` already replaced. */
  roots: string[];
  /** Folders never read, whatever the roots say (the local state folder). */
  denied: string[];
  /** The gs:// prefixes of file_roots, `{tenant}` already replaced (see gcs-scope.ts). */
  objectRoots: ObjectRoot[];
  /** Buckets never read, whatever the roots say (the environment's state bucket). */
  deniedBuckets: string[];
}

/** A path as written, checked: where to look and what to look for. */
export interface WrittenPath {
  /** True for an absolute `path:` (read under file_roots). */
  absolute: boolean;
  /** The folder a relative pattern is matched in: the tenant's data folder. */
  cwd: string;
  /** The pattern to match: relative to cwd, or absolute. */
  pattern: string;
  /** Shown in messages: "data/<tenant>/" or "the file_roots of this environment". */
  where: string;
}

export const dataFolder = (scope: Pick<FileScope, 'workspaceRoot' | 'tenantId'>) =>
  path.join(path.resolve(scope.workspaceRoot), 'data', scope.tenantId);

export function pathError(message: string, suggestion?: string): ConvergenceError {
  return new ConvergenceError('SOURCE_PATH', ExitCode.usage, message, suggestion ? { suggestion } : {});
}

// Characters that make a segment a pattern, and those that split alternatives inside one.
const SEGMENT_SPLIT = /[/\\{},]/;
const PERCENT_ENCODED = /%(2e|2f|5c)/i;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;
/** First segments that name the workspace itself, not the tenant's data folder. */
const WORKSPACE_FOLDERS = new Set(['configs', 'data', '.convergence']);

/**
 * The checks that need no disk: no control character (a NUL would otherwise reach the file
 * system), no percent-encoding of `.`, `/` or `\` (paths are never decoded, so such a path can only
 * be a mistake or an attempt), no `..` anywhere (also not as a glob alternative such as `{..,x}`),
 * an absolute path only under a listed root, and a relative one not written from the workspace
 * root. `data/<tenant>/` in front of a relative path is accepted and dropped, so paths written
 * before data folders were per tenant keep working.
 */
export function checkWrittenPath(written: string, scope: FileScope): WrittenPath {
  const tenant = scope.tenantId;
  const shown = JSON.stringify(written);
  if (CONTROL.test(written))
    throw pathError(`file source path ${JSON.stringify(written.replace(CONTROL, '?'))} contains a control character`);
  if (PERCENT_ENCODED.test(written)) {
    throw pathError(`file source path ${shown} is percent-encoded`, 'file paths are read as written: write "." and "/" themselves');
  }
  if (written.split(SEGMENT_SPLIT).some((segment) => segment === '..')) {
    throw pathError(`file source path ${shown} contains ".."`, `write the path from data/${tenant}/ down, without ".."`);
  }
  if (path.isAbsolute(written)) {
    const base = path.resolve(staticPrefix(written));
    if (!scope.roots.some((root) => inside(base, root))) {
      throw pathError(
        `file source path ${shown} is absolute and not under a folder listed in file_roots`,
        scope.roots.length === 0
          ? `put the files in data/${tenant}/ and write the path from there, or ask the operator to list their folder under file_roots of this environment in convergence.yaml`
          : `allowed roots: ${scope.roots.join(', ')}`,
      );
    }
    const forbidden = forbiddenPlace(base, scope);
    if (forbidden) throw pathError(`file source path ${shown} lies in ${forbidden}, which no tenant's file source may read`);
    return { absolute: true, cwd: path.parse(written).root, pattern: written, where: 'the file_roots of this environment' };
  }
  const relative = path.posix.normalize(written.replaceAll('\\', '/'));
  const pattern = withinDataFolder(relative, tenant);
  const first = pattern.split('/')[0]!;
  if (WORKSPACE_FOLDERS.has(first)) {
    throw pathError(
      `file source path ${shown} names ${first}/ of the workspace: relative paths start in data/${tenant}/ and stay there`,
      `put the files in data/${tenant}/ and write the path from there (e.g. usage_*.csv)`,
    );
  }
  if (pattern === '' || pattern === '.') throw pathError(`file source path ${shown} names no file`);
  return { absolute: false, cwd: dataFolder(scope), pattern, where: `data/${tenant}/` };
}

/**
 * A relative path as written in a source, made relative to the tenant's data folder: the folder
 * is the tenant's `data/`, so `data/usage_*.csv` (as DESIGN writes it) and `data/<tenant>/usage_*.csv`
 * (written from the workspace root) both mean data/<tenant>/usage_*.csv, and `usage_*.csv` too.
 */
function withinDataFolder(relative: string, tenant: string): string {
  for (const prefix of [`data/${tenant}/`, 'data/']) if (relative.startsWith(prefix)) return relative.slice(prefix.length);
  return relative;
}

/**
 * The workspace places an absolute path may not name even under a root that holds the workspace,
 * checked as written so such a folder is not even listed; the check after resolving links repeats it.
 */
function forbiddenPlace(base: string, scope: FileScope): string | undefined {
  const root = path.resolve(scope.workspaceRoot);
  if (inside(base, path.join(root, 'configs'))) return 'configs/ of the workspace';
  if (inside(base, path.join(root, '.convergence')) || scope.denied.some((d) => inside(base, path.resolve(d))))
    return 'the local state folder';
  if (inside(base, path.join(root, 'data')) && !inside(base, dataFolder(scope)))
    return "data/ of the workspace outside the tenant's own folder";
  return undefined;
}

/** The part of a pattern before its first glob character: the folder matching starts from. */
function staticPrefix(pattern: string): string {
  const glob = pattern.search(/[*?[{]/);
  return glob < 0 ? pattern : path.dirname(pattern.slice(0, glob) + 'x');
}

const real = (file: string) => realpath(file).catch(() => undefined);

/** Decides, for a resolved (symlink-free) path, whether this tenant may read it. */
export interface Places {
  allows(resolved: string): boolean;
}

/**
 * The folders a written path may reach, resolved once per source. The tenant's data folder must
 * be a real folder in data/ (a link there could point at another tenant's folder); data/ itself
 * may be a link, as the operator lays out the workspace.
 */
export async function placesFor(written: WrittenPath, scope: FileScope): Promise<Places> {
  const root = path.resolve(scope.workspaceRoot);
  const dataReal = await real(path.join(root, 'data'));
  const ownReal = dataReal ? path.join(dataReal, scope.tenantId) : undefined;
  if (!written.absolute && ownReal) {
    const own = await lstat(dataFolder(scope)).catch(() => undefined);
    if (own && !own.isDirectory()) {
      throw pathError(
        `data/${scope.tenantId} is not a folder (a symbolic link?): a tenant's data folder must be a real folder`,
        'for files kept elsewhere, list their folder under file_roots in convergence.yaml and use an absolute path',
      );
    }
  }
  const allowed = written.absolute ? (await Promise.all(scope.roots.map(real))).filter((r) => r !== undefined) : ownReal ? [ownReal] : [];
  const never = (await Promise.all([path.join(root, 'configs'), path.join(root, '.convergence'), ...scope.denied].map(real))).filter(
    (r) => r !== undefined,
  );
  return {
    allows(resolved) {
      if (!allowed.some((folder) => inside(resolved, folder))) return false;
      if (never.some((folder) => inside(resolved, folder))) return false;
      // Another tenant's data folder, even under a root that contains the workspace.
      return !(dataReal && inside(resolved, dataReal) && !(ownReal && inside(resolved, ownReal)));
    },
  };
}
