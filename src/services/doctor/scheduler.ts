import { cloudEnv, type Backends } from '../../backends/factory.ts';
import type { ResolvedEnv } from '../../config/workspace.ts';
import { schedulerRunPermission } from '../schedules/cloud-jobs.ts';
import { fixOf, message, type Check } from './check.ts';

const NAME = 'scheduler';

/**
 * Whether the scheduler's ticks will be let through: its service account needs
 * run.jobs.runWithOverrides on the environment's job, asked as that account (setup checks the same).
 */
export async function schedulerCheck(env: ResolvedEnv, backends: Backends, add: (c: Check) => void): Promise<void> {
  const cloud = cloudEnv(env);
  if (!cloud || !backends.runPlatform) return;
  if (!cloud.settings.job || !(cloud.settings.scheduler_service_account ?? cloud.settings.service_account)) {
    add({
      name: NAME,
      status: 'skip',
      detail: 'no job or service_account (or scheduler_service_account) for this environment in convergence.yaml: no scheduler to check',
    });
    return;
  }
  const platform = await backends.runPlatform();
  try {
    const permission = await schedulerRunPermission(cloud, platform);
    add(
      permission.granted
        ? {
            name: NAME,
            status: 'pass',
            detail: `${permission.serviceAccount} may start Cloud Run job ${permission.job} with overrides (run.jobs.runWithOverrides)`,
          }
        : {
            name: NAME,
            status: 'fail',
            detail: `${permission.serviceAccount} lacks run.jobs.runWithOverrides on Cloud Run job ${permission.job}: every scheduler tick would be refused`,
            fix: permission.grant,
          },
    );
  } catch (err) {
    add({ name: NAME, status: 'fail', detail: message(err), fix: fixOf(err, 'deploy the job first (`convergence deploy`)') });
  } finally {
    await platform.close();
  }
}
