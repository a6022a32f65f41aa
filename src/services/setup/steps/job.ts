import type { RunPlatform } from '../../../backends/run-platform/port.ts';
import { followWithJob } from '../../deploy/job.ts';
import { settingsDiff, wantedJobSettings } from '../../deploy/settings.ts';
import type { PlannedChange, SetupContext } from '../step.ts';
import type { RegisteredStep } from './index.ts';

/**
 * What Cloud Scheduler's account needs on the job: its ticks start it with container overrides
 * (run.jobs.runWithOverrides), and this predefined role holds that and run.jobs.run, nothing more.
 */
const SCHEDULER_JOB_ROLE = 'roles/run.jobsExecutorWithOverrides';

async function withPlatform<T>(setup: SetupContext, work: (platform: RunPlatform) => Promise<T>): Promise<T> {
  const platform = await setup.ctx.backends.runPlatform!();
  try {
    return await work(platform);
  } finally {
    await platform.close();
  }
}

const jobResource = (setup: SetupContext, job: string) => `projects/${setup.project}/locations/${setup.env.settings.region}/jobs/${job}`;
const schedulerMember = (setup: SetupContext) => `serviceAccount:${setup.names.schedulerAccount}`;

/** Why setup leaves the job alone: without an image there is nothing to run yet. */
function jobSkipReason(setup: SetupContext): string | undefined {
  return setup.env.settings.image ? undefined : 'skipped: set image in convergence.yaml or run deploy';
}

async function planJob(setup: SetupContext): Promise<PlannedChange[]> {
  const { settings } = setup.env;
  if (!settings.image || !settings.job) return [];
  const { job, image } = { job: settings.job, image: settings.image };
  const resource = jobResource(setup, job);
  const grant: PlannedChange = { action: 'grant', resource, detail: `${SCHEDULER_JOB_ROLE} to ${schedulerMember(setup)}` };
  return withPlatform(setup, async (platform) => {
    const current = await platform.getJob(job);
    if (!current) return [{ action: 'create', resource, detail: `Cloud Run job ${job} on ${image}` }, grant];
    const changes: PlannedChange[] = [];
    const differences = settingsDiff(current, wantedJobSettings(settings, image));
    if (differences.length > 0) {
      const detail = differences.map((c) => `${c.setting}: ${String(c.current ?? '(none)')} → ${String(c.wanted)}`).join(', ');
      changes.push({ action: 'update', resource, detail });
    }
    const members = await platform.jobRoleMembers(job, SCHEDULER_JOB_ROLE);
    if (!members.includes(schedulerMember(setup))) changes.push(grant);
    return changes;
  });
}

/** The job first (as deploy makes it), then the scheduler's right to start it with overrides. */
async function applyJob(setup: SetupContext): Promise<void> {
  const { image, job } = setup.env.settings;
  if (!image || !job) return;
  await withPlatform(setup, async (platform) => {
    await followWithJob(platform, setup.env.settings, image);
    await platform.grantJobRole(job, SCHEDULER_JOB_ROLE, schedulerMember(setup));
  });
}

/** The pipeline's Cloud Run job, as `deploy` creates it (same image, account, resources), startable by the scheduler. */
export const jobStep: RegisteredStep = {
  id: 'job',
  title: 'Create the Cloud Run job',
  skipped: jobSkipReason,
  doctorChecks: ['cloud run job', 'scheduler'],
  plan: planJob,
  apply: applyJob,
};
