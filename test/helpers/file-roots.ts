/** Lists folders or gs:// prefixes under `file_roots` of one environment of a test workspace's convergence.yaml. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';

export async function listFileRoots(root: string, roots: string[], env = 'local'): Promise<void> {
  const file = path.join(root, 'convergence.yaml');
  const doc = parseDocument(await readFile(file, 'utf8'));
  doc.setIn(['environments', env, 'file_roots'], roots);
  await writeFile(file, doc.toString());
}
