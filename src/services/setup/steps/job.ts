import type { RunPlatform } from '../../../backends/run-platform/port.ts';
import { followWithJob } from '../../deploy/job.ts';
import { settingsDiff, wantedJobSettings } from '../../deploy/settings.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

async function withPlatform<T>(setup: SetupContext, work: (platform: RunPlatform) => Promise<T>): Promise<T> {
  const platform = await setup.ctx.backends.runPlatform!();
  try {
    return await work(platform);
  } finally {
    await platform.close();
  }
}

const jobResource = (setup: SetupContext, job: string) => `projects/${setup.project}/locations/${setup.env.settings.region}/jobs/${job}`;

/** The job setup puts in place, or why it leaves it: without an image there is nothing to run yet. */
export function jobSkipReason(setup: SetupContext): string | undefined {
  return setup.env.settings.image ? undefined : 'skipped: set image in convergence.yaml or run deploy';
}

async function planJob(setup: SetupContext): Promise<PlannedChange[]> {
  const { settings } = setup.env;
  if (!settings.image || !settings.job) return [];
  const { job, image } = { job: settings.job, image: settings.image };
  const current = await withPlatform(setup, (platform) => platform.getJob(job));
  const changes = settingsDiff(current, wantedJobSettings(settings, image));
  if (!current) return [{ action: 'create', resource: jobResource(setup, job), detail: `Cloud Run job ${job} on ${image}` }];
  if (changes.length === 0) return [];
  const detail = changes.map((c) => `${c.setting}: ${String(c.current ?? '(none)')} → ${String(c.wanted)}`).join(', ');
  return [{ action: 'update', resource: jobResource(setup, job), detail }];
}

/** The pipeline's Cloud Run job, as `deploy` creates it (same image, account, resources). */
export const jobStep: SetupStep & { skipped(setup: SetupContext): string | undefined } = {
  id: 'job',
  title: 'Create the Cloud Run job',
  skipped: jobSkipReason,
  plan: planJob,
  async apply(setup) {
    const { image } = setup.env.settings;
    if (!image) return;
    await withPlatform(setup, (platform) => followWithJob(platform, setup.env.settings, image));
  },
};
