import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { sourceSchema, type SourceConfig, type TableSchemaFile } from '../../../src/domain/pipeline.ts';
import { stageFileSource, type StageFileOptions } from '../../../src/engine/sources/file/index.ts';
import { makeTempDir } from '../../helpers/tmp.ts';
import { readStaged } from '../stage/read-staged.ts';

export type FileSource = Extract<SourceConfig, { type: 'file' }>;

/** A workspace folder with the given files (paths relative to its root). */
export async function workspace(files: Record<string, string | Buffer>): Promise<string> {
  const root = await makeTempDir('file-source');
  for (const [name, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await writeFile(path.join(root, name), body);
  }
  return root;
}

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
    workspaceRoot: root,
    stagingDir: path.join(root, '.convergence', 'staging', 'run', 'step'),
    ...options,
  });
  return { staged, rows: readStaged(staged.files) };
}
