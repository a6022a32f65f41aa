import type { GcpClients } from '../gcp/clients.ts';
import { googleErrorFacts, GrpcCode, toConvergenceError } from '../gcp/errors.ts';
import { grantUnderEtag, type RaceRetry } from '../../domain/iam-policy.ts';
import { conflictError, notFoundError } from '../../lib/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import { applyTemplateSettings, jobStateOf, jobTemplate, serviceLevelFields, serviceSettingsOf } from './gcp-settings.ts';
import type {
  DeployRevisionRequest,
  DeployRevisionResult,
  ExecutionInfo,
  JobSettings,
  JobState,
  RevisionInfo,
  RunJobRequest,
  RunPlatform,
  ServiceState,
  SetTrafficOptions,
  TrafficChange,
  TrafficStatus,
  TrafficTarget,
} from './port.ts';
import { pinnedTraffic } from './port.ts';
import { servingSplit } from './serving-split.ts';

/*
 * Cloud Run Admin API v2 through @google-cloud/run. GETs answer enums as names, while
 * operation.promise() answers protobufjs messages with enums as numbers: every state read here
 * comes from a fresh GET after the operation, and the readers accept both spellings anyway.
 */
type Loose = Record<string, unknown>;

const LATEST = 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST';
const BY_REVISION = 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION';
const isLatest = (type: unknown) => type === LATEST || type === 1;
const CONDITION_STATE: Record<number, string> = {
  0: 'STATE_UNSPECIFIED',
  1: 'CONDITION_PENDING',
  2: 'CONDITION_RECONCILING',
  3: 'CONDITION_FAILED',
  4: 'CONDITION_SUCCEEDED',
};
const stateName = (state: unknown) => (typeof state === 'number' ? CONDITION_STATE[state] : String(state ?? ''));
const shortName = (name: unknown) =>
  String(name ?? '')
    .split('/')
    .pop() || undefined;
const seconds = (ts: unknown): number => {
  const t = (ts ?? {}) as { seconds?: unknown; nanos?: unknown };
  return Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6);
};

/** Stale-etag conflicts retried from a fresh GET before giving up. */
const ETAG_ATTEMPTS = 4;
/** Service reads remembered by etag. */
const READS_KEPT = 32;

/** A job's IAM policy as the Run client returns it. */
interface JobPolicy {
  bindings?: Array<{ role?: string | null; members?: string[] | null; condition?: unknown }> | null;
  etag?: Uint8Array | string | null;
  version?: number | null;
}

/**
 * The policy as read, with the bindings in the shape the grant merge reads; the etag, version and
 * every binding's other fields go back exactly as read.
 */
const grantable = (policy: JobPolicy) => ({
  ...policy,
  bindings: (policy.bindings ?? []).map((b) => ({ ...b, role: b.role ?? '', members: [...(b.members ?? [])] })),
});

/** Five read-modify-write cycles of a job's IAM policy, one right after the other, before a run of concurrent changes is reported. */
const JOB_POLICY_RACE: RaceRetry = {
  policy: { attempts: 5, baseDelayMs: 0, maxDelayMs: 0 },
  // Someone else changed the policy since it was read: start again from a fresh read.
  isConflict: (err) => googleErrorFacts(err).grpcCode === GrpcCode.ABORTED,
};

export class GcpRunPlatform implements RunPlatform {
  readonly #clients: GcpClients;
  readonly describe: string;
  /** Services as this adapter read them, by etag: what a traffic list given with an etag was computed from. */
  readonly #reads = new Map<string, ServiceState>();

  constructor(clients: GcpClients) {
    this.#clients = clients;
    this.describe = `Cloud Run (${clients.target.project}, ${clients.target.region})`;
  }

  #location(): string {
    return `projects/${this.#clients.target.project}/locations/${this.#clients.target.region}`;
  }
  #serviceName(service: string): string {
    return `${this.#location()}/services/${service}`;
  }
  #fail(err: unknown, what: string, permission?: string): never {
    throw toConvergenceError(err, {
      what,
      ...(permission
        ? { permission, role: permission.endsWith('.get') || permission.endsWith('.list') ? 'roles/run.viewer' : 'roles/run.developer' }
        : {}),
      api: 'run.googleapis.com',
      project: this.#clients.target.project,
    });
  }

  async #rawService(service: string): Promise<Loose | undefined> {
    const client = await this.#clients.runServices();
    try {
      const [found] = await retryTransient(() => client.getService({ name: this.#serviceName(service) }, { retry: null } as never));
      return found as unknown as Loose;
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return undefined;
      this.#fail(err, `Cloud Run service ${service}`, 'run.services.get');
    }
  }

  async getService(service: string): Promise<ServiceState | undefined> {
    const raw = await this.#rawService(service);
    return raw && this.#remember(toServiceState(raw));
  }

  #remember(state: ServiceState): ServiceState {
    this.#reads.set(state.etag, state);
    // A long-lived adapter (serve) keeps only the recent reads.
    for (const oldest of this.#reads.keys()) {
      if (this.#reads.size <= READS_KEPT) break;
      this.#reads.delete(oldest);
    }
    return state;
  }

  async listRevisions(service: string): Promise<RevisionInfo[]> {
    const client = await this.#clients.runRevisions();
    try {
      const [revisions] = await retryTransient(() =>
        // Every page, at Run's own page size: gax warns on stderr when a pageSize comes with autoPaginate.
        client.listRevisions({ parent: this.#serviceName(service) }, { autoPaginate: true, retry: null } as never),
      );
      return (revisions as unknown as Loose[]).map(toRevisionInfo).sort((a, b) => b.createTime.getTime() - a.createTime.getTime());
    } catch (err) {
      this.#fail(err, `revisions of Cloud Run service ${service}`, 'run.revisions.list');
    }
  }

  async deployRevision(service: string, request: DeployRevisionRequest): Promise<DeployRevisionResult> {
    const client = await this.#clients.runServices();
    const current = await this.#rawService(service);
    const what = `Cloud Run service ${service}`;
    if (!current) {
      // First deploy: no traffic to keep, so the new revision takes everything (pinned by name when named).
      const template = applyTemplateSettings(
        {
          ...(request.revisionName ? { revision: request.revisionName } : {}),
          containers: [withContainerSettings({ image: request.image }, request)],
        },
        request.settings,
      );
      const traffic = [
        request.revisionName
          ? { type: BY_REVISION, revision: request.revisionName, percent: 100, ...(request.tag ? { tag: request.tag } : {}) }
          : { type: LATEST, percent: 100, ...(request.tag ? { tag: request.tag } : {}) },
      ];
      try {
        const [operation] = await client.createService({
          parent: this.#location(),
          serviceId: service,
          service: { template, traffic, ...serviceLevelFields(request.settings).fields } as never,
          validateOnly: Boolean(request.validateOnly),
        });
        await operation.promise();
      } catch (err) {
        this.#fail(err, what, 'run.services.create');
      }
      if (request.validateOnly) return { revision: request.revisionName, created: true, service: undefined };
      const after = await this.getService(service);
      return { revision: after?.latestCreatedRevision ?? request.revisionName, created: true, service: after };
    }

    const state = this.#remember(toServiceState(current));
    const containers = (((current.template as Loose | undefined)?.containers as Loose[]) ?? []).map((c) => ({ ...c }));
    if (containers.length === 0) containers.push({});
    containers[0] = withContainerSettings({ ...containers[0], image: request.image }, request);
    const template = applyTemplateSettings({ ...((current.template as Loose) ?? {}), containers }, request.settings);
    if (request.revisionName) template.revision = request.revisionName;
    else delete template.revision;
    if (request.noTraffic && !request.revisionName) throw new Error('deployRevision: noTraffic needs a revisionName to route the tag to');
    // Every target the service serves when the update lands stays where it is; the new revision joins at 0%.
    const keepServing = (served: ServiceState): Loose[] => [
      ...pinnedTraffic(served).map(toApiTarget),
      { type: BY_REVISION, revision: request.revisionName, percent: 0, ...(request.tag ? { tag: request.tag } : {}) },
    ];
    const serviceLevel = serviceLevelFields(request.settings);
    const paths = [...(request.noTraffic ? ['template', 'traffic'] : ['template']), ...serviceLevel.paths];
    try {
      const fields = (served: ServiceState) => ({
        template,
        ...(request.noTraffic ? { traffic: keepServing(served) } : {}),
        ...serviceLevel.fields,
      });
      await this.#update(service, fields, paths, state.etag, Boolean(request.validateOnly));
    } catch (err) {
      this.#fail(err, what, 'run.services.update');
    }
    if (request.validateOnly) return { revision: request.revisionName, created: false, service: state };
    const after = await this.getService(service);
    return { revision: request.revisionName ?? after?.latestCreatedRevision, created: false, service: after };
  }

  async setTraffic(
    service: string,
    change: TrafficTarget[] | TrafficChange,
    etag: string,
    options: SetTrafficOptions = {},
  ): Promise<ServiceState | undefined> {
    const wanted = typeof change === 'function' ? change : this.#listFromRead(service, change, etag);
    try {
      await this.#update(
        service,
        (current) => ({ traffic: wanted(current).map(toApiTarget) }),
        ['traffic'],
        etag,
        Boolean(options.validateOnly),
      );
    } catch (err) {
      this.#fail(err, `traffic of Cloud Run service ${service}`, 'run.services.update');
    }
    return options.validateOnly ? undefined : this.getService(service);
  }

  /**
   * A whole list computed from the read with `etag`, as a change of the current service: it still
   * applies when only other fields changed since that read (a new revision at 0%, a concurrent
   * write of the template), and is a conflict when the serving split moved (a rollback, another
   * canary) because re-sending it would silently undo that change.
   */
  #listFromRead(service: string, targets: TrafficTarget[], etag: string): TrafficChange {
    const read = this.#reads.get(etag);
    return (current) => {
      if (current.etag === etag || (read && sameServingSplit(read, current))) return targets;
      throw conflictError(
        `the traffic of Cloud Run service ${service} changed since it was read (it now serves ${servingSplit(current.traffic)}); the list computed from the earlier read was not applied`,
        {
          suggestion: 'look at the service (`convergence rollback --list`), then run the command again',
          data: { service, traffic: current.traffic },
        },
      );
    };
  }

  /**
   * UpdateService with an etag. `fields` is a function of the service as read: on a stale etag
   * (ABORTED) the adapter GETs again and recomputes them from that fresh read, so a concurrent
   * change is built upon rather than overwritten, a bounded number of times.
   */
  async #update(
    service: string,
    fields: Loose | ((current: ServiceState) => Loose),
    paths: string[],
    etag: string,
    validateOnly: boolean,
  ): Promise<void> {
    const client = await this.#clients.runServices();
    const build = (state: ServiceState | undefined): Loose => {
      if (typeof fields !== 'function') return fields;
      if (!state) throw notFoundError(`Cloud Run service ${service} does not exist`);
      return fields(state);
    };
    let current = this.#reads.get(etag) ?? (typeof fields === 'function' ? await this.getService(service) : undefined);
    let currentEtag = etag;
    for (let attempt = 1; ; attempt++) {
      try {
        const [operation] = await client.updateService({
          service: { name: this.#serviceName(service), etag: currentEtag, ...build(current) } as never,
          updateMask: { paths },
          validateOnly,
        });
        await operation.promise();
        return;
      } catch (err) {
        if (googleErrorFacts(err).grpcCode !== GrpcCode.ABORTED || attempt >= ETAG_ATTEMPTS) throw err;
        const fresh = await this.getService(service);
        if (!fresh) throw err;
        current = fresh;
        currentEtag = fresh.etag;
      }
    }
  }

  async #rawJob(job: string): Promise<Loose | undefined> {
    const client = await this.#clients.runJobs();
    try {
      const [found] = await retryTransient(() => client.getJob({ name: `${this.#location()}/jobs/${job}` }, { retry: null } as never));
      return found as unknown as Loose;
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return undefined;
      this.#fail(err, `Cloud Run job ${job}`, 'run.jobs.get');
    }
  }

  async getJob(job: string): Promise<JobState | undefined> {
    const raw = await this.#rawJob(job);
    return raw && jobStateOf(raw);
  }

  async applyJob(job: string, settings: JobSettings, options: { validateOnly?: boolean } = {}): Promise<JobState | undefined> {
    const client = await this.#clients.runJobs();
    const current = await this.#rawJob(job);
    const validateOnly = Boolean(options.validateOnly);
    try {
      if (!current) {
        const [operation] = await client.createJob({
          parent: this.#location(),
          jobId: job,
          job: { template: jobTemplate(undefined, settings) } as never,
          validateOnly,
        });
        await operation.promise();
      } else {
        const [operation] = await client.updateJob({
          // UpdateJob replaces the whole job: everything but the template goes back as read.
          job: { ...current, template: jobTemplate(current, settings) } as never,
          validateOnly,
        });
        await operation.promise();
      }
    } catch (err) {
      this.#fail(err, `Cloud Run job ${job}`, current ? 'run.jobs.update' : 'run.jobs.create');
    }
    return validateOnly ? undefined : this.getJob(job);
  }

  async #jobPolicy(job: string): Promise<JobPolicy> {
    const client = await this.#clients.runJobs();
    try {
      const [policy] = await retryTransient(() =>
        client.getIamPolicy({ resource: `${this.#location()}/jobs/${job}` }, { retry: null } as never),
      );
      return policy as unknown as JobPolicy;
    } catch (err) {
      this.#failIam(err, job, 'run.jobs.getIamPolicy');
    }
  }

  /** IAM refusals name the role that may read or set a job's policy (run.developer may not). */
  #failIam(err: unknown, job: string, permission: string): never {
    throw toConvergenceError(err, {
      what: `the IAM policy of Cloud Run job ${job}`,
      permission,
      role: permission.endsWith('getIamPolicy') ? 'roles/run.viewer' : 'roles/run.admin',
      api: 'run.googleapis.com',
      project: this.#clients.target.project,
    });
  }

  async jobRoleMembers(job: string, role: string): Promise<string[]> {
    const policy = await this.#jobPolicy(job);
    return (policy.bindings ?? []).filter((b) => b.role === role && !b.condition).flatMap((b) => (b.members ?? []).map(String));
  }

  async grantJobRole(job: string, role: string, member: string): Promise<void> {
    const client = await this.#clients.runJobs();
    const resource = `${this.#location()}/jobs/${job}`;
    try {
      await grantUnderEtag(
        {
          read: async () => grantable(await this.#jobPolicy(job)),
          write: (policy) => client.setIamPolicy({ resource, policy } as never, { retry: null } as never),
        },
        [{ role, member }],
        JOB_POLICY_RACE,
      );
    } catch (err) {
      // A refused read is explained already (and passes through); a refused write is explained here.
      this.#failIam(err, job, 'run.jobs.setIamPolicy');
    }
  }

  async jobPermissionsOf(job: string, serviceAccount: string, permissions: string[]): Promise<string[]> {
    try {
      const { client, callOptions } = await this.#clients.runJobsAs(serviceAccount);
      const options = { retry: null, ...(await callOptions()) } as never;
      const [answer] = await client.testIamPermissions({ resource: `${this.#location()}/jobs/${job}`, permissions }, options);
      return (answer.permissions ?? []).map(String);
    } catch (err) {
      const what = `Cloud Run job ${job}, asked as ${serviceAccount}`;
      if (!/iam\.serviceAccounts\.getAccessToken/.test(googleErrorFacts(err).detail)) this.#fail(err, what);
      // The caller could not mint a token for the account: the grant is on the account, not the job.
      const { project } = this.#clients.target;
      throw toConvergenceError(err, {
        what,
        permission: 'iam.serviceAccounts.getAccessToken',
        role: 'roles/iam.serviceAccountTokenCreator',
        resource: `the service account ${serviceAccount}`,
        grantCommand: `gcloud iam service-accounts add-iam-policy-binding ${serviceAccount} --member=user:YOU@example.com --role=roles/iam.serviceAccountTokenCreator --project ${project}`,
        api: 'iamcredentials.googleapis.com',
        project,
      });
    }
  }

  async runJob(job: string, request: RunJobRequest): Promise<{ execution: string }> {
    const client = await this.#clients.runJobs();
    const name = `${this.#location()}/jobs/${job}`;
    try {
      const [operation] = await client.runJob({
        name,
        overrides: {
          containerOverrides: [
            {
              ...(request.args ? { args: request.args } : {}),
              ...(request.env ? { env: Object.entries(request.env).map(([key, value]) => ({ name: key, value })) } : {}),
            },
          ],
          ...(request.taskCount ? { taskCount: request.taskCount } : {}),
          ...(request.timeoutSeconds ? { timeout: { seconds: request.timeoutSeconds } } : {}),
        },
      });
      const metadata = (operation as unknown as { metadata?: Loose }).metadata;
      const execution = shortName(metadata?.name);
      if (!execution) throw new Error(`Run did not name the execution started for job ${job}`);
      return { execution };
    } catch (err) {
      this.#fail(err, `Cloud Run job ${job}`, 'run.jobs.run');
    }
  }

  async getExecution(job: string, execution: string): Promise<ExecutionInfo> {
    const client = await this.#clients.runExecutions();
    const name = `${this.#location()}/jobs/${job}/executions/${execution}`;
    try {
      const [raw] = await retryTransient(() => client.getExecution({ name }, { retry: null } as never));
      return toExecutionInfo(raw as unknown as Loose, job);
    } catch (err) {
      this.#fail(err, `Cloud Run execution ${execution}`, 'run.executions.get');
    }
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }
}

/** The first container with the request's args and env applied (see DeployRevisionRequest). */
function withContainerSettings(container: Loose, request: DeployRevisionRequest): Loose {
  const out = { ...container };
  if (request.args) {
    const current = Array.isArray(container.args) ? container.args.map(String) : [];
    const wanted = request.args;
    const keeps = current.length >= wanted.length && wanted.every((arg, i) => current[i] === arg);
    out.args = keeps ? current : [...wanted];
  }
  if (request.env && Object.keys(request.env).length) {
    const names = new Set(Object.keys(request.env));
    const kept = ((container.env as Loose[] | undefined) ?? []).filter((variable) => !names.has(String(variable.name)));
    out.env = [...kept, ...Object.entries(request.env).map(([name, value]) => ({ name, value }))];
  }
  return out;
}

function toApiTarget(target: TrafficTarget): Loose {
  return target.revision
    ? { type: BY_REVISION, revision: target.revision, percent: target.percent, ...(target.tag ? { tag: target.tag } : {}) }
    : { type: LATEST, percent: target.percent, ...(target.tag ? { tag: target.tag } : {}) };
}

const sameServingSplit = (a: ServiceState, b: ServiceState) => servingSplit(a.traffic) === servingSplit(b.traffic);

function conditionOf(raw: Loose, type: string): Loose | undefined {
  if (type === 'Ready' && raw.terminalCondition) return raw.terminalCondition as Loose;
  return ((raw.conditions as Loose[]) ?? []).find((c) => c.type === type);
}

function toServiceState(raw: Loose): ServiceState {
  const terminal = conditionOf(raw, 'Ready');
  const traffic = ((raw.traffic as Loose[]) ?? []).map((t): TrafficTarget => ({
    ...(isLatest(t.type) ? {} : { revision: String(t.revision) }),
    percent: Number(t.percent ?? 0),
    ...(t.tag ? { tag: String(t.tag) } : {}),
  }));
  const statuses = ((raw.trafficStatuses as Loose[]) ?? []).map((t): TrafficStatus => ({
    revision: String(t.revision ?? ''),
    percent: Number(t.percent ?? 0),
    latest: isLatest(t.type),
    ...(t.tag ? { tag: String(t.tag) } : {}),
    ...(t.uri ? { uri: String(t.uri) } : {}),
  }));
  const containers = ((raw.template as Loose | undefined)?.containers as Loose[] | undefined) ?? [];
  return {
    name: shortName(raw.name) ?? '',
    etag: String(raw.etag ?? ''),
    uri: String(raw.uri ?? ''),
    image: containers[0]?.image ? String(containers[0].image) : undefined,
    traffic,
    trafficStatuses: statuses,
    latestReadyRevision: shortName(raw.latestReadyRevision),
    latestCreatedRevision: shortName(raw.latestCreatedRevision),
    ready: stateName(terminal?.state) === 'CONDITION_SUCCEEDED',
    message: stateName(terminal?.state) === 'CONDITION_FAILED' ? String(terminal?.message ?? '') : undefined,
    settings: serviceSettingsOf(raw),
  };
}

function toRevisionInfo(raw: Loose): RevisionInfo {
  const ready = conditionOf({ conditions: raw.conditions }, 'Ready');
  const state = stateName(ready?.state);
  const containers = (raw.containers as Loose[] | undefined) ?? [];
  return {
    name: shortName(raw.name) ?? '',
    createTime: new Date(seconds(raw.createTime)),
    ready: state === 'CONDITION_SUCCEEDED',
    failed: state === 'CONDITION_FAILED',
    image: containers[0]?.image ? String(containers[0].image) : undefined,
    message: ready?.message ? String(ready.message) : undefined,
  };
}

/** ExecutionReason CANCELLED (3) and CANCELLING (4), by name or number. */
const isCancelReason = (reason: unknown) => reason === 'CANCELLED' || reason === 'CANCELLING' || reason === 3 || reason === 4;

/**
 * The `Completed` condition decides: Run marks it FAILED for failures the task counts never
 * show (a task that could not start, a timeout, a cancel before any task ran). The counts only
 * decide when an execution has completed without a terminal condition.
 */
function executionState(raw: Loose, completed: Loose | undefined): ExecutionInfo['state'] {
  const state = stateName(completed?.state);
  if (state === 'CONDITION_SUCCEEDED') return 'SUCCEEDED';
  if (state === 'CONDITION_FAILED') return isCancelReason(completed?.executionReason) ? 'CANCELLED' : 'FAILED';
  if (!raw.completionTime) return 'RUNNING';
  if (Number(raw.cancelledCount ?? 0) > 0) return 'CANCELLED';
  return Number(raw.failedCount ?? 0) > 0 ? 'FAILED' : 'SUCCEEDED';
}

function toExecutionInfo(raw: Loose, job: string): ExecutionInfo {
  const taskCount = Number(raw.taskCount ?? 0);
  const succeededCount = Number(raw.succeededCount ?? 0);
  const failedCount = Number(raw.failedCount ?? 0);
  const cancelledCount = Number(raw.cancelledCount ?? 0);
  const completed = conditionOf({ conditions: raw.conditions }, 'Completed');
  const state = executionState(raw, completed);
  return {
    name: shortName(raw.name) ?? '',
    job,
    state,
    taskCount,
    succeededCount,
    failedCount,
    cancelledCount,
    logUri: raw.logUri ? String(raw.logUri) : undefined,
    message: completed?.message ? String(completed.message) : undefined,
  };
}
