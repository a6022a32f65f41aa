import type { JobSettings, JobState, ServiceSettings } from '../../backends/run-platform/port.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import { validationError } from '../../lib/errors.ts';

const INGRESS = {
  all: 'INGRESS_TRAFFIC_ALL',
  internal: 'INGRESS_TRAFFIC_INTERNAL_ONLY',
  'internal-and-cloud-load-balancing': 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER',
} as const;

/** 300s, 10m, 1h in seconds (convergence.yaml has checked the shape). */
function secondsOf(duration: string | undefined): number | undefined {
  const [, amount, unit] = /^(\d+)(s|m|h)$/.exec(duration ?? '') ?? [];
  if (amount === undefined) return undefined;
  return Number(amount) * (unit === 'h' ? 3600 : unit === 'm' ? 60 : 1);
}

/** What the environment wants of its service; keys it leaves out are not in the result. */
export function wantedServiceSettings(env: string, settings: GcpEnvironment): ServiceSettings {
  const { min_instances: min, max_instances: max } = settings;
  if (min !== undefined && max !== undefined && min > max) {
    throw validationError(`environments.${env}: min_instances (${min}) is more than max_instances (${max})`, {
      suggestion: 'lower min_instances or raise max_instances in convergence.yaml',
    });
  }
  return defined({
    serviceAccount: settings.service_account,
    cpu: settings.cpu,
    memory: settings.memory,
    minInstances: min,
    maxInstances: max,
    concurrency: settings.concurrency,
    timeoutSeconds: secondsOf(settings.timeout),
    ingress: settings.ingress && INGRESS[settings.ingress],
    public: settings.public,
  });
}

/** The pipeline job running `image` as its own account (job_service_account, else service_account), with the environment's resources, task timeout and retries. */
export function wantedJobSettings(settings: GcpEnvironment, image: string): JobSettings {
  return defined({
    image,
    serviceAccount: settings.job_service_account ?? settings.service_account,
    cpu: settings.cpu,
    memory: settings.memory,
    taskTimeoutSeconds: secondsOf(settings.task_timeout),
    maxRetries: settings.max_retries,
  });
}

/** One setting a deploy changes: what Run has now (undefined: unset or no such resource) and what it gets. */
export interface SettingChange {
  setting: string;
  current: unknown;
  wanted: unknown;
}

/** A CPU limit in cores: "1000m" and "1", "500m" and "0.5" are one limit spelled two ways. */
function cpuCores(limit: string): number {
  return limit.endsWith('m') ? Number(limit.slice(0, -1)) / 1000 : Number(limit);
}

/**
 * Whether Run's value already is the wanted one. A CPU limit is compared in cores, so a spelling
 * other than the one Run reports back is no change; what is sent stays as convergence.yaml has it.
 */
function sameSetting(setting: string, current: unknown, wanted: unknown): boolean {
  if (setting === 'cpu' && typeof current === 'string' && typeof wanted === 'string') return cpuCores(current) === cpuCores(wanted);
  return current === wanted;
}

/** The wanted settings that differ from the current ones. */
export function settingsDiff(
  current: ServiceSettings | Omit<JobState, 'name' | 'etag'> | undefined,
  wanted: ServiceSettings | JobSettings,
): SettingChange[] {
  const now = (current ?? {}) as Record<string, unknown>;
  return Object.entries(wanted)
    .filter(([setting, value]) => value !== undefined && !sameSetting(setting, now[setting], value))
    .map(([setting, value]) => ({ setting, current: now[setting], wanted: value }));
}

const defined = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
