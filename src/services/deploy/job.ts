import type { JobState, RunPlatform } from '../../backends/run-platform/port.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import { settingsDiff, wantedJobSettings, type SettingChange } from './settings.ts';

/** The environment's pipeline job as a deploy or rollback leaves it. */
export interface JobUpdate {
  job: string;
  /** False when the job did not exist and is (or, on a dry run, would be) created. */
  existed: boolean;
  changes: SettingChange[];
}

/**
 * Puts the environment's Cloud Run Job (the `job` key; none: nothing to do) on `image` with the
 * environment's account, resources, task timeout and retries, so `pipeline run --remote` and the
 * scheduler run what the service serves. validateOnly checks the change and makes none.
 */
export async function followWithJob(
  platform: RunPlatform,
  settings: GcpEnvironment,
  image: string,
  options: { validateOnly?: boolean } = {},
): Promise<JobUpdate | undefined> {
  if (!settings.job) return undefined;
  const wanted = wantedJobSettings(settings, image);
  const current: JobState | undefined = await platform.getJob(settings.job);
  const changes = settingsDiff(current, wanted);
  if (changes.length > 0) await platform.applyJob(settings.job, wanted, options);
  return { job: settings.job, existed: current !== undefined, changes };
}
