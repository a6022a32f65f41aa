import { chmod, mkdir } from 'node:fs/promises';

/** Mode of local state files: the warehouse, locks, keys and staged data are the operator's alone. */
export const PRIVATE_FILE_MODE = 0o600;
const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` (and missing parents) readable by its owner only. An existing folder is narrowed
 * to 0700 too: a workspace made by an older version, or with a lax umask, must not stay open.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}
