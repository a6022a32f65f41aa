import path from 'node:path';
import { loadWorkspace, resolveEnv, type ResolvedEnv, type Workspace } from '../../config/workspace.ts';
import { ConvergenceError, ExitCode, isConvergenceError } from '../../lib/errors.ts';
import { contextFor } from '../open-context.ts';
import { keyringCheck, warehouseChecks } from './adapters.ts';
import { message, type Check } from './check.ts';
import { gitignoreCheck, secretPermissionsCheck } from './local.ts';

export interface DoctorReport {
  env: string | null;
  ok: boolean;
  checks: Check[];
}

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

  if (env.backend !== 'local') {
    const { CHECKS_NEEDING_CREDENTIALS, credentialsCheck } = await import('./gcp.ts');
    if (!(await credentialsCheck(env.settings, add))) {
      for (const name of CHECKS_NEEDING_CREDENTIALS)
        add({ name, status: 'skip', detail: 'needs Google credentials (see the credentials check)' });
      return { env: env.name, ok: false, checks };
    }
  }

  const { backends, close } = contextFor(workspace, env);
  try {
    await warehouseChecks(backends, env, add);
    await keyringCheck(backends, add);
    if (env.backend === 'local') {
      await secretPermissionsCheck(workspace.root, env.stateDir, add);
      await gitignoreCheck(workspace.root, add);
    } else {
      const { gcpChecks } = await import('./gcp.ts');
      await gcpChecks(env.name, env.settings, backends, add);
      await (await import('./scheduler.ts')).schedulerCheck(env, backends, add);
    }
  } finally {
    await close();
  }
  return { env: env.name, ok: checks.every((c) => c.status !== 'fail'), checks };
}

/**
 * The error a failed doctor run exits with: usage (2), or auth (7) when the credentials check
 * failed, since then that is the one thing to fix before anything else can be checked.
 */
export function doctorFailure(report: DoctorReport): ConvergenceError {
  const failed = report.checks.filter((c) => c.status === 'fail');
  const credentials = failed.find((c) => c.name === 'credentials');
  const names = failed.map((c) => c.name).join(', ');
  if (credentials) {
    return new ConvergenceError('DOCTOR_FAILED', ExitCode.auth, `${failed.length} check(s) failed: ${names}; ${credentials.detail}`, {
      suggestion: `${credentials.fix ?? 'set up Google credentials'}, then run \`convergence doctor\` again`,
      data: { report },
    });
  }
  return new ConvergenceError('DOCTOR_FAILED', ExitCode.usage, `${failed.length} check(s) failed: ${names}`, {
    suggestion: 'apply the fixes listed above and run `convergence doctor` again',
    data: { report },
  });
}
