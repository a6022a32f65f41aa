/** The four port contracts against the embedded (local) adapters, each in a fresh temp folder. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalKeyRing } from '../../src/backends/keyring/local-aes.ts';
import { FileLock } from '../../src/backends/lock/files.ts';
import { FileSecretStore } from '../../src/backends/secrets/files.ts';
import { DuckDbWarehouse } from '../../src/backends/warehouse/duckdb/index.ts';
import { keyringContract } from '../contracts/keyring.contract.ts';
import { lockContract } from '../contracts/lock.contract.ts';
import { secretsContract } from '../contracts/secrets.contract.ts';
import { loadContract } from '../contracts/load.contract.ts';
import { warehouseContract } from '../contracts/warehouse.contract.ts';
import { viewContract } from '../contracts/view.contract.ts';

async function tempDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'convergence-contract-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

warehouseContract('DuckDB file', async () => {
  const { dir, cleanup } = await tempDir();
  return { subject: new DuckDbWarehouse({ file: path.join(dir, 'state', 'warehouse.duckdb') }), cleanup };
});

keyringContract('local AES-256-GCM', async () => {
  const { dir, cleanup } = await tempDir();
  return { subject: new LocalKeyRing({ keyFile: path.join(dir, '.convergence', 'keyring.key') }), cleanup };
});

secretsContract('files', async () => {
  const { dir, cleanup } = await tempDir();
  return { subject: new FileSecretStore({ workspaceRoot: dir, systemDir: path.join(dir, '.convergence', 'secrets') }), cleanup };
});

lockContract('lock files', async () => {
  const { dir, cleanup } = await tempDir();
  return { subject: new FileLock({ dir: path.join(dir, '.convergence', 'locks') }), cleanup };
});

loadContract('DuckDB file', async () => {
  const { dir, cleanup } = await tempDir();
  return { subject: new DuckDbWarehouse({ file: path.join(dir, 'state', 'warehouse.duckdb') }), cleanup };
});

viewContract('DuckDB file', async () => {
  const { dir, cleanup } = await tempDir();
  return { subject: new DuckDbWarehouse({ file: path.join(dir, 'state', 'warehouse.duckdb') }), cleanup };
});
