/**
 * Headless logging for Cloud Run Jobs: one JSON object per line in the shape Cloud Logging parses
 * from a container's output (severity, message, trace, labels, time). No colour, no prompts.
 * Every string is passed through `redact` so a token that slips into an error message never
 * reaches the log.
 */
import { redactCredentials } from '../lib/redaction.ts';

export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

export interface CloudRunTask {
  job?: string;
  execution?: string;
  taskIndex: number;
  taskCount: number;
  taskAttempt: number;
}

/** The task env vars Cloud Run sets in a job's container (DESIGN: Cloud Run, Jobs, Scheduler). */
export function cloudRunTask(env: NodeJS.ProcessEnv = process.env): CloudRunTask {
  const int = (value: string | undefined, fallback: number) => {
    const n = Number(value);
    return value !== undefined && value !== '' && Number.isInteger(n) && n >= 0 ? n : fallback;
  };
  const taskCount = Math.max(1, int(env.CLOUD_RUN_TASK_COUNT, 1));
  return {
    ...(env.CLOUD_RUN_JOB ? { job: env.CLOUD_RUN_JOB } : {}),
    ...(env.CLOUD_RUN_EXECUTION ? { execution: env.CLOUD_RUN_EXECUTION } : {}),
    taskIndex: Math.min(int(env.CLOUD_RUN_TASK_INDEX, 0), taskCount - 1),
    taskCount,
    taskAttempt: int(env.CLOUD_RUN_TASK_ATTEMPT, 0),
  };
}

export interface LogLabels {
  tenant_id?: string;
  pipeline_id?: string;
  run_id?: string;
  schedule_id?: string;
}

/** Masks credentials in free text (see redactCredentials); kept under this name for the logger's callers. */
export const redact = redactCredentials;

function redactDeep(value: unknown): unknown {
  if (typeof value === 'string') return redact(value);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(redactDeep);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)]));
  return value;
}

export interface JobLoggerOptions {
  task: CloudRunTask;
  project?: string;
  write?: (line: string) => void;
  now?: () => Date;
  labels?: LogLabels;
}

export class JobLogger {
  readonly #write: (line: string) => void;
  readonly #now: () => Date;
  readonly #task: CloudRunTask;
  #project: string | undefined;
  readonly #labels: LogLabels;

  constructor(options: JobLoggerOptions) {
    this.#write = options.write ?? ((line) => process.stdout.write(line));
    this.#now = options.now ?? (() => new Date());
    this.#task = options.task;
    this.#project = options.project;
    this.#labels = { ...(options.labels ?? {}) };
  }

  /** Known once the environment is resolved; the trace needs it. */
  set project(project: string | undefined) {
    this.#project = project;
  }

  /** A logger whose lines also carry these labels (e.g. one schedule's tenant and pipeline). */
  child(labels: LogLabels): JobLogger {
    const child = new JobLogger({
      task: this.#task,
      write: this.#write,
      now: this.#now,
      labels: { ...this.#labels, ...labels },
      ...(this.#project ? { project: this.#project } : {}),
    });
    return child;
  }

  /** Adds labels to every later line of this logger (the run id once it is known). */
  label(labels: LogLabels): void {
    Object.assign(this.#labels, labels);
  }

  debug(message: string, fields?: Record<string, unknown>): void {
    this.log('DEBUG', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.log('INFO', message, fields);
  }
  warning(message: string, fields?: Record<string, unknown>): void {
    this.log('WARNING', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.log('ERROR', message, fields);
  }

  log(severity: Severity, message: string, fields: Record<string, unknown> = {}): void {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.#labels)) if (v !== undefined && v !== '') labels[k] = String(v);
    if (this.#task.job) labels['job'] = this.#task.job;
    if (this.#task.execution) labels['execution'] = this.#task.execution;
    labels['task_index'] = String(this.#task.taskIndex);
    if (this.#task.taskAttempt) labels['task_attempt'] = String(this.#task.taskAttempt);
    const entry: Record<string, unknown> = {
      severity,
      message: redact(message),
      ...(redactDeep(fields) as Record<string, unknown>),
      ...(this.#project && this.#task.execution
        ? { 'logging.googleapis.com/trace': `projects/${this.#project}/traces/${this.#task.execution}` }
        : {}),
      'logging.googleapis.com/labels': labels,
      time: this.#now().toISOString(),
    };
    this.#write(`${JSON.stringify(entry)}\n`);
  }
}
