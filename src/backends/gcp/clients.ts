import type { GcpEnvironment } from '../../config/schema.ts';
import { usageError } from '../../lib/errors.ts';
import { applicationDefaultAuth, applicationDefaultAuthOptions } from './credentials.ts';

/**
 * The one place Google clients are made. Real use: Application Default Credentials and the
 * env's project. Tests and emulators: endpoint overrides from the project's own variables, with
 * a pass-through auth client so no credential lookup ever leaves the machine:
 *
 *   CONVERGENCE_BIGQUERY_ENDPOINT  http://127.0.0.1:PORT  (BigQuery REST)
 *   CONVERGENCE_STORAGE_ENDPOINT   http://127.0.0.1:PORT  (Cloud Storage JSON API)
 *   CONVERGENCE_GRPC_ENDPOINT      127.0.0.1:PORT         (KMS, Secret Manager, Cloud Run, Scheduler)
 *   CONVERGENCE_IAM_CREDENTIALS_ENDPOINT  http://127.0.0.1:PORT  (IAM Credentials, for impersonation)
 *
 * Every client module is imported on first use, so `--help` never loads gRPC.
 */
export const ENDPOINT_VARS = {
  bigquery: 'CONVERGENCE_BIGQUERY_ENDPOINT',
  storage: 'CONVERGENCE_STORAGE_ENDPOINT',
  grpc: 'CONVERGENCE_GRPC_ENDPOINT',
  iamCredentials: 'CONVERGENCE_IAM_CREDENTIALS_ENDPOINT',
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
    bigquery: () =>
      once('bigquery', async () => {
        const { BigQuery } = await import('@google-cloud/bigquery');
        const endpoint = vars[ENDPOINT_VARS.bigquery];
        return new BigQuery({
          projectId: target.project,
          location: target.location,
          ...(endpoint ? { apiEndpoint: endpoint, authClient: await passThroughAuth() } : await applicationDefaultAuthOptions(vars)),
        });
      }),
    /**
     * BigQuery as another service account: the environment's credentials mint short-lived tokens
     * for it through IAM Credentials (they need roles/iam.serviceAccountTokenCreator on it).
     */
    bigqueryAs: (serviceAccount: string) =>
      once(`bigquery:${serviceAccount}`, async () => {
        const [{ BigQuery }, { Impersonated }] = await Promise.all([import('@google-cloud/bigquery'), import('google-auth-library')]);
        const endpoint = vars[ENDPOINT_VARS.bigquery];
        const iam = vars[ENDPOINT_VARS.iamCredentials];
        const sourceClient = endpoint ? await passThroughAuth() : await (await applicationDefaultAuth([CLOUD_PLATFORM], vars)).getClient();
        const authClient = new Impersonated({
          sourceClient,
          targetPrincipal: serviceAccount,
          targetScopes: [CLOUD_PLATFORM],
          lifetime: 3600,
          ...(iam ? { endpoint: iam } : {}),
        });
        return new BigQuery({
          projectId: target.project,
          location: target.location,
          authClient,
          ...(endpoint ? { apiEndpoint: endpoint } : {}),
        });
      }),
    storage: () =>
      once('storage', async () => {
        const { Storage } = await import('@google-cloud/storage');
        const endpoint = vars[ENDPOINT_VARS.storage];
        return new Storage({
          projectId: target.project,
          ...(endpoint
            ? { apiEndpoint: endpoint, useAuthWithCustomEndpoint: true, authClient: await passThroughAuth() }
            : await applicationDefaultAuthOptions(vars)),
        });
      }),
    kms: () =>
      once('kms', async () => {
        const { KeyManagementServiceClient } = await import('@google-cloud/kms');
        return new KeyManagementServiceClient(await grpcOptions(target, vars));
      }),
    secretManager: () =>
      once('secretManager', async () => {
        const { SecretManagerServiceClient } = await import('@google-cloud/secret-manager');
        return new SecretManagerServiceClient(await grpcOptions(target, vars));
      }),
    runServices: () =>
      once('runServices', async () => {
        const { ServicesClient } = await import('@google-cloud/run');
        return new ServicesClient(await grpcOptions(target, vars));
      }),
    runRevisions: () =>
      once('runRevisions', async () => {
        const { RevisionsClient } = await import('@google-cloud/run');
        return new RevisionsClient(await grpcOptions(target, vars));
      }),
    runJobs: () =>
      once('runJobs', async () => {
        const { JobsClient } = await import('@google-cloud/run');
        return new JobsClient(await grpcOptions(target, vars));
      }),
    runExecutions: () =>
      once('runExecutions', async () => {
        const { ExecutionsClient } = await import('@google-cloud/run');
        return new ExecutionsClient(await grpcOptions(target, vars));
      }),
    scheduler: () =>
      once('scheduler', async () => {
        const { CloudSchedulerClient } = await import('@google-cloud/scheduler');
        return new CloudSchedulerClient(await grpcOptions(target, vars));
      }),
    close: async () => {
      for (const client of await Promise.all(cache.values())) {
        const closable = client as { close?: () => Promise<void> };
        if (typeof closable.close === 'function') await closable.close().catch(() => undefined);
      }
    },
  };
}

export type GcpClients = ReturnType<typeof createGcpClients>;
