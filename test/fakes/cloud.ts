/**
 * Every Google fake a cloud environment needs, started together, plus the convergence.yaml
 * environment and the variables that point the client factory at them. Tests that run commands
 * against `--env cloud` (in process or as a child process) start one of these.
 */
import './env-guard.ts';
import { ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { FakeBigQuery } from './bigquery/index.ts';
import { GcsFake } from './gcs/server.ts';
import { KmsFake } from './grpc/kms.ts';
import { LoggingFake } from './grpc/logging.ts';
import { LogMetricsFake } from './grpc/logging-metrics.ts';
import { MonitoringFake } from './grpc/monitoring.ts';
import { PubSubFake } from './grpc/pubsub.ts';
import { ResourceManagerFake } from './grpc/resource-manager.ts';
import { RunFake } from './grpc/run.ts';
import { runJobDispatcher, SchedulerFake } from './grpc/scheduler.ts';
import { SecretManagerFake } from './grpc/secret-manager.ts';
import { ServiceUsageFake } from './grpc/service-usage.ts';
import { ArtifactRegistryFake } from './grpc/artifact-registry.ts';
import { IamAdminFake } from './iam-admin-api.ts';
import { IamCredentialsFake } from './iam-credentials.ts';
import { startGrpcFake, type GrpcFake } from './grpc/server.ts';
import { fakeClientOptions } from './grpc/client-options.ts';

export const CLOUD_PROJECT = 'demo-project';
export const CLOUD_BUCKET = 'demo-project-convergence-state';
export const CLOUD_SERVICE = 'convergence-api-cloud';
/** The bucket tenants' gs:// file sources read, each tenant under its own prefix (file_roots). */
export const CLOUD_DATA_BUCKET = 'demo-project-tenant-exports';
export const CLOUD_KEY = `projects/${CLOUD_PROJECT}/locations/us-central1/keyRings/convergence/cryptoKeys/api-key-encryption`;

export interface CloudFakes {
  kms: KmsFake;
  secretManager: SecretManagerFake;
  run: RunFake;
  scheduler: SchedulerFake;
  /** Pub/Sub topics for notifications. */
  pubsub: PubSubFake;
  /** Cloud Logging entries; the Run fake forwards its job containers' output here. */
  logging: LoggingFake;
  /** Cloud Logging's log-based metrics. */
  logMetrics: LogMetricsFake;
  /** Cloud Monitoring: alert policies, notification channels, uptime checks (it knows logMetrics' metric types). */
  monitoring: MonitoringFake;
  /** Service Usage: the project starts with no API enabled, as a new one would for setup. */
  serviceUsage: ServiceUsageFake;
  /** Artifact Registry repositories (none at start). */
  artifactRegistry: ArtifactRegistryFake;
  grpc: GrpcFake;
  gcs: GcsFake;
  bigquery: FakeBigQuery;
  /** IAM v1 service accounts (REST); the project starts with none. */
  iamAdmin: IamAdminFake;
  /** Resource Manager: the project's IAM policy (empty at start). */
  resourceManager: ResourceManagerFake;
  /** IAM Credentials: tokens for the service accounts the CLI impersonates. */
  iamCredentials: IamCredentialsFake;
  /** Variables for the client factory; spread into process.env or a child's env. */
  vars: Record<string, string>;
  /** The `environments.<name>` entry of convergence.yaml for these fakes. */
  yaml(name?: string): string;
  stop(): Promise<void>;
}

/**
 * `pointProcess` sets the client factory's variables in this process (for in-process service
 * tests) and `stop()` puts the previous values back.
 */
export async function startCloudFakes(options: { pointProcess?: boolean } = {}): Promise<CloudFakes> {
  const kms = new KmsFake();
  kms.createKey(CLOUD_KEY);
  const secretManager = new SecretManagerFake({ projects: { [CLOUD_PROJECT]: '123456789012' } });
  const run = new RunFake();
  const scheduler = new SchedulerFake();
  const pubsub = new PubSubFake();
  const logging = new LoggingFake();
  run.forwardLogs(logging);
  const logMetrics = new LogMetricsFake();
  const monitoring = new MonitoringFake({ logMetrics });
  // Their operations are served from Run's store: one google.longrunning.Operations per server.
  const serviceUsage = new ServiceUsageFake({ projects: { [CLOUD_PROJECT]: '123456789012' }, operations: run.operations });
  const artifactRegistry = new ArtifactRegistryFake({ operations: run.operations });
  const iamAdmin = await IamAdminFake.start({ projects: [CLOUD_PROJECT] });
  // A binding may name only an account that exists, where the IAM fake knows the account's project.
  const resourceManager = new ResourceManagerFake({
    projects: [CLOUD_PROJECT],
    accountExists: (email) => {
      const project = /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(email)?.[1];
      return project && iamAdmin.knowsProject(project) ? iamAdmin.has(email) : undefined;
    },
  });
  const grpc = await startGrpcFake({
    kms,
    secretManager,
    run,
    scheduler,
    pubsub,
    logging,
    logMetrics,
    monitoring,
    serviceUsage,
    artifactRegistry,
    resourceManager,
  });
  const gcs = await GcsFake.start({ buckets: [CLOUD_BUCKET, CLOUD_DATA_BUCKET] });
  const bigquery = await FakeBigQuery.start({ projectId: CLOUD_PROJECT });
  // Load jobs with gs:// sourceUris read the GCS fake's objects, as BigQuery reads Cloud Storage.
  bigquery.readObjectsFrom(gcs);
  const iamCredentials = await IamCredentialsFake.start();
  // Scheduler ticks reach the Run fake as the job's service account, as Cloud Scheduler sends them.
  scheduler.dispatchTo(runJobDispatcher(grpc.address));
  const vars = {
    [ENDPOINT_VARS.grpc]: `127.0.0.1:${grpc.port}`,
    [ENDPOINT_VARS.storage]: gcs.endpoint,
    [ENDPOINT_VARS.bigquery]: bigquery.url,
    [ENDPOINT_VARS.iamCredentials]: iamCredentials.url,
    [ENDPOINT_VARS.iam]: iamAdmin.url,
    METADATA_SERVER_DETECTION: 'none',
    GCE_METADATA_HOST: '127.0.0.1:1',
  };
  const previous = new Map<string, string | undefined>();
  if (options.pointProcess) {
    for (const [name, value] of Object.entries(vars)) {
      previous.set(name, process.env[name]);
      process.env[name] = value;
    }
  }
  return {
    kms,
    secretManager,
    run,
    scheduler,
    pubsub,
    logging,
    logMetrics,
    monitoring,
    serviceUsage,
    artifactRegistry,
    grpc,
    gcs,
    bigquery,
    iamAdmin,
    resourceManager,
    iamCredentials,
    vars,
    yaml: (name = 'cloud') =>
      [
        `  ${name}:`,
        `    project: ${CLOUD_PROJECT}`,
        '    region: us-central1',
        '    location: US',
        `    kms_key: ${CLOUD_KEY}`,
        `    state_bucket: ${CLOUD_BUCKET}`,
        `    service: ${CLOUD_SERVICE}`,
        `    file_roots: ['gs://${CLOUD_DATA_BUCKET}/{tenant}/']`,
        '',
      ].join('\n'),
    stop: async () => {
      for (const [name, value] of previous) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await grpc.stop();
      await gcs.close();
      await bigquery.stop();
      await iamCredentials.close();
      await iamAdmin.close();
    },
  };
}

/** Creates the Cloud Run job that runs pipelines, as `gcloud run jobs create` would, through the official client. */
/** The environment's Cloud Run service, as a first deploy leaves it (tests that need it to exist before deploy runs). */
export async function createRunService(
  fakes: CloudFakes,
  image = 'us-docker.pkg.dev/demo-project/convergence/convergence:1',
): Promise<void> {
  const { ServicesClient } = await import('@google-cloud/run');
  const services = new ServicesClient(fakeClientOptions(fakes.grpc.port));
  try {
    const [operation] = await services.createService({
      parent: `projects/${CLOUD_PROJECT}/locations/us-central1`,
      serviceId: CLOUD_SERVICE,
      service: { template: { containers: [{ image }] } },
    });
    await operation.promise();
  } finally {
    await services.close();
  }
}

export async function createRunJob(
  fakes: CloudFakes,
  jobId: string,
  image = 'us-docker.pkg.dev/demo-project/convergence/convergence:1',
): Promise<void> {
  const { JobsClient } = await import('@google-cloud/run');
  const jobs = new JobsClient(fakeClientOptions(fakes.grpc.port));
  try {
    const [operation] = await jobs.createJob({
      parent: `projects/${CLOUD_PROJECT}/locations/us-central1`,
      jobId,
      job: { template: { template: { containers: [{ image }] } } },
    });
    await operation.promise();
  } finally {
    await jobs.close();
  }
}
