import type { CloudSchedulerClient, protos } from '@google-cloud/scheduler';
import { GrpcCode, googleErrorFacts, toConvergenceError, type GoogleCallContext } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import type { JobSpec, Schedule, ScheduledJob } from './port.ts';

type IJob = protos.google.cloud.scheduler.v1.IJob;
type IDuration = protos.google.protobuf.IDuration;
type ITimestamp = protos.google.protobuf.ITimestamp;

const API = 'cloudscheduler.googleapis.com';
const ADMIN_ROLE = 'roles/cloudscheduler.admin';

const seconds = (value: number): IDuration => ({ seconds: value, nanos: 0 });
const fromDuration = (value: IDuration | null | undefined): number =>
  value ? Number(value.seconds ?? 0) + Number(value.nanos ?? 0) / 1e9 : 0;
const fromTimestamp = (value: ITimestamp | null | undefined): Date | null => {
  if (!value || (Number(value.seconds ?? 0) === 0 && Number(value.nanos ?? 0) === 0)) return null;
  return new Date(Number(value.seconds ?? 0) * 1000 + Math.floor(Number(value.nanos ?? 0) / 1e6));
};
const text = (body: Uint8Array | string | null | undefined): string =>
  body == null ? '' : typeof body === 'string' ? body : Buffer.from(body).toString('utf8');

/** A JobSpec as the Cloud Scheduler API takes it. */
function toApiJob(spec: JobSpec): IJob {
  const target = spec.httpTarget;
  return {
    name: spec.name,
    description: spec.description,
    schedule: spec.schedule,
    timeZone: spec.timeZone,
    ...(target
      ? {
          httpTarget: {
            uri: target.uri,
            httpMethod: target.httpMethod as keyof typeof protos.google.cloud.scheduler.v1.HttpMethod,
            headers: target.headers,
            body: Buffer.from(target.body, 'utf8'),
            ...(target.oauthServiceAccount
              ? { oauthToken: { serviceAccountEmail: target.oauthServiceAccount, scope: target.oauthScope ?? '' } }
              : {}),
          },
        }
      : {}),
    retryConfig: {
      retryCount: spec.retry.retryCount,
      maxRetryDuration: seconds(spec.retry.maxRetryDurationSeconds),
      minBackoffDuration: seconds(spec.retry.minBackoffSeconds),
      maxBackoffDuration: seconds(spec.retry.maxBackoffSeconds),
      maxDoublings: spec.retry.maxDoublings,
    },
    attemptDeadline: seconds(spec.attemptDeadlineSeconds),
  };
}

/** A job the API returned, read back into a JobSpec (what setup compares against). */
function fromApiJob(job: IJob): ScheduledJob {
  const http = job.httpTarget;
  const retry = job.retryConfig ?? {};
  const status =
    job.status && Number(job.status.code ?? 0) !== 0 ? { code: Number(job.status.code), message: job.status.message ?? '' } : null;
  return {
    spec: {
      name: job.name ?? '',
      description: job.description ?? '',
      schedule: job.schedule ?? '',
      timeZone: job.timeZone ?? '',
      httpTarget: http
        ? {
            uri: http.uri ?? '',
            httpMethod: String(http.httpMethod ?? 'POST'),
            headers: { ...(http.headers ?? {}) },
            body: text(http.body),
            oauthServiceAccount: http.oauthToken?.serviceAccountEmail || null,
            oauthScope: http.oauthToken?.scope || null,
            oidcServiceAccount: http.oidcToken?.serviceAccountEmail || null,
          }
        : null,
      retry: {
        retryCount: Number(retry.retryCount ?? 0),
        maxRetryDurationSeconds: fromDuration(retry.maxRetryDuration),
        minBackoffSeconds: fromDuration(retry.minBackoffDuration),
        maxBackoffSeconds: fromDuration(retry.maxBackoffDuration),
        maxDoublings: Number(retry.maxDoublings ?? 0),
      },
      attemptDeadlineSeconds: fromDuration(job.attemptDeadline),
    },
    state: String(job.state ?? 'STATE_UNSPECIFIED'),
    lastAttemptTime: fromTimestamp(job.lastAttemptTime),
    lastStatus: status,
  };
}

export interface GcpScheduleOptions {
  client: CloudSchedulerClient;
  project: string;
  region: string;
  timeoutMs?: number;
  /** Called by close(), e.g. to close the client factory. */
  onClose?: () => Promise<void>;
}

/** Cloud Scheduler jobs under projects/P/locations/<region>. */
export class GcpSchedule implements Schedule {
  readonly kind = 'gcp' as const;
  readonly parent: string;
  readonly #client: CloudSchedulerClient;
  readonly #project: string;
  readonly #timeoutMs: number;
  readonly #onClose: (() => Promise<void>) | undefined;

  constructor(options: GcpScheduleOptions) {
    this.#client = options.client;
    this.#project = options.project;
    this.parent = `projects/${options.project}/locations/${options.region}`;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#onClose = options.onClose;
  }

  async get(name: string): Promise<ScheduledJob | undefined> {
    try {
      const [job] = await retryTransient(() => this.#client.getJob({ name }, this.#call()));
      return fromApiJob(job);
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return undefined;
      throw this.#error(err, name, 'cloudscheduler.jobs.get');
    }
  }

  async list(idPrefix: string): Promise<ScheduledJob[]> {
    try {
      const jobs: ScheduledJob[] = [];
      let pageToken: string | undefined;
      do {
        const [page, , response] = await retryTransient(() =>
          this.#client.listJobs(
            { parent: this.parent, pageSize: 500, ...(pageToken ? { pageToken } : {}) },
            { ...this.#call(), autoPaginate: false },
          ),
        );
        for (const job of page) if ((job.name ?? '').startsWith(`${this.parent}/jobs/${idPrefix}`)) jobs.push(fromApiJob(job));
        pageToken = response?.nextPageToken || undefined;
      } while (pageToken);
      return jobs.sort((a, b) => a.spec.name.localeCompare(b.spec.name));
    } catch (err) {
      throw this.#error(err, `Cloud Scheduler jobs of ${this.parent}`, 'cloudscheduler.jobs.list');
    }
  }

  async create(spec: JobSpec): Promise<ScheduledJob> {
    try {
      // Not retried: a create whose answer was lost would fail again with ALREADY_EXISTS.
      const [job] = await this.#client.createJob({ parent: this.parent, job: toApiJob(spec) }, this.#call());
      return fromApiJob(job);
    } catch (err) {
      throw this.#error(err, spec.name, 'cloudscheduler.jobs.create', spec);
    }
  }

  async update(spec: JobSpec, mask: string[]): Promise<ScheduledJob> {
    try {
      const [job] = await retryTransient(() => this.#client.updateJob({ job: toApiJob(spec), updateMask: { paths: mask } }, this.#call()));
      return fromApiJob(job);
    } catch (err) {
      throw this.#error(err, spec.name, 'cloudscheduler.jobs.update', spec);
    }
  }

  async run(name: string): Promise<ScheduledJob> {
    try {
      const [job] = await this.#client.runJob({ name }, this.#call());
      return fromApiJob(job);
    } catch (err) {
      throw this.#error(err, name, 'cloudscheduler.jobs.run');
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await retryTransient(() => this.#client.deleteJob({ name }, this.#call()));
    } catch (err) {
      throw this.#error(err, name, 'cloudscheduler.jobs.delete');
    }
  }

  async close(): Promise<void> {
    await this.#onClose?.();
  }

  #call() {
    return { retry: null, timeout: this.#timeoutMs };
  }

  #error(err: unknown, name: string, permission: string, spec?: JobSpec) {
    const facts = googleErrorFacts(err);
    const what = name.includes('/jobs/') ? `Cloud Scheduler job ${name}` : name;
    const email = spec?.httpTarget?.oauthServiceAccount;
    let ctx: GoogleCallContext;
    if (facts.grpcCode === GrpcCode.PERMISSION_DENIED && email && /actAs/.test(facts.detail)) {
      // Writing a job that mints tokens as a service account needs actAs on that account.
      ctx = {
        what,
        permission: 'iam.serviceAccounts.actAs',
        role: 'roles/iam.serviceAccountUser',
        resource: `the service account ${email}`,
        grantCommand: `gcloud iam service-accounts add-iam-policy-binding ${email} --member=user:YOU@example.com --role=roles/iam.serviceAccountUser --project ${this.#project}`,
        api: API,
        project: this.#project,
      };
    } else {
      ctx = { what, permission, role: ADMIN_ROLE, resource: `project ${this.#project}`, api: API, project: this.#project };
    }
    return toConvergenceError(err, ctx);
  }
}
