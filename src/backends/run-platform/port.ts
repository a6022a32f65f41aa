/**
 * Cloud Run as deploy, rollback and remote runs need it: one service's revisions and traffic,
 * and jobs with their executions. Names are short ids (`convergence-api-00002-abc`), never
 * resource paths; the adapter builds those.
 */

/** One entry of a service's traffic list: a revision pinned by name, or LATEST. */
export interface TrafficTarget {
  /** Revision name; undefined means LATEST (the newest ready revision). */
  revision?: string;
  percent: number;
  tag?: string;
}

/**
 * A traffic change as a function of the service as just read: the whole list wanted from that
 * state. Throw (a ConvergenceError) to refuse a state the change does not fit.
 */
export type TrafficChange = (current: ServiceState) => TrafficTarget[];

/** A traffic target as Run resolved it: LATEST replaced by the revision it points at, with the tag URL. */
export interface TrafficStatus {
  revision: string;
  percent: number;
  tag?: string;
  latest: boolean;
  uri?: string;
}

/**
 * What deploy sets on the service beside its image: Cloud Run Admin API v2 fields, undefined
 * meaning "keep what the service has".
 */
export interface ServiceSettings {
  serviceAccount?: string | undefined;
  cpu?: string | undefined;
  memory?: string | undefined;
  minInstances?: number | undefined;
  maxInstances?: number | undefined;
  concurrency?: number | undefined;
  timeoutSeconds?: number | undefined;
  /** INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER. */
  ingress?: string | undefined;
  /** invokerIamDisabled: anyone may call the service without an ID token. */
  public?: boolean | undefined;
}

/** The pipeline job as deploy keeps it in step with the service. */
export interface JobSettings {
  image: string;
  serviceAccount?: string | undefined;
  cpu?: string | undefined;
  memory?: string | undefined;
  taskTimeoutSeconds?: number | undefined;
  maxRetries?: number | undefined;
}

export interface JobState extends JobSettings {
  /** Short job id. */
  name: string;
  etag: string;
}

export interface ServiceState {
  /** Short service id. */
  name: string;
  etag: string;
  uri: string;
  /** Image of the service template's first container. */
  image: string | undefined;
  /** The traffic list as last written (spec). */
  traffic: TrafficTarget[];
  /** The traffic list as Run serves it. */
  trafficStatuses: TrafficStatus[];
  latestReadyRevision: string | undefined;
  latestCreatedRevision: string | undefined;
  ready: boolean;
  /** Message of a failed terminal condition. */
  message: string | undefined;
  /** The settings the service has now (every field read back). */
  settings: ServiceSettings;
}

export interface RevisionInfo {
  name: string;
  createTime: Date;
  ready: boolean;
  failed: boolean;
  image: string | undefined;
  message: string | undefined;
}

export interface DeployRevisionRequest {
  image: string;
  /**
   * Container args of the revision (the image's CMD otherwise). A template whose args already
   * start with these keeps them, so flags an operator added after them survive a deploy; other
   * args are replaced.
   */
  args?: string[];
  /** Container environment variables to set; the template's other variables are kept. */
  env?: Record<string, string>;
  /** Service account, resources, scaling, timeout, ingress and invoker IAM; the service keeps what is left out. */
  settings?: ServiceSettings;
  /** Tag routed to the new revision (gives it its own URL). */
  tag?: string;
  /** `<service>-…`, under 64 characters; Run picks one when absent. */
  revisionName?: string;
  /** Keep the serving traffic where it is (pinned by name); the new revision gets 0%. Not possible on a first deploy. */
  noTraffic: boolean;
  validateOnly?: boolean;
}

export interface DeployRevisionResult {
  /** The revision that was (or, with validateOnly, would be) created. */
  revision: string | undefined;
  /** True when the service did not exist and was created. */
  created: boolean;
  service: ServiceState | undefined;
}

export interface SetTrafficOptions {
  validateOnly?: boolean;
}

export interface RunJobRequest {
  args?: string[];
  env?: Record<string, string>;
  taskCount?: number;
  timeoutSeconds?: number;
}

type ExecutionState = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export interface ExecutionInfo {
  /** Short execution id. */
  name: string;
  job: string;
  state: ExecutionState;
  taskCount: number;
  succeededCount: number;
  failedCount: number;
  cancelledCount: number;
  logUri: string | undefined;
  /** The Completed condition's message: why a failed or cancelled execution ended (Run's note on a success). */
  message: string | undefined;
}

export interface RunPlatform {
  readonly describe: string;
  /** The service, or undefined when it does not exist. */
  getService(service: string): Promise<ServiceState | undefined>;
  /** Revisions of the service, newest first. */
  listRevisions(service: string): Promise<RevisionInfo[]>;
  /**
   * A new revision of `image`. On an existing service with noTraffic, the traffic list keeps
   * every current target (LATEST pinned to the revision it resolves to) and adds the new
   * revision at 0% under `tag`. A missing service is created with 100% on the new revision.
   * Resolves when Run has reconciled; rejects when the revision does not turn ready.
   */
  deployRevision(service: string, request: DeployRevisionRequest): Promise<DeployRevisionResult>;
  /**
   * Rewrites the whole traffic list, sent with `etag`. When someone else changed the service
   * meanwhile (a stale etag), the adapter GETs it again and recomputes the list from that fresh
   * read, a bounded number of times: a TrafficChange is re-applied to it; a fixed list is
   * re-sent only while the serving split is still the one of the read it was computed from,
   * otherwise it is a conflict (exit 2), so a concurrent rollback is never overwritten.
   */
  setTraffic(
    service: string,
    change: TrafficTarget[] | TrafficChange,
    etag: string,
    options?: SetTrafficOptions,
  ): Promise<ServiceState | undefined>;
  /** The job, or undefined when it does not exist. */
  getJob(job: string): Promise<JobState | undefined>;
  /**
   * Creates the job or updates its first container's image, its service account, resources,
   * task timeout and retries (settings left undefined keep what the job has). Resolves when Run
   * has reconciled.
   */
  applyJob(job: string, settings: JobSettings, options?: { validateOnly?: boolean }): Promise<JobState | undefined>;
  /**
   * Which of `permissions` a service account holds on the job: TestIamPermissions asked as that
   * account (the caller's credentials impersonate it). A missing job rejects with NOT_FOUND.
   */
  jobPermissionsOf(job: string, serviceAccount: string, permissions: string[]): Promise<string[]>;
  /** The members holding `role` unconditionally on the job (its IAM policy). A missing job rejects with NOT_FOUND. */
  jobRoleMembers(job: string, role: string): Promise<string[]>;
  /**
   * Grants `role` on the job to `member` by read-modify-write of the job's IAM policy under its
   * etag: a write that lost to a concurrent change reads again, and bindings it did not add stay.
   */
  grantJobRole(job: string, role: string, member: string): Promise<void>;
  /** Starts an execution of a job; returns its short id. */
  runJob(job: string, request: RunJobRequest): Promise<{ execution: string }>;
  getExecution(job: string, execution: string): Promise<ExecutionInfo>;
  close(): Promise<void>;
}

/** The serving list with LATEST replaced by the revision it resolves to: what a canary pins. */
export function pinnedTraffic(state: ServiceState): TrafficTarget[] {
  return state.traffic.map((target, index) => {
    if (target.revision) return target;
    const resolved = state.trafficStatuses[index]?.revision ?? state.latestReadyRevision;
    return { ...target, ...(resolved ? { revision: resolved } : {}) };
  });
}
