import type { JobSettings, JobState, ServiceSettings } from './port.ts';

/*
 * Service and job settings as Cloud Run Admin API v2 spells them. Reads accept enums as names
 * (GET) and as numbers (operation results), and durations as { seconds } with string or number.
 */
type Loose = Record<string, unknown>;

const INGRESS_BY_NUMBER: Record<number, string> = {
  1: 'INGRESS_TRAFFIC_ALL',
  2: 'INGRESS_TRAFFIC_INTERNAL_ONLY',
  3: 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER',
};
const ingressName = (value: unknown) => (typeof value === 'number' ? INGRESS_BY_NUMBER[value] : value ? String(value) : undefined);
const durationSeconds = (value: unknown): number | undefined => {
  const seconds = (value as { seconds?: unknown } | null | undefined)?.seconds;
  return seconds === undefined || seconds === null ? undefined : Number(seconds);
};
const limitsOf = (container: Loose | undefined) => ((container?.resources as Loose | undefined)?.limits as Loose | undefined) ?? {};
const defined = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

/** The settings a Service message has now. */
export function serviceSettingsOf(raw: Loose): ServiceSettings {
  const template = (raw.template as Loose | undefined) ?? {};
  const container = ((template.containers as Loose[] | undefined) ?? [])[0];
  const limits = limitsOf(container);
  const scaling = (template.scaling as Loose | undefined) ?? {};
  return defined({
    serviceAccount: template.serviceAccount ? String(template.serviceAccount) : undefined,
    cpu: limits.cpu ? String(limits.cpu) : undefined,
    memory: limits.memory ? String(limits.memory) : undefined,
    minInstances: scaling.minInstanceCount === undefined ? undefined : Number(scaling.minInstanceCount),
    maxInstances: scaling.maxInstanceCount === undefined ? undefined : Number(scaling.maxInstanceCount),
    concurrency: template.maxInstanceRequestConcurrency ? Number(template.maxInstanceRequestConcurrency) : undefined,
    timeoutSeconds: durationSeconds(template.timeout),
    ingress: ingressName(raw.ingress),
    public: Boolean(raw.invokerIamDisabled),
  });
}

/** The first container's resource limits with the wanted cpu and memory. */
function withLimits(container: Loose, cpu: string | undefined, memory: string | undefined): Loose {
  if (!cpu && !memory) return container;
  const resources = { ...((container.resources as Loose | undefined) ?? {}) };
  resources.limits = { ...limitsOf(container), ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) };
  return { ...container, resources };
}

/** The revision template with the service settings applied; `containers[0]` is already the new one. */
export function applyTemplateSettings(template: Loose, settings: ServiceSettings | undefined): Loose {
  if (!settings) return template;
  const out = { ...template };
  const containers = ((out.containers as Loose[] | undefined) ?? [{}]).map((c) => ({ ...c }));
  containers[0] = withLimits(containers[0] ?? {}, settings.cpu, settings.memory);
  out.containers = containers;
  if (settings.serviceAccount) out.serviceAccount = settings.serviceAccount;
  if (settings.minInstances !== undefined || settings.maxInstances !== undefined) {
    out.scaling = {
      ...((out.scaling as Loose | undefined) ?? {}),
      ...(settings.minInstances !== undefined ? { minInstanceCount: settings.minInstances } : {}),
      ...(settings.maxInstances !== undefined ? { maxInstanceCount: settings.maxInstances } : {}),
    };
  }
  if (settings.concurrency !== undefined) out.maxInstanceRequestConcurrency = settings.concurrency;
  if (settings.timeoutSeconds !== undefined) out.timeout = { seconds: settings.timeoutSeconds };
  return out;
}

/** Service-level fields (ingress, invoker IAM) and the update-mask paths that carry them. */
export function serviceLevelFields(settings: ServiceSettings | undefined): { fields: Loose; paths: string[] } {
  const fields: Loose = {};
  if (settings?.ingress) fields.ingress = settings.ingress;
  if (settings?.public !== undefined) fields.invokerIamDisabled = settings.public;
  const paths = [...(fields.ingress ? ['ingress'] : []), ...(settings?.public !== undefined ? ['invoker_iam_disabled'] : [])];
  return { fields, paths };
}

/** The job as deploy sees it: image and settings of its task template. */
export function jobStateOf(raw: Loose): JobState {
  const task = (((raw.template as Loose | undefined)?.template as Loose | undefined) ?? {}) as Loose;
  const container = ((task.containers as Loose[] | undefined) ?? [])[0];
  const limits = limitsOf(container);
  return defined({
    name: String(raw.name ?? '')
      .split('/')
      .pop()!,
    etag: String(raw.etag ?? ''),
    image: container?.image ? String(container.image) : '',
    serviceAccount: task.serviceAccount ? String(task.serviceAccount) : undefined,
    cpu: limits.cpu ? String(limits.cpu) : undefined,
    memory: limits.memory ? String(limits.memory) : undefined,
    taskTimeoutSeconds: durationSeconds(task.timeout),
    maxRetries: task.maxRetries === undefined || task.maxRetries === null ? undefined : Number(task.maxRetries),
  });
}

/** The Job message's `template` with the wanted image and settings; what is not wanted stays. */
export function jobTemplate(current: Loose | undefined, settings: JobSettings): Loose {
  const execution = { ...((current?.template as Loose | undefined) ?? {}) };
  const task = { ...((execution.template as Loose | undefined) ?? {}) };
  const containers = ((task.containers as Loose[] | undefined) ?? [{}]).map((c) => ({ ...c }));
  containers[0] = withLimits({ ...(containers[0] ?? {}), image: settings.image }, settings.cpu, settings.memory);
  task.containers = containers;
  if (settings.serviceAccount) task.serviceAccount = settings.serviceAccount;
  if (settings.taskTimeoutSeconds !== undefined) task.timeout = { seconds: settings.taskTimeoutSeconds };
  if (settings.maxRetries !== undefined) task.maxRetries = settings.maxRetries;
  execution.template = task;
  return execution;
}
