import type { Storage } from '@google-cloud/storage';
import type { ResolvedEnv, Workspace } from '../config/workspace.ts';
import { ConvergenceError, ExitCode } from '../lib/errors.ts';
import type { Buckets } from './buckets/port.ts';
import type { IamAdmin } from './iam-admin/port.ts';
import type { KeyRing } from './keyring/port.ts';
import type { KmsAdmin } from './kms-admin/port.ts';
import type { Lock } from './lock/port.ts';
import type { Monitoring } from './monitoring/port.ts';
import type { ArtifactRegistry } from './artifact-registry/port.ts';
import type { ServiceUsage } from './service-usage/port.ts';
import type { RunLogs } from './logs/port.ts';
import type { RunPlatform } from './run-platform/port.ts';
import type { Notifier, NotifierTarget } from './notify/port.ts';
import type { ProjectIam } from './project-iam/port.ts';
import type { LocalRunner } from './schedule/local.ts';
import type { Schedule } from './schedule/port.ts';
import type { SecretStore } from './secrets/port.ts';
import type { Warehouse } from './warehouse/port.ts';

/** An environment on Google Cloud, with its convergence.yaml settings. */
export type CloudEnv = Extract<ResolvedEnv, { backend: 'gcp' }>;

/** The cloud environment `env` is, or undefined for the local one (which has no Cloud Run and no Cloud Scheduler). */
export function cloudEnv(env: ResolvedEnv): CloudEnv | undefined {
  return env.backend === 'gcp' ? env : undefined;
}

/** Settings a piece of work needs from a cloud environment; convergence.yaml may leave them out. */
export type RequiredSetting = 'kms_key' | 'state_bucket' | 'service' | 'job' | 'service_account';

/**
 * The one check of a required environment setting: CONFIG_MISSING (exit 2) naming the
 * convergence.yaml key, and what needs it.
 */
export function requiredSetting(env: CloudEnv, key: RequiredSetting, what: string): string {
  const value = env.settings[key];
  if (!value) {
    throw new ConvergenceError('CONFIG_MISSING', ExitCode.usage, `environment "${env.name}" has no ${key} (needed for ${what})`, {
      suggestion: `set environments.${env.name}.${key} in convergence.yaml`,
      data: { key: `environments.${env.name}.${key}` },
    });
  }
  return value;
}

/**
 * Picks the adapters of an environment. Each adapter module is imported only when first asked
 * for, so a command that never touches the warehouse never loads DuckDB or a Google client.
 */
export interface Backends {
  readonly env: ResolvedEnv;
  warehouse(): Promise<Warehouse>;
  /**
   * The warehouse a tenant's pipeline work runs on. With `tenant_service_account` set for a cloud
   * environment it acts as that tenant's service account, so dataset IAM bounds what its SQL can
   * reach; otherwise it is `warehouse()`.
   */
  tenantWarehouse(tenantId: string): Promise<Warehouse>;
  /**
   * Cloud Storage for reading a tenant's gs:// file sources: as the tenant's service account where
   * the environment sets `tenant_service_account` (bucket IAM then bounds what it can list), else
   * with the environment's credentials. Which objects may be named at all is file_roots' business.
   */
  tenantStorage(tenantId: string): Promise<Storage>;
  keyring(): Promise<KeyRing>;
  secrets(): Promise<SecretStore>;
  lock(): Promise<Lock>;
  /**
   * Cloud Run, for deploy, rollback and remote runs: a new adapter on its own clients, which the
   * caller closes. Undefined where the environment has no run platform (local).
   */
  readonly runPlatform: (() => Promise<RunPlatform>) | undefined;
  /**
   * What runs' containers logged (Cloud Logging): a new adapter on its own clients, which the
   * caller closes. Undefined where the environment has no log store (local: step logs only).
   */
  readonly runLogs: (() => Promise<RunLogs>) | undefined;
  /**
   * Log-based metrics, alert policies, notification channels and uptime checks (Cloud Logging and
   * Cloud Monitoring): a new adapter on its own clients, which the caller closes. Undefined on local.
   */
  readonly monitoring: (() => Promise<Monitoring>) | undefined;
  /** Service accounts (IAM v1), for setup: a new adapter on its own clients, which the caller closes. Undefined on local. */
  readonly iamAdmin: (() => Promise<IamAdmin>) | undefined;
  /** The project's IAM policy (Resource Manager), for setup: a new adapter on its own clients, which the caller closes. Undefined on local. */
  readonly projectIam: (() => Promise<ProjectIam>) | undefined;
  /** Enabled APIs (Service Usage), for setup: a new adapter on its own clients, which the caller closes. Undefined on local. */
  readonly serviceUsage: (() => Promise<ServiceUsage>) | undefined;
  /** Artifact Registry repositories, for setup: a new adapter on its own clients, which the caller closes. Undefined on local. */
  readonly artifactRegistry: (() => Promise<ArtifactRegistry>) | undefined;
  /** Cloud KMS key rings, keys and key IAM, for setup: a new adapter on its own clients, which the caller closes. Undefined on local. */
  readonly kmsAdmin: (() => Promise<KmsAdmin>) | undefined;
  /** Cloud Storage buckets and bucket IAM, for setup: a new adapter on its own clients, which the caller closes. Undefined on local. */
  readonly buckets: (() => Promise<Buckets>) | undefined;
  /**
   * The environment's cron jobs: a new adapter, which the caller closes. `runners` do a job's work
   * in process, by full job name, where the environment has no scheduler (local).
   */
  schedule(runners: ReadonlyMap<string, LocalRunner>): Promise<Schedule>;
  /** The sender of one notification target: webhook, Slack, or a Pub/Sub topic of a cloud environment. */
  notifier(target: NotifierTarget): Promise<Notifier>;
  close(): Promise<void>;
}

/** The HTTP notifiers, the same in every environment. */
async function httpNotifier(target: Exclude<NotifierTarget, { type: 'pubsub' }>): Promise<Notifier> {
  if (target.type === 'slack') {
    const { SlackNotifier } = await import('./notify/slack.ts');
    return new SlackNotifier(target);
  }
  const { WebhookNotifier } = await import('./notify/webhook.ts');
  return new WebhookNotifier(target);
}

export function createBackends(workspace: Workspace, env: ResolvedEnv): Backends {
  const cache = new Map<string, Promise<unknown>>();
  const once = <T>(name: string, make: () => Promise<T>): Promise<T> => {
    let value = cache.get(name) as Promise<T> | undefined;
    if (!value) {
      value = make();
      cache.set(name, value);
    }
    return value;
  };
  const files = () =>
    once('files', async () => {
      const { FileSecretStore } = await import('./secrets/files.ts');
      return new FileSecretStore({ workspaceRoot: workspace.root, systemDir: `${env.stateDir}/secrets` });
    });
  if (env.backend === 'local') {
    const warehouse = () =>
      once('warehouse', async () => {
        const { DuckDbWarehouse } = await import('./warehouse/duckdb/index.ts');
        return new DuckDbWarehouse({ file: `${env.stateDir}/warehouse.duckdb` });
      });
    return {
      env,
      warehouse,
      tenantWarehouse: () => warehouse(),
      // A local environment has no project and no tenant accounts: the operator's own credentials.
      tenantStorage: () =>
        once('storage', async () => {
          const { storageForSources } = await import('./gcp/storage.ts');
          return storageForSources();
        }),
      keyring: () =>
        once('keyring', async () => {
          const { LocalKeyRing } = await import('./keyring/local-aes.ts');
          return new LocalKeyRing({ keyFile: `${env.stateDir}/keyring.key` });
        }),
      secrets: files,
      lock: () =>
        once('lock', async () => {
          const { FileLock } = await import('./lock/files.ts');
          return new FileLock({ dir: `${env.stateDir}/locks` });
        }),
      runPlatform: undefined,
      runLogs: undefined,
      monitoring: undefined,
      iamAdmin: undefined,
      projectIam: undefined,
      serviceUsage: undefined,
      artifactRegistry: undefined,
      kmsAdmin: undefined,
      buckets: undefined,
      schedule: async (runners) => {
        const { LocalSchedule } = await import('./schedule/local.ts');
        return new LocalSchedule({ envName: env.name, runners });
      },
      notifier: async (target) => {
        if (target.type !== 'pubsub') return httpNotifier(target);
        throw new ConvergenceError('CONFIG_MISSING', ExitCode.usage, `environment "${env.name}" is local: it has no Pub/Sub topics`, {
          suggestion: 'send pubsub notifications from a Google Cloud environment, or use a webhook target here',
        });
      },
      close: async () => {
        const warehouse = cache.get('warehouse') as Promise<Warehouse> | undefined;
        if (warehouse) await (await warehouse.catch(() => undefined))?.close();
      },
    };
  }

  const settings = env.settings;
  const clients = once('clients', async () => {
    const { createGcpClients, gcpTarget } = await import('./gcp/clients.ts');
    return createGcpClients(gcpTarget(settings));
  });
  const required = (key: RequiredSetting, what: string): string => requiredSetting(env, key, what);
  /** Clients of their own, for an adapter its caller closes. */
  const ownClients = async () => {
    const { createGcpClients, gcpTarget } = await import('./gcp/clients.ts');
    return createGcpClients(gcpTarget(settings));
  };
  const warehouse = () =>
    once('warehouse', async () => {
      const { BigQueryWarehouse } = await import('./warehouse/bigquery/index.ts');
      const c = await clients;
      return new BigQueryWarehouse({ client: await c.bigquery(), project: c.target.project, location: c.target.location });
    });
  const template = settings.tenant_service_account;
  return {
    env,
    warehouse,
    tenantWarehouse: (tenantId) =>
      template
        ? once(`warehouse:${tenantId}`, async () => {
            const [{ BigQueryWarehouse }, { tenantServiceAccount }] = await Promise.all([
              import('./warehouse/bigquery/index.ts'),
              import('./gcp/clients.ts'),
            ]);
            const c = await clients;
            const client = await c.bigqueryAs(tenantServiceAccount(template, tenantId));
            return new BigQueryWarehouse({ client, project: c.target.project, location: c.target.location });
          })
        : warehouse(),
    tenantStorage: async (tenantId) => {
      const c = await clients;
      if (!template) return c.storage();
      const { tenantServiceAccount } = await import('./gcp/clients.ts');
      return c.storageAs(tenantServiceAccount(template, tenantId));
    },
    keyring: () =>
      once('keyring', async () => {
        const keyName = required('kms_key', 'encrypting API keys and credentials with Cloud KMS');
        const { KmsKeyRing } = await import('./keyring/kms.ts');
        return new KmsKeyRing({ client: await (await clients).kms(), keyName });
      }),
    secrets: () =>
      once('secrets', async () => {
        const { SecretManagerStore } = await import('./secrets/secret-manager.ts');
        const c = await clients;
        return new SecretManagerStore({ client: await c.secretManager(), project: c.target.project, files: await files() });
      }),
    lock: () =>
      once('lock', async () => {
        const bucket = required('state_bucket', 'run locks in Cloud Storage');
        const { GcsLock } = await import('./lock/gcs.ts');
        return new GcsLock({ storage: await (await clients).storage(), bucket });
      }),
    runPlatform: async () => {
      const { GcpRunPlatform } = await import('./run-platform/gcp.ts');
      return new GcpRunPlatform(await ownClients());
    },
    runLogs: async () => {
      const { GcpRunLogs } = await import('./logs/gcp.ts');
      return new GcpRunLogs(await ownClients());
    },
    monitoring: async () => {
      const { GcpMonitoring } = await import('./monitoring/gcp.ts');
      return new GcpMonitoring(await ownClients());
    },
    iamAdmin: async () => {
      const { GcpIamAdmin } = await import('./iam-admin/gcp.ts');
      return new GcpIamAdmin(await ownClients());
    },
    projectIam: async () => {
      const { GcpProjectIam } = await import('./project-iam/gcp.ts');
      return new GcpProjectIam(await ownClients());
    },
    serviceUsage: async () => {
      const { GcpServiceUsage } = await import('./service-usage/gcp.ts');
      return new GcpServiceUsage(await ownClients());
    },
    artifactRegistry: async () => {
      const { GcpArtifactRegistry } = await import('./artifact-registry/gcp.ts');
      return new GcpArtifactRegistry(await ownClients());
    },
    kmsAdmin: async () => {
      const { GcpKmsAdmin } = await import('./kms-admin/gcp.ts');
      return new GcpKmsAdmin(await ownClients());
    },
    buckets: async () => {
      const { GcpBuckets } = await import('./buckets/gcp.ts');
      return new GcpBuckets(await ownClients());
    },
    schedule: async () => {
      const { GcpSchedule } = await import('./schedule/gcp.ts');
      const own = await ownClients();
      return new GcpSchedule({
        client: await own.scheduler(),
        project: own.target.project,
        region: own.target.region,
        onClose: () => own.close(),
      });
    },
    notifier: async (target) => {
      if (target.type !== 'pubsub') return httpNotifier(target);
      const { PubSubNotifier } = await import('./notify/pubsub.ts');
      return new PubSubNotifier({ client: await (await clients).pubsub(), topic: target.topic });
    },
    close: async () => {
      const warehouse = cache.get('warehouse') as Promise<Warehouse> | undefined;
      if (warehouse) await (await warehouse.catch(() => undefined))?.close();
      if (cache.has('clients')) await (await clients).close();
    },
  };
}
