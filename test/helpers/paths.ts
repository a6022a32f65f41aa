import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the convergence package (where package.json, bin/ and dist/ live). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js');
export const MANIFEST = path.join(REPO_ROOT, 'oclif.manifest.json');
