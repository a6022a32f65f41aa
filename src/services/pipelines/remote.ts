import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { cloudEnv, requiredSetting } from '../../backends/factory.ts';
import type { ExecutionInfo, RunPlatform } from '../../backends/run-platform/port.ts';
import { resolveRunDate } from '../../domain/dates.ts';
import { parseDuration } from '../../lib/duration.ts';
import { ConvergenceError, ExitCode, lockHeldError, usageError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { checkRemoteAdmission } from '../runs/admission.ts';
import { createRun, finishRun, getRun, listRuns, recordExecution, type RunRecord } from '../runs/store.ts';
import { withLease } from '../leases.ts';
import { openRemoteLogStream, type RemoteLogStream, type RunLogEntry } from '../runs/remote-logs.ts';
import { requireTenant } from '../tenants.ts';
import { loadBundle } from './bundle.ts';
import { loadActiveBundle } from './push.ts';
import { assertRunParams, runRequestEnv, type RunRequest } from './run-request.ts';

/** Time a Cloud Run execution may take to start its container, on top of the pipeline's timeout. */
const START_ALLOWANCE_MS = 10 * 60_000;

export interface RemoteRunInput {
  tenantId: string;
  pipelineId: string;
  wait: boolean;
  /** Recorded on the run row written before the execution starts (default: remote by the actor). */
  trigger?: 'remote' | 'api';
  triggeredBy?: string;
  /** --param name=value: names the pushed pipeline declares (`params`) or uses as {{ name }}. */
  params?: Record<string, string>;
  /** YYYY-MM-DD; today (UTC) at the start by default, so a container starting after midnight keeps the day. */
  runDate?: string;
  fullRefresh?: boolean;
  /** How often to look at the execution while waiting. */
  pollMs?: number;
  /** Give up following after this long (default: the pipeline's timeout plus 10 minutes). */
  deadlineMs?: number;
  onProgress?(text: string): void;
  /** With `wait`: each Cloud Logging entry of the run's execution, once, as the wait finds it. */
  onLog?(entry: RunLogEntry): void;
}

export interface RemoteRunResult {
  runId: string;
  job: string;
  execution: string;
  configVersion: string;
  state: ExecutionInfo['state'] | 'STARTED';
  logUri: string | null;
  /** Why the execution ended as it did, in Cloud Run's words (its Completed condition), once it has ended. */
  message: string | null;
  /** The run row the container wrote, once the execution has ended (with --wait). */
  run: RunRecord | null;
  exitCode: number;
}

/**
 * Refuses (exit 5) while an earlier start of the pipeline is on its way: its row is still PENDING
 * and its execution still running, i.e. its container has not taken the run lock yet. A PENDING
 * row whose execution already ended (or never got one) is ended FAILED instead, so a container
 * that died before its admission does not block the pipeline until cleanup-orphans.
 */
async function refuseWhileStarting(
  ctx: ServiceContext,
  platform: RunPlatform,
  job: string,
  tenantId: string,
  pipelineId: string,
): Promise<void> {
  const pending = await listRuns(ctx, { tenantId, pipelineId, status: 'PENDING', limit: 20 });
  for (const run of pending) {
    const execution = run.executionName ? await platform.getExecution(job, run.executionName) : undefined;
    if (execution?.state === 'RUNNING') {
      throw lockHeldError(
        `pipeline ${pipelineId} of tenant "${tenantId}" is already starting: run ${run.runId} (execution ${run.executionName}) has not reached its container yet`,
        {
          suggestion: `follow it with \`convergence pipeline status ${run.runId} --env ${ctx.env.name}\`, or stop it with \`convergence pipeline cancel ${run.runId} --env ${ctx.env.name}\``,
          data: { holderRunId: run.runId, execution: run.executionName },
        },
      );
    }
    await endUnstartedRun(ctx, run.runId, execution);
  }
}

/**
 * Ends FAILED the PENDING row of a run whose execution ended (or never started) before its
 * container began the run, with Cloud Run's reason when it gave one (an image that could not be
 * pulled, a task that timed out before it started).
 */
async function endUnstartedRun(ctx: ServiceContext, runId: string, execution: ExecutionInfo | undefined): Promise<void> {
  // Run's note on a success ("completed successfully") is no reason; a failure's message is.
  const reason = execution?.state !== 'SUCCEEDED' && execution?.message ? `: ${execution.message}` : '';
  const ended = execution ? `ended (${execution.state}${reason})` : 'was never started';
  await finishRun(ctx, runId, {
    status: 'FAILED',
    exitCode: ExitCode.pipelineFailed,
    errorMessage: `its Cloud Run execution ${ended} before the run began`,
    onlyIf: ['PENDING'],
  });
}

/** The run row once its execution has ended: a row the container never took up is ended here. */
async function endedRun(ctx: ServiceContext, runId: string, execution: ExecutionInfo): Promise<RunRecord | null> {
  const run = await getRun(ctx, runId).catch(() => null);
  if (run?.status !== 'PENDING') return run;
  await endUnstartedRun(ctx, runId, execution).catch((err: unknown) =>
    ctx.warn(`could not record the end of run ${runId}: ${(err as Error).message}`),
  );
  return getRun(ctx, runId).catch(() => run);
}

/**
 * Starts the pushed configuration of a pipeline as a Cloud Run Jobs execution (the container
 * runs `convergence job run-pipeline`) and, with `wait`, follows it to its end under a deadline.
 * The run id is chosen here and handed to the container, so the run row it writes tells the
 * exact outcome and exit code. A run its admission would refuse (suspended tenant, lock held,
 * quota used up) is refused here, before an execution is started: see checkRemoteAdmission.
 */
export async function startRemoteRun(ctx: ServiceContext, input: RemoteRunInput): Promise<RemoteRunResult> {
  const env = cloudEnv(ctx.env);
  const openPlatform = ctx.backends.runPlatform;
  if (!env || !openPlatform) {
    throw usageError(`--remote runs on Cloud Run Jobs; "${ctx.env.name}" is a local environment`, {
      suggestion: 'pass --env <cloud environment>, or drop --remote to run here',
    });
  }
  const job = requiredSetting(env, 'job', 'remote runs: the Cloud Run job that runs pipelines');
  const runDate = resolveRunDate(input.runDate, ctx.now());
  const profile = await requireTenant(ctx, input.tenantId);
  const pushed = await loadActiveBundle(ctx, input.tenantId, input.pipelineId);
  const request: RunRequest = { params: input.params ?? {}, runDate, fullRefresh: Boolean(input.fullRefresh) };
  // Refused here, before a row or an execution exists; the container's run checks them again (prepareRun).
  assertRunParams(pushed, request.params);
  const local = await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId).catch(() => undefined);
  if (local && local.version !== pushed.version) {
    ctx.warn(
      `the workspace differs from pushed version ${pushed.version}; the remote run executes what was pushed (run \`pipeline push\` first)`,
    );
  }

  const runId = randomUUID();
  const requestedAt = ctx.now();
  const timeoutMs = parseDuration(pushed.pipeline.timeout, 'timeout');
  const platform = await openPlatform();
  let logs: RemoteLogStream | undefined;
  try {
    // Starts of one pipeline are serialised: between this check and the container taking the run
    // lock, the PENDING row written here is what tells a second start that one is on its way.
    const execution = await withLease(
      ctx,
      `start/${input.tenantId}/${input.pipelineId}`,
      { waitMs: 15_000, what: `the start of pipeline ${input.pipelineId} of tenant "${input.tenantId}"` },
      async () => {
        await checkRemoteAdmission(ctx, input.tenantId, input.pipelineId, profile);
        await refuseWhileStarting(ctx, platform, job, input.tenantId, input.pipelineId);
        // The row exists (PENDING) before the execution does, so the run can be read, listed and
        // cancelled at once; the container continues it (createRun adoptPending) or, refused, ends it.
        await createRun(ctx, {
          runId,
          tenantId: input.tenantId,
          pipelineId: input.pipelineId,
          trigger: input.trigger ?? 'remote',
          ...(input.triggeredBy ? { triggeredBy: input.triggeredBy } : {}),
          configVersion: pushed.version,
          runDate,
          parameters: request.params,
          timeoutAt: new Date(ctx.now().getTime() + timeoutMs + START_ALLOWANCE_MS),
        });
        const started = await platform
          .runJob(job, {
            args: ['job', 'run-pipeline'],
            env: {
              CONVERGENCE_ENV: env.name,
              CONVERGENCE_TENANT: input.tenantId,
              CONVERGENCE_PIPELINE: input.pipelineId,
              CONVERGENCE_CONFIG_VERSION: pushed.version,
              CONVERGENCE_RUN_ID: runId,
              ...runRequestEnv(request),
            },
            taskCount: 1,
            timeoutSeconds: Math.ceil(timeoutMs / 1000),
          })
          .catch(async (err: unknown) => {
            await finishRun(ctx, runId, {
              status: 'FAILED',
              exitCode: (err as { exitCode?: number }).exitCode ?? ExitCode.unexpected,
              errorMessage: `the Cloud Run execution could not be started: ${(err as Error).message}`,
              onlyIf: ['PENDING'],
            }).catch(() => undefined);
            throw err;
          });
        await recordExecution(ctx, runId, started.execution).catch((err: unknown) =>
          ctx.warn(`could not record execution ${started.execution} on run ${runId}: ${(err as Error).message}`),
        );
        return started.execution;
      },
    );
    input.onProgress?.(`execution ${execution} of job ${job} started (run ${runId})`);
    const base = { runId, job, execution, configVersion: pushed.version };
    if (!input.wait) return { ...base, state: 'STARTED', logUri: null, message: null, run: null, exitCode: 0 };

    const deadline = Date.now() + (input.deadlineMs ?? timeoutMs + 10 * 60_000);
    if (input.onLog) logs = await openRemoteLogStream(ctx, { runId, execution, since: requestedAt, onEntry: input.onLog });
    for (;;) {
      const info = await platform.getExecution(job, execution);
      // After the state is read: an execution seen ended has written its last line by now.
      await logs?.pump();
      if (info.state !== 'RUNNING') {
        const run = await endedRun(ctx, runId, info);
        const exitCode = run?.exitCode ?? (info.state === 'SUCCEEDED' ? 0 : ExitCode.pipelineFailed);
        return { ...base, state: info.state, logUri: info.logUri ?? null, message: info.message ?? null, run, exitCode };
      }
      if (Date.now() >= deadline) {
        throw new ConvergenceError(
          'REMOTE_WAIT_DEADLINE',
          ExitCode.unexpected,
          `execution ${execution} still running after the wait deadline`,
          {
            suggestion: `follow it with \`convergence pipeline status ${runId} --env ${env.name}\`${info.logUri ? ` or ${info.logUri}` : ''}`,
            data: { runId, execution, logUri: info.logUri ?? null },
          },
        );
      }
      input.onProgress?.(`execution ${execution}: ${info.state} (${info.succeededCount}/${info.taskCount} tasks done)`);
      await sleep(input.pollMs ?? 5_000);
    }
  } finally {
    await logs?.close().catch(() => undefined);
    await platform.close();
  }
}
