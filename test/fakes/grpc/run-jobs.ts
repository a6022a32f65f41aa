/**
 * Cloud Run jobs and executions (google.cloud.run.v2.Jobs / Executions). RunJob applies
 * `overrides` (container args and env, task count, timeout) to the job's task template, asks the
 * test's onRunJob handler how the execution ends, and returns an operation that, like Run's,
 * completes when the execution does: response = the Execution when it succeeded or was
 * cancelled, error when tasks failed. An execution completes on its Nth look (GetExecution, or a
 * poll of its RunJob operation), so `--wait` loops have something to follow.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerLogSink } from './logging.ts';
import { paginate, timestamp, type OperationState } from './operations.ts';
import { RunCollection } from './run-collection.ts';
import {
  canonical,
  checkContainers,
  checkEtag,
  checkEnv,
  condition,
  durationSeconds,
  etagOf,
  normalize,
  notFound,
  pack,
  parseName,
  seconds,
  suffix,
  type Location,
  type Message,
  type RunContext,
} from './run-common.ts';
import { FakeStatus, status, type GrpcCode } from './status.ts';

const MAX_JOB_ID = 63;
const MAX_TASKS = 10_000;
const MAX_TIMEOUT_SECONDS = 168 * 3600;
const MAX_PAGE = 1000;

const JOB_OUTPUT_ONLY = [
  'name',
  'uid',
  'generation',
  'createTime',
  'updateTime',
  'deleteTime',
  'expireTime',
  'creator',
  'lastModifier',
  'observedGeneration',
  'terminalCondition',
  'conditions',
  'executionCount',
  'latestCreatedExecution',
  'reconciling',
  'satisfiesPzs',
  'etag',
];

/** What a test's onRunJob handler is told about a RunJob call. */
export interface RunJobCall {
  /** projects/P/locations/L/jobs/J */
  job: string;
  /** projects/P/locations/L/jobs/J/executions/E */
  execution: string;
  /** The request's overrides as decoded (containerOverrides, taskCount, timeout). */
  overrides: Message | null;
  taskCount: number;
  timeoutSeconds: number;
  /** Effective args and literal env of the first container, overrides applied. */
  args: string[];
  env: Record<string, string>;
  /** Every container after overrides, as the execution's template holds them. */
  containers: Message[];
  /** What each task's container would see: its env plus the CLOUD_RUN_* variables Run sets. */
  tasks: Array<{ index: number; env: Record<string, string> }>;
  /**
   * A line the container of task `taskIndex` wrote: Run forwards it to Cloud Logging (the sink
   * given to forwardLogs) on the job's resource, labelled with the execution and task.
   */
  output(line: string, stream?: 'stdout' | 'stderr', taskIndex?: number): void;
}

/** How an execution ends; counts default to every task succeeding. */
export interface RunJobOutcome {
  succeeded?: number;
  failed?: number;
  cancelled?: number;
  retried?: number;
  logUri?: string;
  /** Looks before the execution completes; the fake-wide setting when left out. */
  polls?: number;
  /** Message of the failed Completed condition. */
  message?: string;
  /**
   * The execution fails with no task counted failed, as when its container never starts or it
   * times out before a task reports: only the Completed condition tells.
   */
  failedBeforeAnyTask?: boolean;
  /** The RunJob operation's error when tasks failed (default FAILED_PRECONDITION). */
  error?: { code: GrpcCode; message: string };
}

export type RunJobHandler = (call: RunJobCall) => RunJobOutcome | void | Promise<RunJobOutcome | void>;

type ExecutionState = 'running' | 'succeeded' | 'failed' | 'cancelled';

interface Execution {
  id: string;
  uid: string;
  job: Job;
  createTime: Date;
  updateTime: Date;
  completionTime: Date | undefined;
  taskCount: number;
  parallelism: number;
  template: Message;
  labels: Message;
  annotations: Message;
  outcome: Required<Pick<RunJobOutcome, 'succeeded' | 'failed' | 'cancelled' | 'retried'>> & RunJobOutcome;
  remaining: number;
  state: ExecutionState;
  serial: number;
  logUri: string;
}

interface Job {
  id: string;
  location: Location;
  uid: string;
  spec: Message;
  generation: number;
  observedGeneration: number;
  createTime: Date;
  updateTime: Date;
  serial: number;
  reconciling: boolean;
  executionCount: number;
  executions: Map<string, Execution>;
  operation: string | undefined;
}

const jobName = (job: Job) => `${job.location.path}/jobs/${job.id}`;
const executionName = (execution: Execution) => `${jobName(execution.job)}/executions/${execution.id}`;

export class RunJobs extends RunCollection<Job> {
  #handler: RunJobHandler | undefined;
  #executionPolls = 0;
  #logSink: ContainerLogSink | undefined;

  constructor(ctx: RunContext) {
    super(ctx, { collection: 'jobs', kind: 'JOB', type: 'Job', field: 'job', maxIdLength: MAX_JOB_ID });
  }

  onRunJob(handler: RunJobHandler | undefined): void {
    this.#handler = handler;
  }

  forwardLogs(sink: ContainerLogSink | undefined): void {
    this.#logSink = sink;
  }

  setExecutionPolls(polls: number): void {
    if (!Number.isInteger(polls) || polls < 0) throw new Error(`polls must be a non-negative integer, got ${polls}`);
    this.#executionPolls = polls;
  }

  /** Executions of a job as ListExecutions answers (newest first), without counting as looks. */
  peekExecutions(name: string): Message[] {
    const job = this.resources.get(name);
    return job ? this.#newestFirst(job).map((execution) => this.#describeExecution(execution)) : [];
  }

  jobsHandlers(): Record<string, (request: Message) => unknown> {
    return {
      ...this.commonHandlers(),
      CreateJob: (request) => this.#create(request),
      ListJobs: (request) => {
        const { items, nextPageToken } = this.listed(request);
        return { jobs: items.map((job) => this.describe(job)), nextPageToken };
      },
      UpdateJob: (request) => this.#update(request),
      RunJob: (request) => this.#run(request),
    };
  }

  executionsHandlers(): Record<string, (request: Message) => unknown> {
    return {
      GetExecution: (request) => {
        const execution = this.#findExecution(String(request.name), 'run.executions.get');
        this.#look(execution);
        return this.#describeExecution(execution);
      },
      ListExecutions: (request) => {
        const all = this.parentsOf(String(request.parent), 'run.executions.list')
          .flatMap((job) => this.#newestFirst(job))
          .sort((a, b) => b.createTime.getTime() - a.createTime.getTime());
        const { items, nextPageToken } = paginate(all, request, MAX_PAGE);
        return { executions: items.map((execution) => this.#describeExecution(execution)), nextPageToken };
      },
      CancelExecution: (request) => {
        const execution = this.#findExecution(String(request.name), 'run.executions.cancel');
        checkEtag(String(request.etag ?? ''), etagOf(execution.uid, execution.serial), execution.id);
        if (execution.state !== 'running') {
          throw new FakeStatus(status.FAILED_PRECONDITION, `Execution '${execution.id}' has already completed and cannot be cancelled.`);
        }
        if (!request.validateOnly) this.#finish(execution, 'cancelled');
        return this.ctx.operations.start(execution.job.location.path, {
          metadata: () => pack('Execution', this.#describeExecution(execution)),
          complete: () => pack('Execution', this.#describeExecution(execution)),
        });
      },
      DeleteExecution: (request) => {
        const execution = this.#findExecution(String(request.name), 'run.executions.delete');
        checkEtag(String(request.etag ?? ''), etagOf(execution.uid, execution.serial), execution.id);
        if (execution.state === 'running' && !request.validateOnly) this.#finish(execution, 'cancelled');
        const last = this.#describeExecution(execution);
        if (!request.validateOnly) execution.job.executions.delete(execution.id);
        return this.ctx.operations.start(execution.job.location.path, {
          metadata: () => pack('Execution', last),
          complete: () => pack('Execution', last),
        });
      },
    };
  }

  #create(request: Message, allowMissingName?: string) {
    const { body, location, id, name } = this.newResource(request, allowMissingName);
    const now = this.ctx.now();
    const job: Job = {
      id,
      location,
      uid: randomUUID(),
      spec: this.#spec(body),
      generation: 1,
      observedGeneration: 0,
      createTime: now,
      updateTime: now,
      serial: 1,
      reconciling: true,
      executionCount: 0,
      executions: new Map(),
      operation: undefined,
    };
    if (!request.validateOnly) this.resources.set(name, job);
    return this.#reconcileOperation(job, Boolean(request.validateOnly));
  }

  #update(request: Message) {
    const { body, name, location, resource: job } = this.updating(request);
    if (!job) return this.#create(request, name);
    this.settle(job);
    checkEtag(String(body.etag ?? ''), etagOf(job.uid, job.serial), job.id);
    const spec = this.#spec(body);
    if (canonical(spec) === canonical(job.spec) || request.validateOnly) {
      return this.ctx.operations.start(location.path, {
        metadata: () => pack('Job', this.describe(job)),
        complete: () => pack('Job', request.validateOnly ? this.describe({ ...job, spec }) : this.describe(job)),
      });
    }
    job.spec = spec;
    job.generation += 1;
    job.updateTime = this.ctx.now();
    job.serial += 1;
    job.reconciling = true;
    return this.#reconcileOperation(job, false);
  }

  #reconcileOperation(job: Job, preview: boolean) {
    const operation = this.ctx.operations.start(job.location.path, {
      ...(preview ? { polls: 0 } : {}),
      metadata: () => pack('Job', this.describe(job)),
      complete: () => {
        if (!preview) {
          job.operation = undefined;
          job.reconciling = false;
          job.observedGeneration = job.generation;
          job.serial += 1;
        }
        return pack('Job', this.describe(job));
      },
    });
    if (!operation.done && !preview) job.operation = String(operation.name);
    return operation;
  }

  async #run(request: Message) {
    const job = this.find(String(request.name), 'run.jobs.run');
    const overrides = request.overrides as Message | null;
    const containerOverrides = (overrides?.containerOverrides ?? []) as Message[];
    const overridden = Boolean(overrides && (containerOverrides.length > 0 || Number(overrides.taskCount) > 0 || overrides.timeout));
    if (overridden) this.ctx.require('run.jobs.runWithOverrides', jobName(job));
    this.settle(job);
    checkEtag(String(request.etag ?? ''), etagOf(job.uid, job.serial), job.id);

    const executionTemplate = job.spec.template as Message;
    const taskTemplate = structuredClone(executionTemplate.template as Message);
    const containers = taskTemplate.containers as Message[];
    containerOverrides.forEach((override, index) => {
      const field = `overrides.containerOverrides[${index}]`;
      const wanted = String(override.name ?? '');
      const target = wanted
        ? containers.find((container) => container.name === wanted)
        : containers.length === 1
          ? containers[0]
          : undefined;
      if (!target) {
        throw new FakeStatus(
          status.INVALID_ARGUMENT,
          wanted
            ? `${field}.name: job '${job.id}' has no container named '${wanted}'.`
            : `${field}.name: required when the job has more than one container.`,
        );
      }
      const args = (override.args ?? []) as string[];
      if (override.clearArgs && args.length > 0) {
        throw new FakeStatus(status.INVALID_ARGUMENT, `${field}: clear_args and args cannot both be set.`);
      }
      checkEnv(override.env, `${field}.env`);
      if (override.clearArgs) target.args = [];
      else if (args.length > 0) target.args = [...args];
      const env = [...((target.env ?? []) as Message[])];
      for (const variable of (override.env ?? []) as Message[]) {
        const at = env.findIndex((existing) => existing.name === variable.name);
        if (at >= 0) env[at] = variable;
        else env.push(variable);
      }
      target.env = env;
    });
    const taskCountOverride = Number(overrides?.taskCount ?? 0);
    if (taskCountOverride < 0 || taskCountOverride > MAX_TASKS) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `overrides.task_count: must be between 0 and ${MAX_TASKS}, got ${taskCountOverride}.`);
    }
    const taskCount = taskCountOverride || Number(executionTemplate.taskCount);
    if (overrides?.timeout) {
      const timeout = durationSeconds(overrides.timeout)!;
      if (timeout <= 0 || timeout > MAX_TIMEOUT_SECONDS) {
        throw new FakeStatus(
          status.INVALID_ARGUMENT,
          `overrides.timeout: must be positive and at most ${MAX_TIMEOUT_SECONDS}s, got ${timeout}s.`,
        );
      }
      taskTemplate.timeout = overrides.timeout;
    }
    const timeoutSeconds = durationSeconds(taskTemplate.timeout) ?? 600;

    const now = this.ctx.now();
    let id = '';
    for (let attempt = 0; !id || job.executions.has(id); attempt += 1)
      id = `${job.id}-${suffix(`${job.uid}/${job.executionCount}/${attempt}`, 5)}`;
    const execution: Execution = {
      id,
      uid: randomUUID(),
      job,
      createTime: now,
      updateTime: now,
      completionTime: undefined,
      taskCount,
      parallelism: Number(executionTemplate.parallelism) || taskCount,
      template: taskTemplate,
      labels: (executionTemplate.labels ?? {}) as Message,
      annotations: (executionTemplate.annotations ?? {}) as Message,
      outcome: { succeeded: taskCount, failed: 0, cancelled: 0, retried: 0 },
      remaining: this.#executionPolls,
      state: 'running',
      serial: 1,
      logUri: '',
    };
    const literalEnv = (container: Message | undefined) =>
      Object.fromEntries(
        ((container?.env ?? []) as Message[])
          .filter((variable) => !variable.valueSource)
          .map((variable) => [String(variable.name), String(variable.value ?? '')]),
      );
    const call: RunJobCall = {
      job: jobName(job),
      execution: executionName(execution),
      overrides,
      taskCount,
      timeoutSeconds,
      args: [...(((containers[0]?.args ?? []) as string[]) ?? [])],
      env: literalEnv(containers[0]),
      containers,
      tasks: Array.from({ length: taskCount }, (_unused, index) => ({
        index,
        env: {
          ...literalEnv(containers[0]),
          CLOUD_RUN_JOB: job.id,
          CLOUD_RUN_EXECUTION: execution.id,
          CLOUD_RUN_TASK_INDEX: String(index),
          CLOUD_RUN_TASK_ATTEMPT: '0',
          CLOUD_RUN_TASK_COUNT: String(taskCount),
        },
      })),
      output: (text, stream = 'stdout', taskIndex = 0) => {
        const source = {
          project: job.location.project,
          location: job.location.region,
          job: job.id,
          execution: execution.id,
          taskIndex,
          stream,
        };
        for (const line of text.split('\n')) this.#logSink?.containerLine(line, source);
      },
    };
    const outcome = (await this.#handler?.(call)) ?? {};
    const failed = outcome.failed ?? 0;
    const cancelled = outcome.cancelled ?? 0;
    const succeeded = outcome.succeeded ?? (outcome.failedBeforeAnyTask ? 0 : Math.max(0, taskCount - failed - cancelled));
    if (succeeded + failed + cancelled > taskCount) {
      throw new Error(`onRunJob outcome counts ${succeeded}+${failed}+${cancelled} exceed the task count ${taskCount}`);
    }
    execution.outcome = { ...outcome, succeeded, failed, cancelled, retried: outcome.retried ?? 0 };
    execution.remaining = outcome.polls ?? this.#executionPolls;
    const { project, region } = job.location;
    execution.logUri =
      outcome.logUri ??
      `https://console.cloud.google.com/logs/viewer?project=${project}&advancedFilter=resource.type%3D%22cloud_run_job%22%0Aresource.labels.job_name%3D%22${job.id}%22%0Aresource.labels.location%3D%22${region}%22%0Alabels.%22run.googleapis.com/execution_name%22%3D%22${execution.id}%22`;

    if (request.validateOnly) {
      return this.ctx.operations.start(job.location.path, {
        polls: 0,
        metadata: () => undefined,
        complete: () => pack('Execution', this.#describeExecution(execution)),
      });
    }
    job.executions.set(execution.id, execution);
    job.executionCount += 1;
    job.serial += 1;
    if (execution.remaining <= 0) this.#finish(execution, this.#ending(execution));
    let started = false;
    return this.ctx.operations.startDriven(job.location.path, {
      poll: (): OperationState => {
        if (started) this.#look(execution);
        started = true;
        const metadata = pack('Execution', this.#describeExecution(execution));
        if (execution.state === 'running') return { done: false, metadata };
        if (execution.state === 'failed') {
          const error = execution.outcome.error ?? {
            code: status.FAILED_PRECONDITION,
            message: `The execution '${execution.id}' failed: ${execution.outcome.failed} of ${execution.taskCount} tasks failed.`,
          };
          return { done: true, metadata, error };
        }
        return { done: true, metadata, response: metadata };
      },
    });
  }

  /** A client looked at a running execution: one step closer to its end. */
  #look(execution: Execution): void {
    if (execution.state !== 'running') return;
    execution.remaining -= 1;
    if (execution.remaining <= 0) this.#finish(execution, this.#ending(execution));
  }

  #ending(execution: Execution): Exclude<ExecutionState, 'running'> {
    const { failed, cancelled, failedBeforeAnyTask } = execution.outcome;
    return failed > 0 || failedBeforeAnyTask ? 'failed' : cancelled > 0 ? 'cancelled' : 'succeeded';
  }

  #finish(execution: Execution, state: Exclude<ExecutionState, 'running'>): void {
    const now = this.ctx.now();
    if (state === 'cancelled' && execution.state === 'running' && execution.outcome.cancelled === 0) {
      // Cancelled by a caller: the tasks still running never finish.
      execution.outcome = { ...execution.outcome, succeeded: 0, failed: 0, cancelled: execution.taskCount };
    }
    execution.state = state;
    execution.completionTime = now;
    execution.updateTime = now;
    execution.serial += 1;
    execution.job.serial += 1;
  }

  #spec(body: Message): Message {
    if (body.startExecutionToken || body.runExecutionToken) {
      throw new FakeStatus(status.UNIMPLEMENTED, 'the fake does not start executions from start_execution_token / run_execution_token');
    }
    const rawTask = ((body.template as Message | null)?.template ?? null) as Message | null;
    const retriesSet = rawTask?.retries === 'maxRetries';
    const spec = normalize('Job', body);
    for (const field of JOB_OUTPUT_ONLY) delete spec[field];
    const template = spec.template as Message | null;
    if (!template) throw new FakeStatus(status.INVALID_ARGUMENT, 'job.template: Field is required.');
    const task = template.template as Message | null;
    if (!task) throw new FakeStatus(status.INVALID_ARGUMENT, 'job.template.template: Field is required.');
    checkContainers(task.containers, 'job.template.template.containers');
    const taskCount = Number(template.taskCount);
    if (taskCount < 0 || taskCount > MAX_TASKS) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `job.template.task_count: must be between 1 and ${MAX_TASKS}, got ${taskCount}.`);
    }
    if (taskCount === 0) template.taskCount = 1;
    if (!retriesSet) task.maxRetries = 3;
    const maxRetries = Number(task.maxRetries);
    if (maxRetries < 0 || maxRetries > 10) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `job.template.template.max_retries: must be between 0 and 10, got ${maxRetries}.`);
    }
    task.timeout ??= seconds(600);
    const timeout = durationSeconds(task.timeout)!;
    if (timeout <= 0 || timeout > MAX_TIMEOUT_SECONDS) {
      throw new FakeStatus(status.INVALID_ARGUMENT, `job.template.template.timeout: must be positive and at most ${MAX_TIMEOUT_SECONDS}s.`);
    }
    return normalize('Job', spec);
  }

  #findExecution(name: string, permission: string): Execution {
    const { location, id, subId } = parseName(name, 'jobs', 'executions');
    this.ctx.require(permission, name);
    const execution = this.resources.get(`${location.path}/jobs/${id}`)?.executions.get(subId!);
    if (!execution) throw notFound('EXECUTION', subId!, location);
    return execution;
  }

  #newestFirst(job: Job): Execution[] {
    return [...job.executions.values()].sort((a, b) => b.createTime.getTime() - a.createTime.getTime());
  }

  protected describe(job: Job): Message {
    const latest = this.#newestFirst(job)[0];
    const ready = job.reconciling ? 'CONDITION_RECONCILING' : 'CONDITION_SUCCEEDED';
    return {
      ...job.spec,
      name: jobName(job),
      uid: job.uid,
      generation: String(job.generation),
      createTime: timestamp(job.createTime),
      updateTime: timestamp(job.updateTime),
      observedGeneration: String(job.observedGeneration),
      terminalCondition: condition('Ready', ready, job.updateTime),
      conditions: [],
      executionCount: job.executionCount,
      latestCreatedExecution: latest
        ? {
            name: executionName(latest),
            createTime: timestamp(latest.createTime),
            completionTime: timestamp(latest.completionTime),
            deleteTime: null,
            completionStatus: {
              running: 'EXECUTION_RUNNING',
              succeeded: 'EXECUTION_SUCCEEDED',
              failed: 'EXECUTION_FAILED',
              cancelled: 'EXECUTION_CANCELLED',
            }[latest.state],
          }
        : null,
      reconciling: job.reconciling,
      etag: etagOf(job.uid, job.serial),
    };
  }

  #describeExecution(execution: Execution): Message {
    const { state, outcome, taskCount } = execution;
    const at = execution.updateTime;
    const started = [
      condition('ResourcesAvailable', 'CONDITION_SUCCEEDED', execution.createTime),
      condition('Started', 'CONDITION_SUCCEEDED', execution.createTime),
    ];
    const elapsed = Math.max(1, Math.round(((execution.completionTime ?? at).getTime() - execution.createTime.getTime()) / 1000));
    const completed =
      state === 'running'
        ? condition('Completed', 'CONDITION_RECONCILING', at)
        : state === 'succeeded'
          ? condition('Completed', 'CONDITION_SUCCEEDED', at, { message: `Execution completed successfully in ${elapsed}s.` })
          : state === 'failed'
            ? condition('Completed', 'CONDITION_FAILED', at, {
                message: outcome.message ?? `Task ${execution.id}-task0 failed with message: The container exited with an error.`,
                executionReason: 'NON_ZERO_EXIT_CODE',
              })
            : condition('Completed', 'CONDITION_FAILED', at, { message: 'The execution was cancelled.', executionReason: 'CANCELLED' });
    const running = state === 'running';
    return {
      name: executionName(execution),
      uid: execution.uid,
      generation: '1',
      labels: execution.labels,
      annotations: execution.annotations,
      createTime: timestamp(execution.createTime),
      startTime: timestamp(execution.createTime),
      completionTime: timestamp(execution.completionTime),
      updateTime: timestamp(execution.updateTime),
      launchStage: execution.job.spec.launchStage,
      job: execution.job.id,
      parallelism: execution.parallelism,
      taskCount,
      template: execution.template,
      reconciling: running,
      conditions: [completed, ...started],
      observedGeneration: '1',
      runningCount: running ? Math.min(execution.parallelism, taskCount) : 0,
      succeededCount: running ? 0 : outcome.succeeded,
      failedCount: running ? 0 : outcome.failed,
      cancelledCount: running ? 0 : outcome.cancelled,
      retriedCount: running ? 0 : outcome.retried,
      logUri: execution.logUri,
      etag: etagOf(execution.uid, execution.serial),
    };
  }
}
