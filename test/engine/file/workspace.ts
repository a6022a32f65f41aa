import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { sourceSchema, type SourceConfig, type TableSchemaFile } from '../../../src/domain/pipeline.ts';
import { stageFileSource, type FileScope, type StageFileOptions } from '../../../src/engine/sources/file/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { readStaged } from '../staging/read-staged.ts';

export type FileSource = Extract<SourceConfig, { type: 'file' }>;

/** The tenant whose data folder, data/acme_corp/, the file-source tests read. */
export const TENANT = 'acme_corp';

/** A file of the tenant's data folder. */
export const inData = (root: string, name: string) => path.join(root, 'data', TENANT, name);

/** A workspace folder with the given files in the tenant's data folder (names relative to it). */
export async function workspace(files: Record<string, string | Buffer>): Promise<string> {
  const root = await makeTempDir('file-source');
  await mkdir(path.join(root, 'data', TENANT), { recursive: true });
  for (const [name, body] of Object.entries(files)) {
    await mkdir(path.dirname(inData(root, name)), { recursive: true });
    await writeFile(inData(root, name), body);
  }
  return root;
}

/** Where the tenant may read in `root`: its data folder, plus any roots given. */
export const scopeOf = (root: string, extra: Partial<FileScope> = {}): FileScope => ({
  workspaceRoot: root,
  tenantId: TENANT,
  roots: [],
  denied: [path.join(root, '.convergence')],
  objectRoots: [],
  deniedBuckets: [],
  ...extra,
});

/** A file source as the YAML loader would give it (defaults applied). */
export function fileSource(fields: Partial<FileSource> & Pick<FileSource, 'path' | 'format'>): FileSource {
  return sourceSchema.parse({ source_id: 'files', type: 'file', ...fields }) as FileSource;
}

export async function stageIn(
  root: string,
  source: Partial<FileSource> & Pick<FileSource, 'path' | 'format'>,
  options: Partial<StageFileOptions> & { tableSchema?: TableSchemaFile } = {},
) {
  const staged = await stageFileSource(fileSource(source), {
    scope: scopeOf(root),
    stagingDir: path.join(root, '.convergence', 'staging', 'run', 'step'),
    ...options,
  });
  return { staged, rows: readStaged(staged.files) };
}
