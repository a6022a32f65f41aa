/**
 * google.cloud.scheduler.v1.CloudScheduler as `scheduler setup|list|run|delete` meets it: jobs
 * under projects/P/locations/L with unix-cron schedules and tz-database time zones, HTTP targets
 * with an OAuth or OIDC token, retry settings and attempt deadlines checked against the documented
 * limits and filled with the documented defaults, update masks, pause/resume states, forced runs,
 * and Scheduler's NOT_FOUND / ALREADY_EXISTS answers. English-like schedules ("every 5 minutes")
 * are refused: the product only writes unix-cron.
 *
 * Test hooks: onRun(handler) decides what a forced run's target answered (default OK) and sees
 * the request Scheduler would send; dispatches() lists those; requests(method) is the call log
 * (count UpdateJob calls to prove a second `setup` changes nothing); denyActAs(email) makes the
 * caller lack iam.serviceAccounts.actAs on a service account; dispatchTo(dispatcher) sends forced
 * runs to their target (runJobDispatcher: the Run fake, as the job's OAuth service account) when
 * no onRun handler decides.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { accessTokenFor } from './caller.ts';
import { paginate, timestamp } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

type Message = Record<string, unknown>;

export const SCHEDULER_PERMISSIONS = [
  'cloudscheduler.jobs.create',
  'cloudscheduler.jobs.get',
  'cloudscheduler.jobs.list',
  'cloudscheduler.jobs.update',
  'cloudscheduler.jobs.delete',
  'cloudscheduler.jobs.pause',
  'cloudscheduler.jobs.enable',
  'cloudscheduler.jobs.run',
] as const;

export interface SchedulerRequest {
  method: string;
  request: Message;
}

/** What Scheduler would send when a job runs (HTTP targets; other targets carry their own block). */
export interface SchedulerDispatch {
  job: string;
  httpTarget: Message | null;
  pubsubTarget: Message | null;
  appEngineHttpTarget: Message | null;
  time: Date;
}

export type SchedulerRunHandler = (dispatch: SchedulerDispatch) => { code?: number; message?: string } | void;
/** Sends a dispatch to its target and tells what the target answered. */
export type SchedulerDispatcher = (dispatch: SchedulerDispatch) => Promise<{ code?: number; message?: string }>;

/** A Cloud Run Admin API v2 `:run` URI: the job it names. */
const RUN_JOB_URI = /^https:\/\/run\.googleapis\.com\/v2\/(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/:]+):run$/;

/**
 * Delivers HTTP targets on the Cloud Run Jobs `:run` endpoint to the Run fake at `address`
 * through the official client, with an access token of the target's OAuth service account, as
 * Cloud Scheduler calls it: the Run fake then applies that account's permissions. Other targets
 * answer OK, as before.
 */
export function runJobDispatcher(address: string): SchedulerDispatcher {
  return async (dispatch) => {
    const target = dispatch.httpTarget;
    const match = RUN_JOB_URI.exec(String(target?.uri ?? ''));
    if (!target || !match) return {};
    const email = (target.oauthToken as Message | null)?.serviceAccountEmail;
    if (!email) return { code: status.UNAUTHENTICATED, message: 'Request is missing required authentication credential.' };
    const body = target.body as Uint8Array | null;
    const request = body && body.length > 0 ? (JSON.parse(Buffer.from(body).toString('utf8')) as Message) : {};
    const [{ JobsClient }, grpc, { PassThroughClient }] = await Promise.all([
      import('@google-cloud/run'),
      import('@grpc/grpc-js'),
      import('google-auth-library'),
    ]);
    const [host, port] = address.split(':');
    const jobs = new JobsClient({
      apiEndpoint: host!,
      port: Number(port),
      sslCreds: grpc.credentials.createInsecure(),
      authClient: new PassThroughClient(),
    });
    try {
      await jobs.runJob({ ...request, name: match[1]! }, {
        retry: null,
        otherArgs: { headers: { authorization: `Bearer ${accessTokenFor(String(email))}` } },
      } as never);
      return {};
    } catch (err) {
      const { code, details } = err as { code?: number; details?: string };
      return { code: code ?? status.UNKNOWN, message: details ?? String(err) };
    } finally {
      await jobs.close();
    }
  };
}

const PROTOS = protosJsonOf('@google-cloud/scheduler');
const SERVICE = 'google.cloud.scheduler.v1.CloudScheduler';
const JOB_ID = /^[A-Za-z0-9_-]{1,500}$/;
const TARGETS = ['pubsubTarget', 'appEngineHttpTarget', 'httpTarget'] as const;
const OUTPUT_ONLY = ['userUpdateTime', 'state', 'status', 'scheduleTime', 'lastAttemptTime'];
const MASKABLE = new Set([
  'description',
  'pubsubTarget',
  'appEngineHttpTarget',
  'httpTarget',
  'schedule',
  'timeZone',
  'retryConfig',
  'attemptDeadline',
]);
const MAX_PAGE = 500;
const MAX_URI = 2083;

interface Job {
  name: string;
  spec: Message;
  state: 'ENABLED' | 'PAUSED';
  userUpdateTime: Date;
  lastAttemptTime: Date | undefined;
  status: Message | null;
}

let root: protobuf.Root | undefined;
function normalizeJob(value: Message): Message {
  root ??= protobuf.Root.fromJSON(JSON.parse(readFileSync(PROTOS, 'utf8')));
  const type = root.lookupType('google.cloud.scheduler.v1.Job');
  const message = type.decode(type.encode(type.fromObject(value)).finish());
  return type.toObject(message, { longs: String, enums: String, defaults: true, arrays: true, objects: true }) as Message;
}

const duration = (value: unknown): number | undefined => {
  if (!value || typeof value !== 'object') return undefined;
  const { seconds, nanos } = value as { seconds?: unknown; nanos?: unknown };
  return Number(seconds ?? 0) + Number(nanos ?? 0) / 1e9;
};
const seconds = (value: number) => ({ seconds: String(value), nanos: 0 });

const invalid = (message: string) => new FakeStatus(status.INVALID_ARGUMENT, message);

// unix-cron: minute hour day-of-month month day-of-week, with lists, ranges, steps and names.
const CRON_FIELDS: Array<{ min: number; max: number; names?: string[] }> = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

export function isUnixCron(schedule: string): boolean {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return false;
  return fields.every((field, index) => {
    const { min, max, names } = CRON_FIELDS[index]!;
    const value = (text: string): number | undefined => {
      if (/^\d+$/.test(text)) return Number(text);
      const at = names?.indexOf(text.toUpperCase()) ?? -1;
      return at >= 0 ? at + min : undefined;
    };
    return field.split(',').every((item) => {
      const match = /^(\*|([^-/]+)(?:-([^-/]+))?)(?:\/(\d+))?$/.exec(item);
      if (!match) return false;
      const [, whole, from, to, step] = match;
      if (step !== undefined && (Number(step) < 1 || Number(step) > max)) return false;
      if (whole === '*') return true;
      const low = value(from!);
      const high = to === undefined ? low : value(to);
      return low !== undefined && high !== undefined && low >= min && high <= max && low <= high;
    });
  });
}

function isTimeZone(zone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export class SchedulerFake implements FakeService {
  /** Permissions the caller holds, project-wide. */
  granted = new Set<string>(SCHEDULER_PERMISSIONS);
  readonly #jobs = new Map<string, Job>();
  readonly #log: SchedulerRequest[] = [];
  readonly #dispatches: SchedulerDispatch[] = [];
  readonly #noActAs = new Set<string>();
  #onRun: SchedulerRunHandler | undefined;
  #dispatcher: SchedulerDispatcher | undefined;

  /** Decides what the target answered when a job is forced to run; default OK. */
  onRun(handler: SchedulerRunHandler | undefined): void {
    this.#onRun = handler;
  }

  /** Where forced runs go when no onRun handler decides (startCloudFakes: the Run fake). */
  dispatchTo(dispatcher: SchedulerDispatcher | undefined): void {
    this.#dispatcher = dispatcher;
  }

  /** The caller lacks iam.serviceAccounts.actAs on this service account: jobs that use it are refused. */
  denyActAs(email: string): void {
    this.#noActAs.add(email);
  }

  requests(method?: string): SchedulerRequest[] {
    return this.#log.filter((entry) => method === undefined || entry.method === method);
  }

  dispatches(): SchedulerDispatch[] {
    return [...this.#dispatches];
  }

  /** A job as GetJob answers, for assertions behind the client. */
  job(name: string): Message | undefined {
    const job = this.#jobs.get(name);
    return job && this.#describe(job);
  }

  bindings(): ServiceBinding[] {
    const handlers: Record<string, (request: Message) => unknown> = {
      CreateJob: (request) => this.#create(request),
      GetJob: (request) => this.#describe(this.#find(String(request.name), 'cloudscheduler.jobs.get')),
      ListJobs: (request) => {
        const parent = String(request.parent);
        this.#location(parent);
        this.#require('cloudscheduler.jobs.list', parent);
        const all = [...this.#jobs.values()]
          .filter((job) => job.name.startsWith(`${parent}/jobs/`))
          .sort((a, b) => a.name.localeCompare(b.name));
        const { items, nextPageToken } = paginate(all, request, MAX_PAGE);
        return { jobs: items.map((job) => this.#describe(job)), nextPageToken };
      },
      UpdateJob: (request) => this.#update(request),
      DeleteJob: (request) => {
        const job = this.#find(String(request.name), 'cloudscheduler.jobs.delete');
        this.#jobs.delete(job.name);
        return {};
      },
      PauseJob: (request) => {
        const job = this.#find(String(request.name), 'cloudscheduler.jobs.pause');
        if (job.state !== 'ENABLED')
          throw new FakeStatus(status.FAILED_PRECONDITION, `Job ${job.name} must be ENABLED to be paused; it is ${job.state}.`);
        job.state = 'PAUSED';
        return this.#describe(job);
      },
      ResumeJob: (request) => {
        const job = this.#find(String(request.name), 'cloudscheduler.jobs.enable');
        if (job.state !== 'PAUSED')
          throw new FakeStatus(status.FAILED_PRECONDITION, `Job ${job.name} must be PAUSED to be resumed; it is ${job.state}.`);
        job.state = 'ENABLED';
        return this.#describe(job);
      },
      RunJob: async (request) => {
        const job = this.#find(String(request.name), 'cloudscheduler.jobs.run');
        const time = new Date();
        const dispatch: SchedulerDispatch = {
          job: job.name,
          httpTarget: structuredClone((job.spec.httpTarget ?? null) as Message | null),
          pubsubTarget: structuredClone((job.spec.pubsubTarget ?? null) as Message | null),
          appEngineHttpTarget: structuredClone((job.spec.appEngineHttpTarget ?? null) as Message | null),
          time,
        };
        this.#dispatches.push(dispatch);
        const answer = this.#onRun ? (this.#onRun(dispatch) ?? {}) : ((await this.#dispatcher?.(dispatch)) ?? {});
        job.lastAttemptTime = time;
        job.status = answer.code ? { code: answer.code, message: answer.message ?? '', details: [] } : null;
        return this.#describe(job);
      },
    };
    return [
      {
        protos: PROTOS,
        service: SERVICE,
        handlers: Object.fromEntries(
          Object.entries(handlers).map(([method, handler]) => [
            method,
            (request: Message) => {
              this.#log.push({ method, request });
              return handler(request);
            },
          ]),
        ),
      },
    ];
  }

  #create(request: Message) {
    const parent = String(request.parent);
    this.#location(parent);
    this.#require('cloudscheduler.jobs.create', parent);
    const body = request.job as Message | null;
    if (!body) throw invalid('job: Field is required.');
    let name = String(body.name ?? '');
    if (!name) name = `${parent}/jobs/${randomUUID().replaceAll('-', '')}`;
    const match = /^(projects\/[^/]+\/locations\/[^/]+)\/jobs\/([^/]+)$/.exec(name);
    if (!match || match[1] !== parent) throw invalid(`Job name ${name} is not a job of ${parent}.`);
    if (!JOB_ID.test(match[2]!))
      throw invalid(`Job id '${match[2]}' may contain only letters, numbers, hyphens and underscores, at most 500 characters.`);
    if (this.#jobs.has(name)) throw new FakeStatus(status.ALREADY_EXISTS, `Job ${name} already exists.`);
    if (!body.schedule) throw invalid('Job.schedule: Field is required.');
    const spec = this.#validate(normalizeJob({ ...body, name }));
    const job: Job = { name, spec, state: 'ENABLED', userUpdateTime: new Date(), lastAttemptTime: undefined, status: null };
    this.#jobs.set(name, job);
    return this.#describe(job);
  }

  #update(request: Message) {
    const body = request.job as Message | null;
    if (!body || !body.name) throw invalid('Job.name: Field is required.');
    const job = this.#find(String(body.name), 'cloudscheduler.jobs.update');
    const sent = normalizeJob(body);
    const paths = ((request.updateMask as { paths?: string[] } | null)?.paths ?? []).map((path) =>
      path.replace(/_([a-z])/g, (_m, letter: string) => letter.toUpperCase()),
    );
    let merged: Message;
    if (paths.length === 0) {
      merged = { ...sent, schedule: sent.schedule || job.spec.schedule, timeZone: sent.timeZone || job.spec.timeZone };
    } else {
      merged = structuredClone(job.spec);
      for (const path of paths) {
        const [head, ...rest] = path.split('.');
        if (!MASKABLE.has(head!)) throw invalid(`Invalid update_mask path '${path}'.`);
        if ((TARGETS as readonly string[]).includes(head!)) for (const target of TARGETS) if (target !== head) merged[target] = null;
        if (rest.length === 0) merged[head!] = structuredClone(sent[head!] ?? null);
        else {
          let to = (merged[head!] ??= {}) as Message;
          let from = (sent[head!] ?? {}) as Message;
          for (const [index, part] of rest.entries()) {
            if (index === rest.length - 1) to[part] = structuredClone(from[part] ?? null);
            else {
              to = (to[part] ??= {}) as Message;
              from = (from[part] ?? {}) as Message;
            }
          }
        }
      }
    }
    job.spec = this.#validate(normalizeJob({ ...merged, name: job.name }));
    job.userUpdateTime = new Date();
    return this.#describe(job);
  }

  /** The rules Scheduler applies to a job's settings, then its documented defaults. */
  #validate(spec: Message): Message {
    for (const field of OUTPUT_ONLY) delete spec[field];
    if (String(spec.description ?? '').length > 500) throw invalid('Job.description must be at most 500 characters.');
    const schedule = String(spec.schedule ?? '');
    const timeZone = String(spec.timeZone ?? '');
    if (!isUnixCron(schedule) || (timeZone && !isTimeZone(timeZone))) throw invalid('Schedule or time zone is invalid.');
    const targets = TARGETS.filter((target) => spec[target]);
    if (targets.length !== 1) throw invalid('Job must have exactly one target: http_target, pubsub_target or app_engine_http_target.');
    const http = spec.httpTarget as Message | null;
    if (http) {
      const uri = String(http.uri ?? '');
      if (!/^https?:\/\/[^\s/]+/.test(uri)) throw invalid('HttpTarget.uri must begin with http:// or https://.');
      if (uri.length > MAX_URI) throw invalid(`HttpTarget.uri must be at most ${MAX_URI} characters.`);
      if (http.httpMethod === 'HTTP_METHOD_UNSPECIFIED') http.httpMethod = 'POST';
      const body = http.body as Uint8Array | null;
      if (body && body.length > 0 && !['POST', 'PUT', 'PATCH'].includes(String(http.httpMethod))) {
        throw invalid(`HttpTarget.body is allowed only with POST, PUT or PATCH, not ${String(http.httpMethod)}.`);
      }
      if (http.oauthToken && http.oidcToken) throw invalid('HttpTarget can carry an oauth_token or an oidc_token, not both.');
      const token = (http.oauthToken ?? http.oidcToken) as Message | null;
      if (token) {
        const email = String(token.serviceAccountEmail ?? '');
        if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw invalid(`Invalid service account email '${email}'.`);
        if (this.#noActAs.has(email)) {
          throw new FakeStatus(
            status.PERMISSION_DENIED,
            `The principal (user or service account) lacks IAM permission "iam.serviceAccounts.actAs" for the resource "${email}" (or the resource may not exist).`,
          );
        }
      }
    }
    const retry = (spec.retryConfig ?? {}) as Message;
    const retryCount = Number(retry.retryCount ?? 0);
    if (retryCount < 0 || retryCount > 5) throw invalid(`RetryConfig.retry_count must be between 0 and 5, got ${retryCount}.`);
    const maxDoublings = Number(retry.maxDoublings ?? 0);
    if (maxDoublings < 0 || maxDoublings > 16) throw invalid(`RetryConfig.max_doublings must be between 0 and 16, got ${maxDoublings}.`);
    const minBackoff = duration(retry.minBackoffDuration) || 5;
    const maxBackoff = duration(retry.maxBackoffDuration) || 3600;
    const maxRetryDuration = duration(retry.maxRetryDuration) ?? 0;
    if (minBackoff > maxBackoff) throw invalid('RetryConfig.min_backoff_duration must not exceed max_backoff_duration.');
    if (maxRetryDuration < 0) throw invalid('RetryConfig.max_retry_duration must not be negative.');
    spec.retryConfig = {
      retryCount,
      maxRetryDuration: seconds(maxRetryDuration),
      minBackoffDuration: seconds(minBackoff),
      maxBackoffDuration: seconds(maxBackoff),
      maxDoublings: maxDoublings || 5,
    };
    if (http) {
      const deadline = duration(spec.attemptDeadline) ?? 180;
      if (deadline < 15 || deadline > 1800)
        throw invalid(`attempt_deadline for HTTP targets must be between 15s and 1800s, got ${deadline}s.`);
      spec.attemptDeadline = seconds(deadline);
    }
    return normalizeJob(spec);
  }

  #describe(job: Job): Message {
    return {
      ...job.spec,
      name: job.name,
      state: job.state,
      userUpdateTime: timestamp(job.userUpdateTime),
      lastAttemptTime: timestamp(job.lastAttemptTime),
      status: job.status,
      scheduleTime: null,
    };
  }

  #location(parent: string): void {
    if (!/^projects\/[^/]+\/locations\/[^/]+$/.test(parent)) throw invalid(`Invalid resource field value in the request: ${parent}`);
  }

  #require(permission: string, resource: string): void {
    if (!this.granted.has(permission)) {
      throw new FakeStatus(
        status.PERMISSION_DENIED,
        `The principal (user or service account) lacks IAM permission "${permission}" for the resource "${resource}" (or the resource may not exist).`,
      );
    }
  }

  #find(name: string, permission: string): Job {
    if (!/^projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+$/.test(name))
      throw invalid(`Invalid resource field value in the request: ${name}`);
    this.#require(permission, name);
    const job = this.#jobs.get(name);
    if (!job) throw new FakeStatus(status.NOT_FOUND, 'Job not found.');
    return job;
  }
}
