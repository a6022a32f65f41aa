import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Backends } from '../backends/factory.ts';
import { loadWorkspace, resolveEnv, type ResolvedEnv, type Workspace } from '../config/workspace.ts';
import { isConvergenceError } from '../lib/errors.ts';
import { envFlag } from './context.ts';
import { GITIGNORE_ENTRIES } from './init.ts';
import { appliedSchemaVersion, LATEST_SCHEMA_VERSION } from './metadata/migrations.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';
import { contextFor } from './open-context.ts';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';
export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}
export interface DoctorReport {
  env: string | null;
  ok: boolean;
  checks: Check[];
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Runs every check even when an earlier one fails, so one run lists everything to fix. A check
 * whose prerequisite failed is reported as skipped rather than failing again for the same cause.
 */
export async function runDoctor(cwd: string, envFlag: string | undefined): Promise<DoctorReport> {
  const checks: Check[] = [];
  const add = (check: Check) => checks.push(check);

  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const nodeOk = major > 22 || (major === 22 && minor >= 13);
  add({
    name: 'node',
    status: nodeOk ? 'pass' : 'fail',
    detail: `Node ${process.versions.node}`,
    ...(nodeOk ? {} : { fix: 'install Node >= 22.13 (the setup script fetches one into .tools/)' }),
  });

  let workspace: Workspace | undefined;
  try {
    workspace = await loadWorkspace(cwd);
    add({ name: 'workspace', status: 'pass', detail: workspace.root });
    add({ name: 'config', status: 'pass', detail: `${path.relative(cwd, workspace.configFile) || 'convergence.yaml'} is valid` });
  } catch (err) {
    const noWorkspace = isConvergenceError(err) && err.code === 'USAGE';
    add({
      name: 'workspace',
      status: noWorkspace ? 'fail' : 'pass',
      detail: noWorkspace ? message(err) : 'found',
      ...(noWorkspace ? { fix: 'run `convergence init` or cd into a workspace' } : {}),
    });
    if (!noWorkspace) add({ name: 'config', status: 'fail', detail: message(err), fix: 'correct convergence.yaml at the position shown' });
  }

  let env: ResolvedEnv | undefined;
  if (workspace) {
    try {
      env = resolveEnv(workspace, envFlag);
      add({ name: 'environment', status: 'pass', detail: `${env.name} (${env.backend})` });
    } catch (err) {
      add({ name: 'environment', status: 'fail', detail: message(err), fix: isConvergenceError(err) ? (err.suggestion ?? '') : '' });
    }
  }

  if (!workspace || !env) {
    for (const name of ['warehouse', 'schema', 'keyring', 'secrets', 'gitignore'])
      add({ name, status: 'skip', detail: 'needs a valid workspace' });
    return { env: env?.name ?? null, ok: false, checks };
  }

  const { backends, close } = contextFor(workspace, env);
  try {
    await warehouseChecks(backends, env, add);
    await keyringCheck(backends, add);
    if (env.backend === 'local') {
      await secretPermissionsCheck(workspace.root, env.stateDir, add);
      await gitignoreCheck(workspace.root, add);
    } else {
      const { gcpChecks } = await import('./doctor-gcp.ts');
      await gcpChecks(env.name, env.settings, backends, add);
    }
  } finally {
    await close();
  }
  return { env: env.name, ok: checks.every((c) => c.status !== 'fail'), checks };
}

async function warehouseChecks(backends: Backends, env: ResolvedEnv, add: (c: Check) => void) {
  try {
    const started = performance.now();
    const warehouse = await backends.warehouse();
    await warehouse.datasetExists('tenants');
    add({ name: 'warehouse', status: 'pass', detail: `${warehouse.describe} reachable in ${Math.round(performance.now() - started)} ms` });
    const version = await appliedSchemaVersion(warehouse);
    const bootstrapCmd = `convergence bootstrap${envFlag(env.name)}`;
    if (version === LATEST_SCHEMA_VERSION) add({ name: 'schema', status: 'pass', detail: `metadata schema version ${version} (current)` });
    else if (version === 0)
      add({ name: 'schema', status: 'fail', detail: 'metadata dataset not bootstrapped', fix: `run \`${bootstrapCmd}\`` });
    else if (version < LATEST_SCHEMA_VERSION)
      add({
        name: 'schema',
        status: 'fail',
        detail: `metadata schema version ${version}, this CLI expects ${LATEST_SCHEMA_VERSION}`,
        fix: `run \`${bootstrapCmd}\` to apply the migrations`,
      });
    else
      add({
        name: 'schema',
        status: 'fail',
        detail: `metadata schema version ${version} is newer than this CLI (${LATEST_SCHEMA_VERSION})`,
        fix: 'upgrade convergence',
      });
  } catch (err) {
    add({
      name: 'warehouse',
      status: 'fail',
      detail: message(err),
      fix: isConvergenceError(err) && err.suggestion ? err.suggestion : 'check the warehouse settings of this environment',
    });
    add({ name: 'schema', status: 'skip', detail: 'needs the warehouse' });
  }
}

async function keyringCheck(backends: Backends, add: (c: Check) => void) {
  try {
    const keyring = await backends.keyring();
    await keyring.check();
    add({ name: 'keyring', status: 'pass', detail: `${keyring.describe}: encrypt/decrypt round trip ok` });
  } catch (err) {
    // A keyring not created yet is only a problem once something was encrypted with it.
    if (isConvergenceError(err) && err.data?.missing === true && !(await hasEncryptedValues(backends))) {
      add({ name: 'keyring', status: 'pass', detail: 'not created yet; it is created on first use (nothing is encrypted yet)' });
      return;
    }
    add({
      name: 'keyring',
      status: 'fail',
      detail: message(err),
      fix: isConvergenceError(err) && err.suggestion ? err.suggestion : 'restore the keyring from backup',
    });
  }
}

/** Whether any API key or credential was stored encrypted; true when that cannot be told. */
async function hasEncryptedValues(backends: Backends): Promise<boolean> {
  try {
    const warehouse = await backends.warehouse();
    for (const table of [T.apiKeys, T.credentials]) {
      if ((await warehouse.tableExists(METADATA_DATASET, table)) && (await warehouse.count(METADATA_DATASET, table)) > 0) return true;
    }
    return false;
  } catch {
    return true;
  }
}

async function secretPermissionsCheck(root: string, stateDir: string, add: (c: Check) => void) {
  const dirs = [path.join(stateDir, 'secrets')];
  const tenants = await readdir(path.join(root, 'configs'), { withFileTypes: true }).catch(() => []);
  for (const t of tenants) if (t.isDirectory()) dirs.push(path.join(root, 'configs', t.name, 'secrets'));
  const loose: string[] = [];
  let count = 0;
  for (const dir of dirs) {
    const files = await readdir(dir).catch(() => []);
    for (const file of files) {
      const full = path.join(dir, file);
      const info = await stat(full).catch(() => undefined);
      if (!info?.isFile()) continue;
      count++;
      if ((info.mode & 0o077) !== 0) loose.push(`${path.relative(root, full)} (${(info.mode & 0o777).toString(8)})`);
    }
  }
  if (loose.length)
    add({
      name: 'secrets',
      status: 'fail',
      detail: `readable by others: ${loose.join(', ')}`,
      fix: `chmod 600 ${loose.map((l) => l.split(' ')[0]).join(' ')}`,
    });
  else add({ name: 'secrets', status: 'pass', detail: `${count} secret file(s), all 0600` });
}

async function gitignoreCheck(root: string, add: (c: Check) => void) {
  const text = await readFile(path.join(root, '.gitignore'), 'utf8').catch(() => '');
  const lines = new Set(text.split(/\r?\n/).map((l) => l.trim()));
  const missing = GITIGNORE_ENTRIES.filter((e) => !lines.has(e));
  if (missing.length)
    add({
      name: 'gitignore',
      status: 'warn',
      detail: `.gitignore lacks ${missing.join(', ')}`,
      fix: 'run `convergence init` again (it only adds what is missing)',
    });
  else add({ name: 'gitignore', status: 'pass', detail: 'secrets and local state are git-ignored' });
}
