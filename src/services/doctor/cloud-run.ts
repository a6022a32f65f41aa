import type { Backends } from '../../backends/factory.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import { servingRevision } from '../deploy/common.ts';
import { fixOf, message, type Check } from './check.ts';

const NAME = 'cloud run job';

/**
 * The pipeline job runs what the service serves: `deploy` and `rollback` keep its image on the
 * serving revision's, so a difference means someone changed one of them by hand (or an older
 * deploy predates the job following the service), and remote runs and scheduler ticks run other
 * code than the API.
 */
export async function cloudRunJobCheck(
  envName: string,
  settings: GcpEnvironment,
  backends: Backends,
  add: (c: Check) => void,
): Promise<void> {
  if (!settings.job || !settings.service || !backends.runPlatform) {
    add({ name: NAME, status: 'skip', detail: 'needs `service` and `job` set for the environment in convergence.yaml' });
    return;
  }
  const redeploy = `run \`convergence deploy --env ${envName}\` (it puts the job on the serving image)`;
  try {
    const platform = await backends.runPlatform();
    try {
      const service = await platform.getService(settings.service);
      const job = await platform.getJob(settings.job);
      if (!job) {
        add({ name: NAME, status: 'warn', detail: `job ${settings.job} does not exist`, fix: redeploy });
        return;
      }
      const serving = servingRevision(service);
      if (!serving) {
        add({
          name: NAME,
          status: 'pass',
          detail: `job ${settings.job} runs ${job.image}; service ${settings.service} serves nothing yet`,
        });
        return;
      }
      const image = (await platform.listRevisions(settings.service)).find((r) => r.name === serving)?.image;
      if (image && image !== job.image) {
        add({
          name: NAME,
          status: 'warn',
          detail: `job ${settings.job} runs ${job.image}, but the serving revision ${serving} runs ${image}`,
          fix: redeploy,
        });
        return;
      }
      add({ name: NAME, status: 'pass', detail: `job ${settings.job} runs the serving image ${job.image}` });
    } finally {
      await platform.close();
    }
  } catch (err) {
    add({ name: NAME, status: 'fail', detail: message(err), fix: fixOf(err, 'grant roles/run.viewer on the job and the service') });
  }
}
