import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';

/**
 * A `gs://bucket/object` file source path. One rule for both ways it is read (BigQuery's
 * external-table queries and the embedded engine's download), which is BigQuery's: the object part may hold one `*`,
 * which matches any run of characters, `/` included; no other wildcard exists.
 */
export interface GcsPath {
  bucket: string;
  /** The object name, or the part before the `*`. */
  prefix: string;
  /** After the `*`; undefined for a single object. */
  suffix?: string;
}

const GS_SCHEME = /^gs:\/\//i;
/** Bucket names: lowercase letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]*[a-z0-9]$/;
const IP_ADDRESS = /^\d{1,3}(\.\d{1,3}){3}$/;
// eslint-disable-next-line no-control-regex -- control characters are what object names may not hold
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export const isGcsPath = (pattern: string) => GS_SCHEME.test(pattern);

function gcsPathError(pattern: string, problem: string, suggestion?: string): ConvergenceError {
  return new ConvergenceError('SOURCE_PATH', ExitCode.usage, `file source path ${JSON.stringify(pattern)}: ${problem}`, {
    ...(suggestion ? { suggestion } : {}),
  });
}

/** Why a bucket name breaks Cloud Storage's naming rules, or undefined when it keeps them. */
function bucketProblem(bucket: string): string | undefined {
  if (bucket === '') return 'names no bucket';
  const limit = bucket.includes('.') ? 222 : 63;
  if (bucket.length < 3 || bucket.length > limit) return `bucket name "${bucket}" must be 3-${limit} characters`;
  if (!BUCKET_NAME.test(bucket))
    return `bucket name "${bucket}" may only hold lowercase letters, digits, "-", "_" and ".", and must start and end with a letter or digit`;
  if (bucket.split('.').some((part) => part.length > 63))
    return `bucket name "${bucket}" has a dot-separated part longer than 63 characters`;
  if (IP_ADDRESS.test(bucket)) return `bucket name "${bucket}" looks like an IP address`;
  if (bucket.startsWith('goog') || /g(o|0)(o|0)gle/.test(bucket))
    return `bucket name "${bucket}" may not start with "goog" or contain "google"`;
  return undefined;
}

/** Why an object name or pattern cannot name objects, or undefined. */
function objectProblem(object: string): string | undefined {
  if (object === '') return 'names no object (write gs://bucket/path/to/file.csv, or a pattern such as gs://bucket/exports/usage_*.csv)';
  if (Buffer.byteLength(object, 'utf8') > 1024) return 'object name is longer than 1024 bytes';
  if (CONTROL.test(object)) return 'object name contains a control character';
  if (object.split('/').some((part) => part === '.' || part === '..')) return 'object name contains "." or ".." as a path segment';
  if ((object.match(/\*/g) ?? []).length > 1) return 'has more than one "*": a gs:// pattern may use one, which matches any characters';
  if (/[?[\]{}]/.test(object)) return 'uses "?", "[", "]", "{" or "}": the only wildcard in a gs:// pattern is one "*"';
  return undefined;
}

/** Parses and checks a gs:// path before anything is listed; throws SOURCE_PATH (exit 2). */
export function parseGcsPath(pattern: string): GcsPath {
  const rest = pattern.replace(GS_SCHEME, '');
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const object = slash < 0 ? '' : rest.slice(slash + 1);
  const problem = bucketProblem(bucket) ?? objectProblem(object);
  if (problem) throw gcsPathError(pattern, problem, 'see https://cloud.google.com/storage/docs/buckets#naming');
  const star = object.indexOf('*');
  return star < 0 ? { bucket, prefix: object } : { bucket, prefix: object.slice(0, star), suffix: object.slice(star + 1) };
}

/** True when an object name is one the path means. */
export function matchesGcsPath(path: GcsPath, name: string): boolean {
  if (path.suffix === undefined) return name === path.prefix;
  return name.length >= path.prefix.length + path.suffix.length && name.startsWith(path.prefix) && name.endsWith(path.suffix);
}

export const gcsUri = (bucket: string, name: string) => `gs://${bucket}/${name}`;
