import { cloudEnv, requiredSetting, type CloudEnv } from '../../backends/factory.ts';
import type { JobSpec, Schedule, ScheduledJob } from '../../backends/schedule/port.ts';
import type { RunPlatform } from '../../backends/run-platform/port.ts';
import { ConvergenceError, ExitCode, usageError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';

/**
 * Cloud Scheduler jobs of an environment (seed 000 plus the dispatcher). Each one POSTs to the
 * Cloud Run Jobs `:run` endpoint of the environment's job with an OAuth token of its service
 * account, overriding the container args to one headless task. `setup` reconciles: GET each job,
 * create the missing ones, update only the fields that differ, so a second run writes nothing.
 */
type ScheduledTask = 'reset-quotas' | 'cleanup-orphans' | 'dispatch';

interface JobPlan {
  /** Short id: reset-daily-quotas. */
  id: string;
  description: string;
  schedule: string;
  timeZone: string;
  task: ScheduledTask;
  taskCount: number;
  retryCount: number;
  minBackoffSeconds: number;
  maxBackoffSeconds: number;
  attemptDeadlineSeconds: number;
}

const SCHEDULED_JOBS: readonly JobPlan[] = [
  {
    id: 'reset-daily-quotas',
    description: 'Reset the daily pipeline quotas of every tenant (midnight UTC)',
    schedule: '0 0 * * *',
    timeZone: 'UTC',
    task: 'reset-quotas',
    taskCount: 1,
    retryCount: 3,
    minBackoffSeconds: 30,
    maxBackoffSeconds: 3600,
    attemptDeadlineSeconds: 180,
  },
  {
    id: 'cleanup-orphaned-pipelines',
    description: 'End runs left PENDING or RUNNING past their timeout and free their locks',
    schedule: '*/30 * * * *',
    timeZone: 'UTC',
    task: 'cleanup-orphans',
    taskCount: 1,
    retryCount: 2,
    minBackoffSeconds: 60,
    maxBackoffSeconds: 1800,
    attemptDeadlineSeconds: 300,
  },
  {
    id: 'dispatch-tenant-pipelines',
    description: 'Start the due tenant pipeline schedules (tenant_scheduled_pipeline_runs), sharded over the job tasks',
    schedule: '*/5 * * * *',
    timeZone: 'UTC',
    task: 'dispatch',
    taskCount: 3,
    retryCount: 1,
    minBackoffSeconds: 30,
    maxBackoffSeconds: 120,
    attemptDeadlineSeconds: 180,
  },
];

export const OAUTH_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const MAX_DOUBLINGS = 5;

const jobIdPrefix = (envName: string) => `convergence-${envName}-`;

/** The Cloud Run Jobs v2 `:run` endpoint of a job. */
const runJobUri = (project: string, region: string, job: string) =>
  `https://run.googleapis.com/v2/projects/${project}/locations/${region}/jobs/${job}:run`;

/** The RunJobRequest body Scheduler posts: the headless task as container args. */
function runJobBody(plan: JobPlan, envName: string): string {
  return JSON.stringify({
    overrides: {
      containerOverrides: [{ args: ['job', plan.task], env: [{ name: 'CONVERGENCE_ENV', value: envName }] }],
      taskCount: plan.taskCount,
    },
  });
}

/** The account the scheduler calls Cloud Run with: scheduler_service_account, else service_account. */
const schedulerAccount = (env: CloudEnv) =>
  env.settings.scheduler_service_account ?? requiredSetting(env, 'service_account', 'the OAuth token the scheduler calls Cloud Run with');

/** The jobs an environment should have, as Cloud Scheduler specs. */
function desiredJobs(env: CloudEnv, parent: string): Array<{ plan: JobPlan; spec: JobSpec }> {
  const job = requiredSetting(env, 'job', 'the Cloud Run job the scheduler starts');
  const serviceAccount = schedulerAccount(env);
  const project = env.settings.project!;
  const uri = runJobUri(project, env.settings.region, job);
  return SCHEDULED_JOBS.map((plan) => ({
    plan,
    spec: {
      name: `${parent}/jobs/${jobIdPrefix(env.name)}${plan.id}`,
      description: plan.description,
      schedule: plan.schedule,
      timeZone: plan.timeZone,
      httpTarget: {
        uri,
        httpMethod: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: runJobBody(plan, env.name),
        oauthServiceAccount: serviceAccount,
        oauthScope: OAUTH_SCOPE,
        oidcServiceAccount: null,
      },
      retry: {
        retryCount: plan.retryCount,
        maxRetryDurationSeconds: 0,
        minBackoffSeconds: plan.minBackoffSeconds,
        maxBackoffSeconds: plan.maxBackoffSeconds,
        maxDoublings: MAX_DOUBLINGS,
      },
      attemptDeadlineSeconds: plan.attemptDeadlineSeconds,
    },
  }));
}

/**
 * Ticks start the job with container overrides, which Cloud Run allows only with this permission
 * on the job (roles/run.jobsExecutorWithOverrides holds it and no more, as `setup` grants it;
 * roles/run.invoker has run.jobs.run alone).
 */
const RUN_WITH_OVERRIDES = 'run.jobs.runWithOverrides';

export interface SchedulerRunPermission {
  job: string;
  serviceAccount: string;
  /** True when the scheduler's service account may start the job with overrides. */
  granted: boolean;
  /** The command that grants it. */
  grant: string;
}

/**
 * Whether Cloud Scheduler's ticks will be let through: TestIamPermissions on the job, asked as
 * the scheduler's service account (the caller's credentials impersonate it), since the caller's
 * own permissions say nothing about the account the ticks carry.
 */
export async function schedulerRunPermission(env: CloudEnv, platform: RunPlatform): Promise<SchedulerRunPermission> {
  const job = requiredSetting(env, 'job', 'the Cloud Run job the scheduler starts');
  const serviceAccount = schedulerAccount(env);
  const held = await platform.jobPermissionsOf(job, serviceAccount, [RUN_WITH_OVERRIDES]);
  return {
    job,
    serviceAccount,
    granted: held.includes(RUN_WITH_OVERRIDES),
    grant: `gcloud run jobs add-iam-policy-binding ${job} --region ${env.settings.region} --member serviceAccount:${serviceAccount} --role roles/run.jobsExecutorWithOverrides`,
  };
}

/** Refuses setup when every tick would be denied: the jobs would look fine and never run anything. */
async function requireSchedulerMayRun(ctx: ServiceContext, env: CloudEnv): Promise<void> {
  const platform = await ctx.backends.runPlatform!();
  try {
    const permission = await schedulerRunPermission(env, platform);
    if (permission.granted) return;
    throw new ConvergenceError(
      'SCHEDULER_CANNOT_RUN_JOB',
      ExitCode.auth,
      `the scheduler's service account ${permission.serviceAccount} lacks ${RUN_WITH_OVERRIDES} on Cloud Run job ${permission.job}: every tick would be refused (ticks start the job with container overrides, which roles/run.invoker does not allow)`,
      {
        suggestion: `grant it with \`${permission.grant}\` (or a custom role holding ${RUN_WITH_OVERRIDES}), then run setup again`,
        data: { ...permission },
      },
    );
  } finally {
    await platform.close();
  }
}

interface FieldChange {
  field: string;
  from: string | null;
  to: string;
}

const secs = (n: number) => `${n}s`;
const token = (email: string | null, scope: string | null) => (email ? `${email} (${scope ?? 'default scope'})` : null);

/**
 * Fields setup manages, with their update-mask path. Headers compare only the ones convergence
 * sets: Google adds its own (User-Agent) to stored jobs.
 */
const FIELDS: Array<{ field: string; get: (spec: JobSpec, want: JobSpec) => string | null }> = [
  { field: 'description', get: (s) => s.description },
  { field: 'schedule', get: (s) => s.schedule },
  { field: 'time_zone', get: (s) => s.timeZone },
  { field: 'http_target.uri', get: (s) => s.httpTarget?.uri ?? null },
  { field: 'http_target.http_method', get: (s) => s.httpTarget?.httpMethod ?? null },
  {
    field: 'http_target.headers',
    get: (s, want) =>
      s.httpTarget
        ? JSON.stringify(Object.fromEntries(Object.keys(want.httpTarget?.headers ?? {}).map((k) => [k, s.httpTarget!.headers[k] ?? null])))
        : null,
  },
  { field: 'http_target.body', get: (s) => s.httpTarget?.body ?? null },
  {
    field: 'http_target.oauth_token',
    get: (s) => (s.httpTarget ? token(s.httpTarget.oauthServiceAccount, s.httpTarget.oauthScope) : null),
  },
  { field: 'retry_config.retry_count', get: (s) => String(s.retry.retryCount) },
  { field: 'retry_config.max_retry_duration', get: (s) => secs(s.retry.maxRetryDurationSeconds) },
  { field: 'retry_config.min_backoff_duration', get: (s) => secs(s.retry.minBackoffSeconds) },
  { field: 'retry_config.max_backoff_duration', get: (s) => secs(s.retry.maxBackoffSeconds) },
  { field: 'retry_config.max_doublings', get: (s) => String(s.retry.maxDoublings) },
  { field: 'attempt_deadline', get: (s) => secs(s.attemptDeadlineSeconds) },
];

/** What differs between the job found and the job wanted, and the update mask that fixes it. */
function diffJob(found: JobSpec | undefined, want: JobSpec): { changes: FieldChange[]; mask: string[] } {
  const changes: FieldChange[] = [];
  for (const { field, get } of FIELDS) {
    const to = get(want, want) ?? '';
    const from = found ? get(found, want) : null;
    if (from !== to) changes.push({ field, from, to });
  }
  if (!found) return { changes, mask: [] };
  let mask = changes.map((c) => c.field);
  // Another kind of target, or an OIDC token in the oneof: replace the whole HTTP target.
  if (!found.httpTarget || found.httpTarget.oidcServiceAccount) {
    mask = [...mask.filter((m) => !m.startsWith('http_target.')), 'http_target'];
  }
  return { changes, mask };
}

interface SetupJobResult {
  id: string;
  name: string;
  action: 'create' | 'update' | 'unchanged';
  schedule: string;
  timeZone: string;
  task: ScheduledTask;
  taskCount: number;
  changes: FieldChange[];
  updateMask: string[];
  /** State of the job found, e.g. PAUSED (setup does not resume paused jobs). */
  state: string | null;
}

export interface SetupResult {
  env: string;
  backend: 'local' | 'gcp';
  parent: string;
  dryRun: boolean;
  /** Local: the plan only, nothing is written anywhere. */
  planOnly: boolean;
  jobs: SetupJobResult[];
  created: number;
  updated: number;
  unchanged: number;
}

/** Opens the environment's Schedule adapter; the caller closes it. */
async function openSchedule(ctx: ServiceContext): Promise<Schedule> {
  // What a job does when it is run in process (an environment without a scheduler: local).
  const prefix = jobIdPrefix(ctx.env.name);
  const runners = new Map<string, () => Promise<unknown>>([
    [
      `${prefix}reset-daily-quotas`,
      async () => {
        const { resetQuotas } = await import('../quotas.ts');
        return resetQuotas(ctx);
      },
    ],
    [
      `${prefix}cleanup-orphaned-pipelines`,
      async () => {
        const { cleanupOrphans } = await import('../maintenance.ts');
        return cleanupOrphans(ctx);
      },
    ],
  ]);
  return ctx.backends.schedule(runners);
}

async function withSchedule<R>(ctx: ServiceContext, work: (schedule: Schedule) => Promise<R>): Promise<R> {
  const schedule = await openSchedule(ctx);
  try {
    return await work(schedule);
  } finally {
    await schedule.close();
  }
}

function planOnly(ctx: ServiceContext, dryRun: boolean): SetupResult {
  const prefix = jobIdPrefix(ctx.env.name);
  const jobs = SCHEDULED_JOBS.map((plan): SetupJobResult => ({
    id: plan.id,
    name: `${prefix}${plan.id}`,
    action: 'unchanged',
    schedule: plan.schedule,
    timeZone: plan.timeZone,
    task: plan.task,
    taskCount: plan.taskCount,
    changes: [],
    updateMask: [],
    state: null,
  }));
  return { env: ctx.env.name, backend: 'local', parent: ctx.env.name, dryRun, planOnly: true, jobs, created: 0, updated: 0, unchanged: 0 };
}

export async function setupSchedule(ctx: ServiceContext, options: { dryRun?: boolean } = {}): Promise<SetupResult> {
  const dryRun = options.dryRun ?? false;
  const env = cloudEnv(ctx.env);
  if (!env) return planOnly(ctx, dryRun);
  return withSchedule(ctx, async (schedule) => {
    const wanted = desiredJobs(env, schedule.parent);
    const jobs: SetupJobResult[] = [];
    for (const { plan, spec } of wanted) {
      const found = await schedule.get(spec.name);
      const { changes, mask } = diffJob(found?.spec, spec);
      const action = !found ? 'create' : changes.length ? 'update' : 'unchanged';
      if (!dryRun) {
        if (action === 'create') await schedule.create(spec);
        else if (action === 'update') await schedule.update(spec, mask);
      }
      jobs.push({
        id: plan.id,
        name: spec.name,
        action,
        schedule: plan.schedule,
        timeZone: plan.timeZone,
        task: plan.task,
        taskCount: plan.taskCount,
        changes,
        updateMask: mask,
        state: found?.state ?? null,
      });
      if (found?.state === 'PAUSED')
        ctx.warn(`${spec.name} is PAUSED; setup leaves it paused (resume it with gcloud scheduler jobs resume)`);
    }
    // After the writes, so a second setup once the grant is in place has nothing left to do.
    await requireSchedulerMayRun(ctx, env);
    const count = (action: SetupJobResult['action']) => jobs.filter((j) => j.action === action).length;
    return {
      env: env.name,
      backend: 'gcp',
      parent: schedule.parent,
      dryRun,
      planOnly: false,
      jobs,
      created: count('create'),
      updated: count('update'),
      unchanged: count('unchanged'),
    };
  });
}

interface ListedJob {
  id: string;
  name: string;
  schedule: string;
  timeZone: string;
  /** ENABLED, PAUSED, ... ; NOT_CREATED for a planned job missing in Cloud Scheduler; PLANNED on local. */
  state: string;
  lastAttemptTime: Date | null;
  lastStatus: { code: number; message: string } | null;
  task: ScheduledTask | null;
}

export interface ListResult {
  env: string;
  backend: 'local' | 'gcp';
  parent: string;
  jobs: ListedJob[];
}

const shortId = (envName: string, name: string) => {
  const id = name.slice(name.lastIndexOf('/') + 1);
  const prefix = jobIdPrefix(envName);
  return id.startsWith(prefix) ? id.slice(prefix.length) : id;
};

export async function listSchedule(ctx: ServiceContext): Promise<ListResult> {
  const env = cloudEnv(ctx.env);
  if (!env) {
    const name = ctx.env.name;
    return {
      env: name,
      backend: 'local',
      parent: name,
      jobs: SCHEDULED_JOBS.map((plan) => ({
        id: plan.id,
        name: `${jobIdPrefix(name)}${plan.id}`,
        schedule: plan.schedule,
        timeZone: plan.timeZone,
        state: 'PLANNED',
        lastAttemptTime: null,
        lastStatus: null,
        task: plan.task,
      })),
    };
  }
  return withSchedule(ctx, async (schedule) => {
    const found = await schedule.list(jobIdPrefix(env.name));
    const listed = (job: ScheduledJob): ListedJob => {
      const id = shortId(env.name, job.spec.name);
      return {
        id,
        name: job.spec.name,
        schedule: job.spec.schedule,
        timeZone: job.spec.timeZone,
        state: job.state,
        lastAttemptTime: job.lastAttemptTime,
        lastStatus: job.lastStatus,
        task: SCHEDULED_JOBS.find((p) => p.id === id)?.task ?? null,
      };
    };
    const jobs = found.map(listed);
    for (const plan of SCHEDULED_JOBS) {
      if (!jobs.some((j) => j.id === plan.id)) {
        jobs.push({
          id: plan.id,
          name: `${schedule.parent}/jobs/${jobIdPrefix(env.name)}${plan.id}`,
          schedule: plan.schedule,
          timeZone: plan.timeZone,
          state: 'NOT_CREATED',
          lastAttemptTime: null,
          lastStatus: null,
          task: plan.task,
        });
      }
    }
    return { env: env.name, backend: 'gcp', parent: schedule.parent, jobs };
  });
}

/** A job argument: the short id, the job id with its convergence-<env>- prefix, or the full name. */
function resolveJobName(envName: string, parent: string, job: string): { id: string; name: string } {
  const prefix = jobIdPrefix(envName);
  let id = job;
  if (job.includes('/')) {
    if (!job.startsWith(`${parent}/jobs/`)) throw usageError(`${job} is not a job of ${parent}`);
    id = job.slice(`${parent}/jobs/`.length);
  }
  if (id.startsWith(prefix)) id = id.slice(prefix.length);
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(id)) {
    throw usageError(`"${job}" is not a scheduler job name`, { suggestion: `one of: ${SCHEDULED_JOBS.map((p) => p.id).join(', ')}` });
  }
  const name = parent.includes('/') ? `${parent}/jobs/${prefix}${id}` : `${prefix}${id}`;
  return { id, name };
}

export interface ScheduledRunResult {
  env: string;
  id: string;
  name: string;
  /** cloud: Cloud Scheduler was asked to run the job now; in-process: the local env did the work here. */
  mode: 'cloud' | 'in-process';
  state: string | null;
  lastAttemptTime: Date | null;
  lastStatus: { code: number; message: string } | null;
  /** What the in-process run returned (local only). */
  result?: unknown;
}

export async function runScheduledJob(ctx: ServiceContext, job: string): Promise<ScheduledRunResult> {
  return withSchedule(ctx, async (schedule) => {
    const { id, name } = resolveJobName(ctx.env.name, schedule.parent, job);
    if (schedule.kind === 'local') {
      if (!SCHEDULED_JOBS.some((p) => p.id === id)) {
        throw usageError(`unknown scheduler job "${job}"`, { suggestion: `one of: ${SCHEDULED_JOBS.map((p) => p.id).join(', ')}` });
      }
      await schedule.run(name);
      const result = (schedule as { lastResult?: unknown }).lastResult;
      return { env: ctx.env.name, id, name, mode: 'in-process', state: null, lastAttemptTime: ctx.now(), lastStatus: null, result };
    }
    const ran = await schedule.run(name);
    return {
      env: ctx.env.name,
      id,
      name,
      mode: 'cloud',
      state: ran?.state ?? null,
      lastAttemptTime: ran?.lastAttemptTime ?? null,
      lastStatus: ran?.lastStatus ?? null,
    };
  });
}

export interface DeleteResult {
  env: string;
  id: string;
  name: string;
  deleted: boolean;
}

/** The resolved name of a job, for the confirmation prompt before delete. */
export function scheduledJobName(ctx: ServiceContext, job: string): string {
  const env = cloudEnv(ctx.env);
  if (!env) {
    throw usageError(`the local environment "${ctx.env.name}" has no Cloud Scheduler jobs to delete`, {
      suggestion: 'pass --env <cloud environment>',
    });
  }
  return resolveJobName(env.name, `projects/${env.settings.project}/locations/${env.settings.region}`, job).name;
}

export async function deleteScheduledJob(ctx: ServiceContext, job: string): Promise<DeleteResult> {
  return withSchedule(ctx, async (schedule) => {
    const { id, name } = resolveJobName(ctx.env.name, schedule.parent, job);
    await schedule.delete(name);
    return { env: ctx.env.name, id, name, deleted: true };
  });
}
