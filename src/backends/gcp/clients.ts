import type { AuthClient } from 'google-auth-library';
import type { GcpEnvironment } from '../../config/schema.ts';
import { usageError } from '../../lib/errors.ts';
import { applicationDefaultAuth, applicationDefaultAuthOptions } from './credentials.ts';
import { credentialsError } from './errors.ts';

/**
 * The one place Google clients are made. Real use: Application Default Credentials and the
 * env's project. Tests and emulators: endpoint overrides from the project's own variables, with
 * a pass-through auth client so no credential lookup ever leaves the machine:
 *
 *   CONVERGENCE_BIGQUERY_ENDPOINT  http://127.0.0.1:PORT  (BigQuery REST)
 *   CONVERGENCE_STORAGE_ENDPOINT   http://127.0.0.1:PORT  (Cloud Storage JSON API)
 *   CONVERGENCE_GRPC_ENDPOINT      127.0.0.1:PORT         (KMS, Secret Manager, Cloud Run, Scheduler, Logging, Service Usage, Artifact Registry, Resource Manager)
 *   CONVERGENCE_IAM_CREDENTIALS_ENDPOINT  http://127.0.0.1:PORT  (IAM Credentials, for impersonation)
 *   CONVERGENCE_IAM_ENDPOINT       http://127.0.0.1:PORT  (IAM v1 REST: service accounts)
 *
 * Every client module is imported on first use, so `--help` never loads gRPC.
 */
export const ENDPOINT_VARS = {
  bigquery: 'CONVERGENCE_BIGQUERY_ENDPOINT',
  storage: 'CONVERGENCE_STORAGE_ENDPOINT',
  grpc: 'CONVERGENCE_GRPC_ENDPOINT',
  iamCredentials: 'CONVERGENCE_IAM_CREDENTIALS_ENDPOINT',
  iam: 'CONVERGENCE_IAM_ENDPOINT',
} as const;

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
/** A service account id: what may stand before the @ of its email. */
const ACCOUNT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;

/**
 * The service account a tenant's jobs run as, from the environment's `tenant_service_account`:
 * `{tenant}` becomes the tenant id with "_" as "-" (account ids allow only a-z, 0-9 and "-").
 */
export function tenantServiceAccount(template: string, tenantId: string): string {
  const account = template.replaceAll('{tenant}', tenantId.replaceAll('_', '-'));
  const id = account.slice(0, account.indexOf('@'));
  if (!ACCOUNT_ID.test(id)) {
    throw usageError(
      `tenant_service_account gives tenant ${tenantId} the account ${account}, whose id "${id}" is not a valid service account id`,
      {
        suggestion:
          'service account ids are 6-30 characters: a lowercase letter, then lowercase letters, digits or "-"; shorten the template',
      },
    );
  }
  return account;
}

type Vars = Record<string, string | undefined>;

export interface GcpTarget {
  project: string;
  location: string;
  region: string;
}

export function gcpTarget(settings: GcpEnvironment, vars: Vars = process.env): GcpTarget {
  const project = settings.project || vars.GOOGLE_CLOUD_PROJECT;
  if (!project) throw usageError('no Google Cloud project', { suggestion: 'set `project:` for the environment in convergence.yaml' });
  return { project, location: settings.location, region: settings.region };
}

async function passThroughAuth() {
  const { PassThroughClient } = await import('google-auth-library');
  return new PassThroughClient();
}

/** gax options for a gRPC client: the real endpoint with ADC, or the override without TLS or auth. */
async function grpcOptions(target: GcpTarget, vars: Vars) {
  const override = vars[ENDPOINT_VARS.grpc];
  if (!override) return { projectId: target.project, ...(await applicationDefaultAuthOptions(vars)) };
  const match = /^([^:]+):(\d+)$/.exec(override);
  if (!match) throw usageError(`${ENDPOINT_VARS.grpc}=${override} is not host:port`);
  const grpc = await import('@grpc/grpc-js');
  return {
    projectId: target.project,
    apiEndpoint: match[1]!,
    port: Number(match[2]),
    sslCreds: grpc.credentials.createInsecure(),
    authClient: await passThroughAuth(),
  };
}

/**
 * Credentials of another service account, minted through IAM Credentials from the environment's
 * own (ADC, or the pass-through client when the API endpoint is a local override).
 */
async function impersonated(serviceAccount: string, overridden: boolean, target: GcpTarget, vars: Vars) {
  const { Impersonated } = await import('google-auth-library');
  const iam = vars[ENDPOINT_VARS.iamCredentials];
  const sourceClient = overridden ? await passThroughAuth() : await adcClient(target, vars);
  return withoutUntrustedConfigWarning(
    () =>
      new Impersonated({
        sourceClient,
        targetPrincipal: serviceAccount,
        targetScopes: [CLOUD_PLATFORM],
        lifetime: 3600,
        ...(iam ? { endpoint: iam } : {}),
      }),
  );
}

/**
 * google-auth-library prints, for every Impersonated client, a console warning that the constructor
 * does not validate a credential configuration taken from an untrusted source. Ours is not one: the
 * account comes from convergence.yaml and the source credentials are the environment's own. Left
 * in, the warning is a plain-text line on every command's stderr and in the middle of the
 * headless job's JSON logs. Other warnings pass; construction is synchronous, so nothing else
 * runs while the filter is in place.
 */
function withoutUntrustedConfigWarning<T>(make: () => T): T {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).startsWith('The `Impersonated` constructor does not validate')) warn(...args);
  };
  try {
    return make();
  } finally {
    console.warn = warn;
  }
}

/**
 * The ADC client for the REST libraries, loaded up front: without credentials BigQuery and
 * Storage would send their requests unauthenticated (for public resources) and fail later with a
 * network or 401 error that hides the cause.
 */
async function adcClient(target: GcpTarget, vars: Vars) {
  try {
    return await (await applicationDefaultAuth([CLOUD_PLATFORM], vars)).getClient();
  } catch (err) {
    throw credentialsError(err, { what: 'Google Cloud APIs', project: target.project }) ?? err;
  }
}

/**
 * Loads a gRPC client's credentials before it is handed out. The generated clients start their
 * own loading on the first call with `initialize().catch(err => { throw err })`, which turns
 * missing credentials into an unhandled rejection next to the call's own error; loaded here, the
 * failure is one ConvergenceError and that background promise never rejects.
 */
async function ready<T extends { initialize(): Promise<unknown> }>(client: T, target: GcpTarget): Promise<T> {
  try {
    await client.initialize();
  } catch (err) {
    throw credentialsError(err, { what: 'Google Cloud APIs', project: target.project }) ?? err;
  }
  return client;
}

/** How a REST client authenticates, given whether its endpoint is a local override. */
type RestAuth = (overridden: boolean, target: GcpTarget, vars: Vars) => Promise<AuthClient>;

/** The environment's own credentials: ADC, or the pass-through client for a local override. */
const ownCredentials: RestAuth = async (overridden, target, vars) => (overridden ? passThroughAuth() : adcClient(target, vars));

/** Another service account's, impersonated from the environment's own. */
const actingAs =
  (serviceAccount: string): RestAuth =>
  (overridden, target, vars) =>
    impersonated(serviceAccount, overridden, target, vars);

async function bigqueryClient(target: GcpTarget, vars: Vars, auth: RestAuth) {
  const { BigQuery } = await import('@google-cloud/bigquery');
  const endpoint = vars[ENDPOINT_VARS.bigquery];
  return new BigQuery({
    projectId: target.project,
    location: target.location,
    ...(endpoint ? { apiEndpoint: endpoint } : {}),
    authClient: await auth(Boolean(endpoint), target, vars),
  });
}

async function storageClient(target: GcpTarget, vars: Vars, auth: RestAuth) {
  const { Storage } = await import('@google-cloud/storage');
  const endpoint = vars[ENDPOINT_VARS.storage];
  return new Storage({
    projectId: target.project,
    ...(endpoint ? { apiEndpoint: endpoint, useAuthWithCustomEndpoint: true } : {}),
    authClient: await auth(Boolean(endpoint), target, vars),
  });
}

export function createGcpClients(target: GcpTarget, vars: Vars = process.env) {
  const cache = new Map<string, Promise<unknown>>();
  const once = <T>(name: string, make: () => Promise<T>): Promise<T> => {
    if (!cache.has(name)) cache.set(name, make());
    return cache.get(name) as Promise<T>;
  };
  return {
    target,
    /** True when clients talk to local fakes or emulators rather than Google. */
    overridden: Object.values(ENDPOINT_VARS).some((name) => Boolean(vars[name])),
    bigquery: () => once('bigquery', () => bigqueryClient(target, vars, ownCredentials)),
    /**
     * BigQuery as another service account: the environment's credentials mint short-lived tokens
     * for it through IAM Credentials (they need roles/iam.serviceAccountTokenCreator on it).
     */
    bigqueryAs: (serviceAccount: string) =>
      once(`bigquery:${serviceAccount}`, () => bigqueryClient(target, vars, actingAs(serviceAccount))),
    storage: () => once('storage', () => storageClient(target, vars, ownCredentials)),
    /** Cloud Storage as another service account, impersonated as in bigqueryAs (a tenant reading its gs:// sources). */
    storageAs: (serviceAccount: string) => once(`storage:${serviceAccount}`, () => storageClient(target, vars, actingAs(serviceAccount))),
    kms: () =>
      once('kms', async () => {
        const { KeyManagementServiceClient } = await import('@google-cloud/kms');
        return ready(new KeyManagementServiceClient(await grpcOptions(target, vars)), target);
      }),
    secretManager: () =>
      once('secretManager', async () => {
        const { SecretManagerServiceClient } = await import('@google-cloud/secret-manager');
        return ready(new SecretManagerServiceClient(await grpcOptions(target, vars)), target);
      }),
    runServices: () =>
      once('runServices', async () => {
        const { ServicesClient } = await import('@google-cloud/run');
        return ready(new ServicesClient(await grpcOptions(target, vars)), target);
      }),
    runRevisions: () =>
      once('runRevisions', async () => {
        const { RevisionsClient } = await import('@google-cloud/run');
        return ready(new RevisionsClient(await grpcOptions(target, vars)), target);
      }),
    runJobs: () =>
      once('runJobs', async () => {
        const { JobsClient } = await import('@google-cloud/run');
        return ready(new JobsClient(await grpcOptions(target, vars)), target);
      }),
    runExecutions: () =>
      once('runExecutions', async () => {
        const { ExecutionsClient } = await import('@google-cloud/run');
        return ready(new ExecutionsClient(await grpcOptions(target, vars)), target);
      }),
    /**
     * Cloud Run jobs as another service account, impersonated through IAM Credentials as in
     * bigqueryAs: asks what that account may do (the scheduler's, for instance). `callOptions`
     * carries its token on each call where the channel cannot: grpc-js refuses call credentials
     * on the insecure channel to local fakes.
     */
    runJobsAs: (serviceAccount: string) =>
      once(`runJobs:${serviceAccount}`, async () => {
        const { JobsClient } = await import('@google-cloud/run');
        const overridden = Boolean(vars[ENDPOINT_VARS.grpc]);
        const authClient = await impersonated(serviceAccount, overridden, target, vars);
        if (!overridden) {
          // Minted now, not inside the first call: credentials Google refuses are then the one
          // clean error (exit 7) every other client gives, before any request goes to Run.
          await authClient.getAccessToken().catch((err: unknown) => {
            throw credentialsError(err, { what: 'Google Cloud APIs', project: target.project }) ?? err;
          });
          return { client: await ready(new JobsClient({ projectId: target.project, authClient }), target), callOptions: async () => ({}) };
        }
        const callOptions = async () => {
          const authorization = (await authClient.getRequestHeaders()).get('authorization') ?? '';
          return { otherArgs: { headers: { authorization } } };
        };
        return { client: new JobsClient(await grpcOptions(target, vars)), callOptions };
      }),
    /**
     * Pub/Sub, for notification topics. Its client reads the endpoint as host:port and goes
     * without TLS for any host outside googleapis.com, so the override is handed over whole.
     */
    pubsub: () =>
      once('pubsub', async () => {
        const { PubSub } = await import('@google-cloud/pubsub');
        // Pub/Sub's gax pins its own google-auth-library: the same options, typed against the other copy.
        type PubSubOptions = NonNullable<ConstructorParameters<typeof PubSub>[0]>;
        const options = await grpcOptions(target, vars);
        if (!('apiEndpoint' in options)) return new PubSub(options as PubSubOptions);
        return new PubSub({
          projectId: options.projectId,
          apiEndpoint: `${options.apiEndpoint}:${options.port}`,
          emulatorMode: true,
          authClient: options.authClient as PubSubOptions['authClient'],
        });
      }),
    scheduler: () =>
      once('scheduler', async () => {
        const { CloudSchedulerClient } = await import('@google-cloud/scheduler');
        return ready(new CloudSchedulerClient(await grpcOptions(target, vars)), target);
      }),
    /** Cloud Logging's LoggingServiceV2 (entries.list), the GAPIC client @google-cloud/logging ships as v2. */
    logEntries: () =>
      once('logEntries', async () => {
        const { v2 } = await import('@google-cloud/logging');
        const { LoggingServiceV2Client } = v2 as { LoggingServiceV2Client: new (options: object) => { initialize(): Promise<unknown> } };
        return ready(new LoggingServiceV2Client(await grpcOptions(target, vars)), target);
      }),
    alertPolicies: () =>
      once('alertPolicies', async () => {
        const { AlertPolicyServiceClient } = await import('@google-cloud/monitoring');
        return ready(new AlertPolicyServiceClient(await grpcOptions(target, vars)), target);
      }),
    notificationChannels: () =>
      once('notificationChannels', async () => {
        const { NotificationChannelServiceClient } = await import('@google-cloud/monitoring');
        return ready(new NotificationChannelServiceClient(await grpcOptions(target, vars)), target);
      }),
    uptimeChecks: () =>
      once('uptimeChecks', async () => {
        const { UptimeCheckServiceClient } = await import('@google-cloud/monitoring');
        return ready(new UptimeCheckServiceClient(await grpcOptions(target, vars)), target);
      }),
    /** Cloud Logging's MetricsServiceV2 (log-based metrics); the monitoring adapter types its calls. */
    logMetrics: () =>
      once('logMetrics', async () => {
        const { v2 } = await import('@google-cloud/logging');
        const { MetricsServiceV2Client } = v2 as { MetricsServiceV2Client: new (options: object) => { initialize(): Promise<unknown> } };
        return ready(new MetricsServiceV2Client(await grpcOptions(target, vars)), target);
      }),
    /** Service Usage (enabling APIs); its gax pins its own google-auth-library, so the options are typed against that copy. */
    serviceUsage: () =>
      once('serviceUsage', async () => {
        const { ServiceUsageClient } = await import('@google-cloud/service-usage');
        type ServiceUsageOptions = NonNullable<ConstructorParameters<typeof ServiceUsageClient>[0]>;
        return ready(new ServiceUsageClient((await grpcOptions(target, vars)) as ServiceUsageOptions), target);
      }),
    artifactRegistry: () =>
      once('artifactRegistry', async () => {
        const { ArtifactRegistryClient } = await import('@google-cloud/artifact-registry');
        return ready(new ArtifactRegistryClient(await grpcOptions(target, vars)), target);
      }),
    /** IAM v1 (service accounts), a REST-only API: the official @googleapis/iam client, rootUrl pointed at the override. */
    iamAdmin: () =>
      once('iamAdmin', async () => {
        const { iam } = await import('@googleapis/iam');
        const endpoint = vars[ENDPOINT_VARS.iam];
        // googleapis-common pins its own google-auth-library; it only calls the client's request().
        type IamOptions = Extract<Parameters<typeof iam>[0], { version: 'v1' }>;
        const auth = (await ownCredentials(Boolean(endpoint), target, vars)) as unknown as IamOptions['auth'];
        return iam({ version: 'v1', auth, ...(endpoint ? { rootUrl: `${endpoint.replace(/\/+$/, '')}/` } : {}) });
      }),
    /** Resource Manager v3 projects (the project IAM policy); its gax pins its own google-auth-library, as Pub/Sub's does. */
    projects: () =>
      once('projects', async () => {
        const { ProjectsClient } = await import('@google-cloud/resource-manager');
        type ProjectsOptions = NonNullable<ConstructorParameters<typeof ProjectsClient>[0]>;
        return ready(new ProjectsClient((await grpcOptions(target, vars)) as ProjectsOptions), target);
      }),
    close: async () => {
      // A client that never came up (no credentials) has nothing to close.
      const made = await Promise.allSettled(cache.values());
      for (const client of made.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []))) {
        // runJobsAs caches the client together with its call options.
        const closable = ((client as { client?: unknown }).client ?? client) as { close?: () => Promise<void> };
        if (typeof closable.close === 'function') await closable.close().catch(() => undefined);
      }
    },
  };
}

export type GcpClients = ReturnType<typeof createGcpClients>;
