import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Temp directories under os.tmpdir(), removed by cleanupAll() (call it from an `after` hook).
 * Set KEEP_TEST_DIRS=1 to keep them for inspection.
 */
const made = new Set<string>();

export async function makeTempDir(label = 'test'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `convergence-${label}-`));
  made.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  made.delete(dir);
  if (process.env.KEEP_TEST_DIRS === '1') return;
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export async function cleanupAll(): Promise<void> {
  await Promise.all([...made].map((dir) => removeTempDir(dir)));
}
