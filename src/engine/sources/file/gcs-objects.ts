import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { toConvergenceError } from '../../../backends/gcp/errors.ts';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { gcsUri, matchesGcsPath, type GcsPath } from './gcs-path.ts';
import { checkObjectPath } from './gcs-scope.ts';
import type { FileScope } from './scope.ts';
import type { InputFile } from './resolve.ts';

/** One object a gs:// path matched, at the generation listed. */
export interface SourceObject {
  bucket: string;
  name: string;
  /** GCS generation, as text (it exceeds 2^53). A rewrite of the object gets a new one. */
  generation: string;
  size: number;
}

const storageContext = (bucket: string) => ({
  what: `Cloud Storage bucket gs://${bucket}`,
  permission: 'storage.objects.list',
  role: 'roles/storage.objectViewer',
  resource: `gs://${bucket}`,
  api: 'storage.googleapis.com',
});

/**
 * Every object a gs:// path matches, sorted by name (the load order). The path is checked against
 * the tenant's gs:// roots first (gcs-scope.ts), then listed by its static prefix and filtered by the
 * one `*` here, so the same rule holds as in BigQuery's source URIs. None is an error
 * (SOURCE_NO_FILES, exit 3), as for a local path.
 */
export async function listSourceObjects(storage: Storage, pattern: string, scope: FileScope): Promise<SourceObject[]> {
  const gcsPath = checkObjectPath(pattern, scope);
  let listed;
  try {
    [listed] = await storage.bucket(gcsPath.bucket).getFiles({ prefix: gcsPath.prefix, autoPaginate: true });
  } catch (err) {
    const error = toConvergenceError(err, storageContext(gcsPath.bucket));
    if (error.code !== 'NOT_FOUND') throw error;
    throw new ConvergenceError(
      'SOURCE_NOT_FOUND',
      ExitCode.notFound,
      `file source path "${pattern}": bucket gs://${gcsPath.bucket} does not exist`,
      {
        suggestion: `check the bucket name in path:, and that the bucket is in the project you expect (\`gcloud storage buckets describe gs://${gcsPath.bucket}\`)`,
        cause: err,
      },
    );
  }
  const objects = listed
    .filter((file) => matchesGcsPath(gcsPath, file.name) && !file.name.endsWith('/'))
    .map((file) => ({
      bucket: gcsPath.bucket,
      name: file.name,
      generation: String(file.metadata.generation),
      size: Number(file.metadata.size ?? 0),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (objects.length === 0) throw noObjects(pattern, gcsPath);
  return objects;
}

function noObjects(pattern: string, gcsPath: GcsPath): ConvergenceError {
  return new ConvergenceError('SOURCE_NO_FILES', ExitCode.pipelineFailed, `no object matches "${pattern}"`, {
    suggestion: `check the path; list what is there with \`gcloud storage ls ${gcsUri(gcsPath.bucket, gcsPath.prefix)}*\``,
    data: { pattern },
  });
}

/**
 * Downloads objects into `folder` (the run's staging folder, removed after the run), each at the
 * generation listed, so a rewrite between listing and download cannot mix versions: it fails the
 * run instead, and the next run sees the new generation. The files keep their gs:// URI as label,
 * which is what `__source_file` records.
 */
export async function downloadSourceObjects(storage: Storage, objects: SourceObject[], folder: string): Promise<InputFile[]> {
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const files: InputFile[] = [];
  for (const [index, object] of objects.entries()) {
    const destination = path.join(folder, `object-${String(index).padStart(5, '0')}${path.extname(object.name)}`);
    try {
      await storage
        .bucket(object.bucket)
        .file(object.name, { generation: Number(object.generation) })
        .download({ destination, validation: 'crc32c' });
    } catch (err) {
      throw toConvergenceError(err, {
        ...storageContext(object.bucket),
        what: gcsUri(object.bucket, object.name),
        permission: 'storage.objects.get',
      });
    }
    files.push({ absolute: destination, label: gcsUri(object.bucket, object.name), size: object.size });
  }
  return files;
}
