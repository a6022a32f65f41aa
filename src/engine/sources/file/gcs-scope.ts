import { gcsUri, parseGcsPath, type GcsPath } from './gcs-path.ts';
import { pathError, type FileScope } from './scope.ts';

/**
 * Which gs:// objects a tenant's file source may read: only under a gs:// prefix the operator
 * lists in the environment's file_roots (`{tenant}` replaced; none by default), never in the
 * environment's own state bucket. The same rule as for absolute local paths, because a bucket the
 * operator's credentials (or BigQuery job's) can read is not a bucket the tenant may read.
 *
 * The check is on the path as written, before anything is listed: the part before the one `*` must
 * start with the root's prefix, and a root's prefix always ends with "/", so `gs://b/acme/` never
 * admits `gs://b/acme_corp/...`. Every object a listing returns starts with that part, so nothing
 * it matches can lie outside the root; object names are not paths, so ".." in them leads nowhere.
 */
export interface ObjectRoot {
  bucket: string;
  /** The object-name prefix, ending with "/"; "" for the whole bucket. */
  prefix: string;
}

/** A file_roots entry that starts with gs://, `{tenant}` already replaced. */
export function parseObjectRoot(root: string): ObjectRoot {
  const { bucket, prefix } = parseGcsPath(root.endsWith('/') ? `${root}x` : `${root}/x`);
  return { bucket, prefix: prefix.slice(0, -1) };
}

const isUnder = (path: GcsPath, root: ObjectRoot) => path.bucket === root.bucket && path.prefix.startsWith(root.prefix);

/** Parses a gs:// `path:` and throws SOURCE_PATH (exit 2) unless this tenant may read what it names. */
export function checkObjectPath(pattern: string, scope: FileScope): GcsPath {
  const path = parseGcsPath(pattern);
  const shown = JSON.stringify(pattern);
  if (scope.deniedBuckets.includes(path.bucket))
    throw pathError(`file source path ${shown} lies in the environment's state bucket, which no tenant's file source may read`);
  if (!scope.objectRoots.some((root) => isUnder(path, root))) {
    throw pathError(
      `file source path ${shown} is not under a gs:// prefix listed in file_roots`,
      scope.objectRoots.length === 0
        ? `ask the operator to list the tenant's prefix under file_roots of this environment in convergence.yaml, e.g. gs://${path.bucket}/{tenant}/`
        : `allowed prefixes: ${scope.objectRoots.map((root) => gcsUri(root.bucket, root.prefix)).join(', ')}`,
    );
  }
  return path;
}
