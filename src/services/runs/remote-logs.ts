/**
 * The log lines of a run's Cloud Run execution, read back from Cloud Logging: all at once
 * (`pipeline logs`), tailed until the run ends (`pipeline logs --follow`), or streamed while
 * `pipeline run --remote --wait` follows its execution. The run is named by its validated id and
 * the environment's job only; the container labels every line with the run id (job/logger.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cloudEnv } from '../../backends/factory.ts';
import { LOG_SEVERITIES, type LogSeverity, type RunLogEntry, type RunLogs } from '../../backends/logs/port.ts';
import { TERMINAL_RUN_STATES } from '../../domain/states.ts';
import { validationError } from '../../lib/errors.ts';
import { redactCredentials } from '../../lib/redaction.ts';
import type { ServiceContext } from '../context.ts';
import { assertRunId, getRun, getRunDetails, type RunDetails, type RunRecord } from './store.ts';

export type { RunLogEntry } from '../../backends/logs/port.ts';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
const PAGE_SIZE = 1000;
/** Entries are looked for from this long before the run's row was written: clocks of the CLI and Run differ a little. */
const CLOCK_SKEW_MS = 5 * 60_000;
/**
 * Cloud Logging may index an entry seconds after a later one: each look of a tail goes back this
 * far behind the newest entry seen, and drops the ones it already showed (by insertId).
 */
const LATE_ARRIVAL_MS = 10_000;
/** How long a follow keeps going after the run's own timeout: the row of a run whose container died stays RUNNING. */
const FOLLOW_GRACE_MS = 10 * 60_000;
/** The container writes its last lines after it ends the run row, and Cloud Logging shows them a moment later. */
const LAST_LINES_MS = 5_000;

export interface RunLogOptions {
  /** At most this many entries (the newest), 1..10000; 1000 by default. */
  limit?: number;
  /** Entries of at least this severity (DEBUG, INFO, WARNING, ERROR, ...). */
  severity?: string;
}

export interface RunLogsView extends RunDetails {
  /** The run's Cloud Logging entries, oldest first; null where the environment has no Cloud Logging. */
  entries: RunLogEntry[] | null;
  /** True when older entries were left out to keep to the limit. */
  truncated: boolean;
}

interface RunLogTarget {
  job: string;
  runId: string;
  execution?: string;
  since: Date;
  minSeverity?: LogSeverity;
}

function parseLimit(limit: number | undefined): number {
  const value = limit ?? DEFAULT_LIMIT;
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw validationError(`--limit must be a whole number from 1 to ${MAX_LIMIT}, got ${value}`);
  }
  return value;
}

function parseSeverity(severity: string | undefined): LogSeverity | undefined {
  if (severity === undefined) return undefined;
  const upper = severity.toUpperCase();
  if (!(LOG_SEVERITIES as readonly string[]).includes(upper)) {
    throw validationError(`unknown severity ${JSON.stringify(severity.slice(0, 40))}`, {
      suggestion: `one of ${LOG_SEVERITIES.join(', ')}`,
    });
  }
  return upper as LogSeverity;
}

/**
 * Entries as they are shown: secrets this process knows and anything that looks like a credential
 * masked, as the job's own logger masks what it writes (a container line may print anything).
 */
const redacted = (entry: RunLogEntry): RunLogEntry => ({ ...entry, message: redactCredentials(entry.message) });

/** The environment's pipeline job, or undefined (with a warning) where there are no remote logs to read. */
function pipelineJob(ctx: ServiceContext): string | undefined {
  const env = cloudEnv(ctx.env);
  if (!env || !ctx.backends.runLogs) return undefined;
  if (!env.settings.job) {
    ctx.warn(`environment "${env.name}" has no job, so its runs' Cloud Logging entries cannot be found; set environments.${env.name}.job`);
    return undefined;
  }
  return env.settings.job;
}

const targetOf = (job: string, run: RunRecord, minSeverity: LogSeverity | undefined): RunLogTarget => ({
  job,
  runId: run.runId,
  ...(run.executionName ? { execution: run.executionName } : {}),
  since: new Date(run.createdAt.getTime() - CLOCK_SKEW_MS),
  ...(minSeverity ? { minSeverity } : {}),
});

/** The newest `limit` entries of a run, oldest first, and whether older ones were left out. */
async function newestEntries(logs: RunLogs, target: RunLogTarget, limit: number): Promise<{ entries: RunLogEntry[]; truncated: boolean }> {
  const newestFirst: RunLogEntry[] = [];
  let pageToken: string | undefined;
  do {
    const page = await logs.list({ ...target, order: 'desc', pageSize: Math.min(PAGE_SIZE, limit - newestFirst.length), pageToken });
    newestFirst.push(...page.entries);
    pageToken = page.nextPageToken;
  } while (pageToken && newestFirst.length < limit);
  return { entries: newestFirst.slice(0, limit).reverse().map(redacted), truncated: Boolean(pageToken) };
}

/**
 * A run's entries as they arrive: each look returns the entries not returned before, oldest
 * first, going back LATE_ARRIVAL_MS behind the newest one seen for entries indexed late.
 */
class RunLogTail {
  readonly #logs: RunLogs;
  #target: RunLogTarget;
  readonly #seen = new Set<string>();
  #cursor: Date;

  constructor(logs: RunLogs, target: RunLogTarget) {
    this.#logs = logs;
    this.#target = target;
    this.#cursor = target.since;
  }

  /**
   * From now on, every line of the execution the run had to itself (a remote start records it once
   * Run has started it), looking again from the start for its plain-text lines.
   */
  useExecution(execution: string): void {
    if (this.#target.execution === execution) return;
    this.#target = { ...this.#target, execution };
    this.#cursor = this.#target.since;
  }

  async next(): Promise<RunLogEntry[]> {
    const since = new Date(Math.max(this.#target.since.getTime(), this.#cursor.getTime() - LATE_ARRIVAL_MS));
    const fresh: RunLogEntry[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.#logs.list({ ...this.#target, since, order: 'asc', pageSize: PAGE_SIZE, pageToken });
      for (const entry of page.entries) {
        if (this.#seen.has(entry.insertId)) continue;
        this.#seen.add(entry.insertId);
        fresh.push(redacted(entry));
        if (entry.timestamp > this.#cursor) this.#cursor = entry.timestamp;
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    return fresh;
  }
}

/** `pipeline logs`: the run and its steps, and on a cloud environment the newest entries its execution logged. */
export async function readRunLogs(ctx: ServiceContext, runId: string, options: RunLogOptions = {}): Promise<RunLogsView> {
  assertRunId(runId);
  const limit = parseLimit(options.limit);
  const minSeverity = parseSeverity(options.severity);
  const details = await getRunDetails(ctx, runId);
  const job = pipelineJob(ctx);
  if (!job || !ctx.backends.runLogs) return { ...details, entries: null, truncated: false };
  const logs = await ctx.backends.runLogs();
  try {
    return { ...details, ...(await newestEntries(logs, targetOf(job, details.run, minSeverity), limit)) };
  } finally {
    await logs.close();
  }
}

export interface FollowRunLogsOptions extends Omit<RunLogOptions, 'limit'> {
  /** Called with each entry once, oldest first, as it arrives. */
  onEntry(entry: RunLogEntry): void;
  /** Between looks; 2 s by default. */
  pollMs?: number;
  /** From the run's end to the last look; 5 s by default. */
  lastLinesMs?: number;
  /** Stops following (Ctrl-C); what arrived so far is kept. */
  signal?: AbortSignal;
}

/**
 * `pipeline logs --follow`: tails the run's entries until its row reaches a final status, then
 * looks once more for the last lines. Returns the run as it ended with every entry seen.
 * Where the environment has no Cloud Logging there is nothing to tail: the run as recorded.
 */
export async function followRunLogs(ctx: ServiceContext, runId: string, options: FollowRunLogsOptions): Promise<RunLogsView> {
  assertRunId(runId);
  const minSeverity = parseSeverity(options.severity);
  const first = await getRun(ctx, runId);
  const job = pipelineJob(ctx);
  if (!job || !ctx.backends.runLogs) {
    ctx.warn(`environment "${ctx.env.name}" has no Cloud Logging to follow: its runs write step logs only, shown as recorded`);
    return { ...(await getRunDetails(ctx, runId)), entries: null, truncated: false };
  }
  const logs = await ctx.backends.runLogs();
  const entries: RunLogEntry[] = [];
  try {
    const tail = new RunLogTail(logs, targetOf(job, first, minSeverity));
    const take = async () => {
      for (const entry of await tail.next()) {
        entries.push(entry);
        options.onEntry(entry);
      }
    };
    const pause = (ms: number) => sleep(ms, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
    for (let run = first; ; run = await getRun(ctx, runId)) {
      if (TERMINAL_RUN_STATES.has(run.status)) {
        await pause(options.lastLinesMs ?? LAST_LINES_MS);
        const last = await getRun(ctx, runId);
        if (last.executionName) tail.useExecution(last.executionName);
        await take();
        break;
      }
      if (run.executionName) tail.useExecution(run.executionName);
      await take();
      if (options.signal?.aborted) break;
      if (run.timeoutAt && ctx.now().getTime() > run.timeoutAt.getTime() + FOLLOW_GRACE_MS) {
        ctx.warn(
          `run ${runId} is still ${run.status} well past its timeout (${run.timeoutAt.toISOString()}); stopped following. \`convergence maintenance cleanup-orphans\` ends such runs`,
        );
        break;
      }
      await pause(options.pollMs ?? 2000);
    }
  } finally {
    await logs.close();
  }
  return { ...(await getRunDetails(ctx, runId)), entries, truncated: false };
}

/** What a remote run's wait loop drives: one look per poll, a last one at the end. Never throws. */
export interface RemoteLogStream {
  pump(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Streams a remote run's entries to `onEntry` while `pipeline run --remote --wait` follows its
 * execution. Logs are a convenience there: a failure to read them (no roles/logging.viewer, say)
 * is one warning and the end of the stream, never the end of the wait.
 */
export async function openRemoteLogStream(
  ctx: ServiceContext,
  input: { runId: string; execution: string; since: Date; onEntry(entry: RunLogEntry): void },
): Promise<RemoteLogStream> {
  const job = pipelineJob(ctx);
  const logs = job && ctx.backends.runLogs ? await ctx.backends.runLogs() : undefined;
  if (!job || !logs) return { pump: async () => undefined, close: async () => undefined };
  const tail = new RunLogTail(logs, {
    job,
    runId: assertRunId(input.runId),
    execution: input.execution,
    since: new Date(input.since.getTime() - CLOCK_SKEW_MS),
  });
  let broken = false;
  return {
    pump: async () => {
      if (broken) return;
      try {
        for (const entry of await tail.next()) input.onEntry(entry);
      } catch (err) {
        broken = true;
        const suggestion = (err as { suggestion?: string }).suggestion;
        ctx.warn(`could not read the run's Cloud Logging entries: ${(err as Error).message}${suggestion ? ` (${suggestion})` : ''}`);
      }
    },
    close: () => logs.close(),
  };
}
