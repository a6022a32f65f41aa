import { randomUUID } from 'node:crypto';
import { isConvergenceError } from '../lib/errors.ts';
import type { ServiceContext } from '../services/context.ts';
import type { RunSummary } from '../services/pipelines/run.ts';
import { HttpError } from './http-errors.ts';
import type { ServerMetrics } from './metrics.ts';

export interface StartRunRequest {
  tenantId: string;
  pipelineId: string;
  params?: Record<string, string>;
  runDate?: string;
  fullRefresh?: boolean;
  triggeredBy: string;
}

export interface StartedRun {
  runId: string;
  tenantId: string;
  pipelineId: string;
  status: string;
  /** local: in this process; remote: a Cloud Run Jobs execution. */
  mode: 'local' | 'remote';
  execution?: string;
  configVersion?: string;
}

interface LiveRun {
  abort: AbortController;
  done: Promise<unknown>;
}

export interface RunLauncherOptions {
  log(level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void;
}

/**
 * Starts runs for the API and keeps track of the ones executing in this process: the local
 * environment runs them here (answering once the run passed admission and is RUNNING), cloud
 * environments hand them to Cloud Run Jobs once the admission checks pass (the container then
 * admits the run for real). On shutdown every run still executing here is stopped at its next
 * checkpoint and recorded as CANCELLED, its lock and quota slot given back.
 */
export class RunLauncher {
  readonly #ctx: ServiceContext;
  readonly #metrics: ServerMetrics;
  readonly #options: RunLauncherOptions;
  readonly #live = new Map<string, LiveRun>();
  #closing = false;

  constructor(ctx: ServiceContext, metrics: ServerMetrics, options: RunLauncherOptions) {
    this.#ctx = ctx;
    this.#metrics = metrics;
    this.#options = options;
  }

  get inProgress(): number {
    return this.#live.size;
  }

  async start(request: StartRunRequest): Promise<StartedRun> {
    try {
      // An environment with a run platform (Cloud Run Jobs) runs there; the embedded one runs here.
      return this.#ctx.backends.runPlatform ? await this.#startRemote(request) : await this.#startLocal(request);
    } catch (err) {
      if (isConvergenceError(err)) this.#metrics.runsRefused.inc({ code: err.code });
      throw err;
    }
  }

  /** Stops a run executing here at once (the cancel request is also recorded for other processes). */
  abortLocal(runId: string): boolean {
    const live = this.#live.get(runId);
    if (!live) return false;
    live.abort.abort();
    return true;
  }

  /** Stops every run executing here and waits for them to be recorded, at most `graceMs`. */
  async shutdown(graceMs: number): Promise<{ stopped: number; unfinished: number }> {
    this.#closing = true;
    const live = [...this.#live.values()];
    for (const run of live) run.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    await Promise.race([Promise.allSettled(live.map((r) => r.done)), timeout]);
    clearTimeout(timer);
    return { stopped: live.length, unfinished: this.#live.size };
  }

  async #startLocal(request: StartRunRequest): Promise<StartedRun> {
    if (this.#closing)
      throw new HttpError(503, 'SHUTTING_DOWN', 'the server is shutting down; start the run again in a moment', { 'retry-after': '5' });
    const { runPipeline } = await import('../services/pipelines/run.ts');
    const runId = randomUUID();
    const abort = new AbortController();
    const fields = { run_id: runId, tenant_id: request.tenantId, pipeline_id: request.pipelineId };
    const runCtx: ServiceContext = {
      ...this.#ctx,
      actor: `api:${request.triggeredBy}`,
      warn: (message) => this.#options.log('warn', fields, message),
    };
    let started!: () => void;
    const admitted = new Promise<'started'>((resolve) => {
      started = () => resolve('started');
    });
    const done = runPipeline(
      runCtx,
      {
        tenantId: request.tenantId,
        pipelineId: request.pipelineId,
        runId,
        trigger: 'api',
        triggeredBy: request.triggeredBy,
        signal: abort.signal,
        ...(request.params ? { params: request.params } : {}),
        ...(request.runDate ? { runDate: request.runDate } : {}),
        ...(request.fullRefresh ? { fullRefresh: true } : {}),
      },
      { runStarted: () => started() },
    );
    this.#live.set(runId, { abort, done });
    this.#metrics.runsInProgress.set(this.#live.size);
    void done
      .then(
        (summary: RunSummary) => {
          this.#metrics.runsFinished.inc({ status: summary.status });
          this.#options.log(
            summary.status === 'COMPLETE' ? 'info' : 'warn',
            { ...fields, status: summary.status, rows: summary.rowsProcessed },
            `run ${summary.status}`,
          );
        },
        () => undefined,
      )
      .finally(() => {
        this.#live.delete(runId);
        this.#metrics.runsInProgress.set(this.#live.size);
      });
    // Admission failures (lock held, quota, suspended tenant) reject before the run starts.
    const first = await Promise.race([admitted, done]);
    this.#metrics.runsStarted.inc({ mode: 'local' });
    const status = first === 'started' ? 'RUNNING' : first.status;
    this.#options.log('info', fields, 'run started');
    return { runId, tenantId: request.tenantId, pipelineId: request.pipelineId, status, mode: 'local' };
  }

  async #startRemote(request: StartRunRequest): Promise<StartedRun> {
    // Lock, quota and tenant state are checked before the execution starts (409 / 429 / 403).
    const { startRemoteRun } = await import('../services/pipelines/remote.ts');
    const started = await startRemoteRun(this.#ctx, {
      tenantId: request.tenantId,
      pipelineId: request.pipelineId,
      wait: false,
      trigger: 'api',
      triggeredBy: request.triggeredBy,
      // Checked against the pushed pipeline before the execution starts (400), then its env overrides.
      ...(request.params ? { params: request.params } : {}),
      ...(request.runDate ? { runDate: request.runDate } : {}),
      ...(request.fullRefresh ? { fullRefresh: true } : {}),
    });
    this.#metrics.runsStarted.inc({ mode: 'remote' });
    this.#options.log('info', { run_id: started.runId, tenant_id: request.tenantId, execution: started.execution }, 'remote run started');
    return {
      runId: started.runId,
      tenantId: request.tenantId,
      pipelineId: request.pipelineId,
      status: 'PENDING',
      mode: 'remote',
      execution: started.execution,
      configVersion: started.configVersion,
    };
  }
}
