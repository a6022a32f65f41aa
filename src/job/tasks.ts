import { ConvergenceError, ExitCode, usageError } from '../lib/errors.ts';
import type { ServiceContext } from '../services/context.ts';
import type { DispatchResult } from '../services/schedules/dispatch.ts';
import type { CleanupResult } from '../services/maintenance.ts';
import type { RunSummary } from '../services/pipelines/run.ts';
import type { ResetResult } from '../services/quotas.ts';
import type { SyncedSchedule } from '../services/schedules/sync.ts';
import type { CloudRunTask, JobLogger } from './logger.ts';

export const JOB_TASKS = ['run-pipeline', 'dispatch', 'reset-quotas', 'cleanup-orphans', 'sync-schedules'] as const;

export interface JobInput {
  tenant?: string;
  pipeline?: string;
  configVersion?: string;
}

/** Tenant, pipeline and config version: flags first, then CONVERGENCE_TENANT / _PIPELINE / _CONFIG_VERSION. */
export function resolveJobInput(flags: JobInput, env: NodeJS.ProcessEnv = process.env): JobInput {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] ? env[name] : undefined);
  const tenant = pick(flags.tenant, 'CONVERGENCE_TENANT');
  const pipeline = pick(flags.pipeline, 'CONVERGENCE_PIPELINE');
  const configVersion = pick(flags.configVersion, 'CONVERGENCE_CONFIG_VERSION');
  return { ...(tenant ? { tenant } : {}), ...(pipeline ? { pipeline } : {}), ...(configVersion ? { configVersion } : {}) };
}

export interface JobRuntime {
  ctx: ServiceContext;
  log: JobLogger;
  task: CloudRunTask;
  /** Aborted on SIGTERM / SIGINT. */
  signal: AbortSignal;
}

/**
 * run-pipeline: the tenant's pushed config (active, or --config-version), trigger 'remote'. A
 * remote start hands over its run id (CONVERGENCE_RUN_ID) and request (CONVERGENCE_RUN_DATE,
 * CONVERGENCE_PARAMS as JSON, CONVERGENCE_FULL_REFRESH) as env overrides of the execution.
 */
export async function runPipelineTask(rt: JobRuntime, input: JobInput, env: NodeJS.ProcessEnv = process.env): Promise<RunSummary> {
  if (!input.tenant) throw usageError('run-pipeline needs a tenant', { suggestion: 'pass --tenant <id> or set CONVERGENCE_TENANT' });
  if (!input.pipeline) {
    throw usageError('run-pipeline needs a pipeline', { suggestion: 'pass --pipeline <id> or set CONVERGENCE_PIPELINE' });
  }
  const { requireTenant } = await import('../services/tenants.ts');
  const { loadActiveBundle } = await import('../services/pipelines/push.ts');
  const { runFailure, runPipeline } = await import('../services/pipelines/run.ts');
  const { readRunRequestEnv } = await import('../services/pipelines/run-request.ts');
  const request = readRunRequestEnv(env);
  const log = rt.log.child({ tenant_id: input.tenant, pipeline_id: input.pipeline });
  // Read once: the run's admission checks this profile instead of reading it again.
  const tenantProfile = await requireTenant(rt.ctx, input.tenant);
  const bundle = await loadActiveBundle(rt.ctx, input.tenant, input.pipeline, input.configVersion);
  const { randomUUID } = await import('node:crypto');
  // A remote start (pipeline run --remote) names the run id up front so it can follow the run row.
  const { assertRunId } = await import('../services/runs/store.ts');
  const runId = env.CONVERGENCE_RUN_ID ? assertRunId(env.CONVERGENCE_RUN_ID) : randomUUID();
  log.label({ run_id: runId });
  log.info(`starting run ${runId} of ${input.tenant}/${input.pipeline} with pushed config ${bundle.version}`, {
    configVersion: bundle.version,
    steps: bundle.pipeline.steps.length,
    // Parameter names only: their values are tenant input and stay in the run row.
    ...(request.runDate ? { runDate: request.runDate } : {}),
    ...(request.params ? { params: Object.keys(request.params) } : {}),
    ...(request.fullRefresh ? { fullRefresh: true } : {}),
  });
  const summary = await runPipeline(
    // The run's warnings (quarantined rows, data-quality warnings) carry its labels.
    { ...rt.ctx, warn: (message: string) => log.warning(message) },
    {
      tenantId: input.tenant,
      pipelineId: input.pipeline,
      bundle,
      tenantProfile,
      trigger: 'remote',
      runId,
      signal: rt.signal,
      triggeredBy: triggeredBy(rt.task),
      ...(request.params ? { params: request.params } : {}),
      ...(request.runDate ? { runDate: request.runDate } : {}),
      ...(request.fullRefresh ? { fullRefresh: true } : {}),
    },
    {
      stepStarted: (i) => log.info(`step ${bundle.pipeline.steps[i]?.name ?? i} started`, { step: i }),
      stepFinished: (i, step) =>
        log.log(step.status === 'COMPLETE' || step.status === 'SKIPPED' ? 'INFO' : 'ERROR', `step ${step.name} ${step.status}`, {
          step: i,
          rowsIn: step.rowsIn,
          rowsOut: step.rowsOut,
          durationMs: step.durationMs,
          ...(step.error ? { error: step.error } : {}),
        }),
    },
  );
  const fields = {
    status: summary.status,
    exitCode: summary.exitCode,
    rowsProcessed: summary.rowsProcessed,
    durationMs: summary.durationMs,
  };
  if (summary.status === 'COMPLETE') {
    log.info(`run ${summary.runId} COMPLETE: ${summary.rowsProcessed} rows`, fields);
    return summary;
  }
  // The run's own labelled end line, as dispatch writes one: the log-based metrics count these.
  log.error(`run ${summary.runId} ${summary.status}${summary.error ? `: ${summary.error.message}` : ''}`, {
    ...fields,
    ...(summary.error ? { error: summary.error } : {}),
  });
  throw runFailure(summary);
}

function triggeredBy(task: CloudRunTask): string {
  return task.execution ? `cloud-run:${task.execution}/${task.taskIndex}` : `job:${task.taskIndex}`;
}

/** dispatch: this task's shard of the due schedules; exits 0 even when some schedule failed (each is logged). */
export async function dispatchTask(rt: JobRuntime): Promise<DispatchResult> {
  const { dispatchDueSchedules } = await import('../services/schedules/dispatch.ts');
  const result = await dispatchDueSchedules(rt.ctx, {
    taskIndex: rt.task.taskIndex,
    taskCount: rt.task.taskCount,
    signal: rt.signal,
    onEvent: (event) => {
      const log = rt.log.child({
        tenant_id: event.schedule.tenantId,
        pipeline_id: event.schedule.pipelineId,
        schedule_id: event.schedule.scheduleId,
      });
      if (event.kind === 'skipped') log.info(`schedule ${event.schedule.scheduleId} skipped: ${event.reason}`);
      else if (event.kind === 'claimed') {
        log.label({ run_id: event.runId });
        log.info(`schedule ${event.schedule.scheduleId} claimed; next run at ${event.nextRunAt?.toISOString() ?? 'never'}`, {
          nextRunAt: event.nextRunAt,
        });
      } else {
        const o = event.outcome;
        log.label({ run_id: o.runId });
        log.log(
          o.exitCode === 0 ? 'INFO' : 'ERROR',
          `schedule ${o.scheduleId}: run ${o.runId} ${o.status}${o.error ? `: ${o.error.message}` : ''}`,
          {
            status: o.status,
            exitCode: o.exitCode,
            ...(o.error ? { error: o.error } : {}),
          },
        );
      }
    },
  });
  rt.log.log(
    result.failed ? 'WARNING' : 'INFO',
    `dispatch task ${result.taskIndex}/${result.taskCount}: ${result.due} due, ${result.assigned} assigned, ${result.succeeded} succeeded, ${result.failed} failed, ${result.skipped} skipped`,
    { due: result.due, assigned: result.assigned, succeeded: result.succeeded, failed: result.failed, skipped: result.skipped },
  );
  if (rt.signal.aborted) {
    // Stopped by SIGTERM: the schedules not reached stay due for the next dispatcher.
    throw new ConvergenceError(
      'DISPATCH_INTERRUPTED',
      ExitCode.pipelineFailed,
      'dispatch was interrupted; schedules not reached stay due',
      { data: { ...result } },
    );
  }
  return result;
}

/** reset-quotas: every tenant, or one with --tenant / CONVERGENCE_TENANT. */
export async function resetQuotasTask(rt: JobRuntime, input: JobInput): Promise<ResetResult> {
  const { resetQuotas } = await import('../services/quotas.ts');
  const result = await resetQuotas(rt.ctx, input.tenant ? { tenantId: input.tenant } : {});
  rt.log.info(`reset the daily quota of ${result.count} tenant(s) for ${result.usageDate}`, { ...result });
  return result;
}

export async function cleanupOrphansTask(rt: JobRuntime): Promise<CleanupResult> {
  const { cleanupOrphans } = await import('../services/maintenance.ts');
  const result = await cleanupOrphans(rt.ctx);
  for (const run of result.timedOut) {
    rt.log
      .child({ tenant_id: run.tenantId, pipeline_id: run.pipelineId, run_id: run.runId })
      .warning(`ended orphaned run ${run.runId} (${run.status}) as TIMEOUT: ${run.reason}`);
  }
  rt.log.info(
    `cleanup: ${result.timedOut.length} orphaned run(s) ended, ${result.locksReleased.length} lock(s) released, ${result.countersCorrected.length} counter(s) corrected, ${result.stagingRemoved.length} staging folder(s) removed`,
    {
      timedOut: result.timedOut.length,
      locksReleased: result.locksReleased.length,
      countersCorrected: result.countersCorrected.length,
      stagingRemoved: result.stagingRemoved.length,
    },
  );
  return result;
}

/** sync-schedules: tenant_scheduled_pipeline_runs from the `schedule:` key of the tenant's pushed pipelines. */
export async function syncSchedulesTask(rt: JobRuntime, input: JobInput): Promise<SyncedSchedule[]> {
  if (!input.tenant) throw usageError('sync-schedules needs a tenant', { suggestion: 'pass --tenant <id> or set CONVERGENCE_TENANT' });
  const { syncSchedules } = await import('../services/schedules/sync.ts');
  const synced = await syncSchedules(rt.ctx, input.tenant);
  const log = rt.log.child({ tenant_id: input.tenant });
  for (const s of synced) {
    log.info(
      `schedule ${s.scheduleId} ${s.action}${s.cron ? ` (${s.cron} ${s.timezone}, next ${s.nextRunAt?.toISOString() ?? 'never'})` : ''}`,
      {
        ...s,
      },
    );
  }
  if (synced.length === 0) log.info(`no pushed pipelines of ${input.tenant} with a schedule`);
  return synced;
}
