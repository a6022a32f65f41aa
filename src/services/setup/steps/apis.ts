import type { ServiceUsage } from '../../../backends/service-usage/port.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/**
 * The Google APIs the product calls, directly or through the services it deploys: Cloud Run and
 * Cloud Build for deploy, the registry its images go to, Secret Manager, BigQuery, KMS, Scheduler,
 * Storage, Logging, Monitoring and Pub/Sub for the work itself, and IAM, IAM Credentials, Resource
 * Manager and Service Usage for setup's own accounts, grants and impersonation.
 */
export const REQUIRED_APIS = [
  'run',
  'cloudbuild',
  'artifactregistry',
  'secretmanager',
  'bigquery',
  'cloudkms',
  'cloudscheduler',
  'storage',
  'logging',
  'monitoring',
  'pubsub',
  'iam',
  'iamcredentials',
  'cloudresourcemanager',
  'serviceusage',
].map((api) => `${api}.googleapis.com`);

/** The service id a planned change's resource (projects/P/services/ID) names. */
const serviceOf = (change: PlannedChange) => change.resource.slice(change.resource.lastIndexOf('/') + 1);

async function withServiceUsage<T>(setup: SetupContext, use: (usage: ServiceUsage) => Promise<T>): Promise<T> {
  const usage = await setup.ctx.backends.serviceUsage!();
  try {
    return await use(usage);
  } finally {
    await usage.close();
  }
}

/** Service Usage: the required APIs the project has not enabled, each one a planned change. */
export const apisStep: SetupStep = {
  id: 'apis',
  title: 'Enable APIs',
  plan: (setup) =>
    withServiceUsage(setup, async (usage) =>
      (await usage.disabled(REQUIRED_APIS)).map((api) => ({
        action: 'enable' as const,
        resource: `projects/${setup.project}/services/${api}`,
        detail: `enable ${api}`,
      })),
    ),
  async apply(setup, changes) {
    const services = changes.filter((change) => change.action === 'enable').map(serviceOf);
    if (services.length === 0) return;
    // Enabling an enabled API changes nothing, so a rerun after a half-applied batch just finishes it.
    await withServiceUsage(setup, (usage) => usage.enable(services));
  },
};
