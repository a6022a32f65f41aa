import type { CloudEnv } from '../../backends/factory.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import type { SetupNames } from './step.ts';

/** The convergence.yaml keys setup fills in when the environment leaves them out. */
type RecordedSetting =
  'service_account' | 'job_service_account' | 'scheduler_service_account' | 'kms_key' | 'state_bucket' | 'service' | 'job';

/** A setting setup will write into convergence.yaml so later commands use the names it created. */
export interface MissingSetting {
  key: RecordedSetting;
  value: string;
}

const accountEmail = (id: string, project: string) => `${id}@${project}.iam.gserviceaccount.com`;

/** LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[:tag|@digest] → projects/PROJECT/locations/LOCATION/repositories/REPOSITORY. */
function registryOfImage(image: string | undefined): string | undefined {
  const match = /^([a-z0-9-]+)-docker\.pkg\.dev\/([^/]+)\/([^/]+)\/[^/]/.exec(image ?? '');
  if (!match) return undefined;
  const [, location, project, repository] = match;
  return `projects/${project}/locations/${location}/repositories/${repository}`;
}

/** The names setup creates or refers to: an explicit setting wins, else the seeds' default for the environment. */
export function setupNames(env: CloudEnv, project: string): SetupNames {
  const { settings, name } = env;
  return {
    apiAccount: settings.service_account ?? accountEmail(`convergence-api-${name}`, project),
    jobAccount: settings.job_service_account ?? accountEmail(`convergence-job-${name}`, project),
    schedulerAccount: settings.scheduler_service_account ?? accountEmail(`convergence-sched-${name}`, project),
    kmsKey:
      settings.kms_key ?? `projects/${project}/locations/${settings.region}/keyRings/convergence-${name}/cryptoKeys/api-key-encryption`,
    stateBucket: settings.state_bucket ?? `${project}-convergence-state-${name}`,
    registry: registryOfImage(settings.image) ?? `projects/${project}/locations/${settings.region}/repositories/convergence`,
    adminKeySecret: `admin-api-key-${name}`,
  };
}

/** The Cloud Run service and job names: the settings, else convergence-api-<env> and convergence-pipeline-<env>. */
function runNames(env: CloudEnv): { service: string; job: string } {
  return { service: env.settings.service ?? `convergence-api-${env.name}`, job: env.settings.job ?? `convergence-pipeline-${env.name}` };
}

/** The settings the environment lacks, with the value setup uses for each, in convergence.yaml's order. */
export function missingSettings(env: CloudEnv, names: SetupNames): MissingSetting[] {
  const { service, job } = runNames(env);
  const wanted: MissingSetting[] = [
    { key: 'kms_key', value: names.kmsKey },
    { key: 'state_bucket', value: names.stateBucket },
    { key: 'service', value: service },
    { key: 'job', value: job },
    { key: 'service_account', value: names.apiAccount },
    { key: 'job_service_account', value: names.jobAccount },
    { key: 'scheduler_service_account', value: names.schedulerAccount },
  ];
  return wanted.filter(({ key }) => !env.settings[key]);
}

/** The environment as it is once the missing settings are written, so the steps see every name. */
export function withNames(env: CloudEnv, names: SetupNames, project: string): CloudEnv {
  const filled: Partial<GcpEnvironment> = Object.fromEntries(missingSettings(env, names).map(({ key, value }) => [key, value]));
  return { ...env, settings: { ...env.settings, project, ...filled } };
}
