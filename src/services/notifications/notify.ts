import type { NotificationEvent, NotificationMessage } from '../../domain/notifications.ts';
import type { PipelineConfig } from '../../domain/pipeline.ts';
import { isConvergenceError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import type { RunSummary } from '../pipelines/run.ts';
import { listRuns } from '../runs/store.ts';
import { deliver } from './deliver.ts';
import { eventMessage, runEndEvents, runMessage } from './messages.ts';
import { trackDelivery } from './pending.ts';
import { targetsFor, targetsWanting, type PlacedTarget } from './targets.ts';

/**
 * Where events are raised. Each starts its deliveries in the background and returns at once:
 * nothing here can fail, delay or change the exit code of the run or operation it reports on.
 * A CLI command waits for them (bounded) when it closes its context; `serve` does not.
 */

/** Cancelled runs are passed over: someone stopped them, they neither failed nor recovered. */
const ENDED = new Set(['COMPLETE', 'FAILED', 'TIMEOUT']);

function inBackground(ctx: ServiceContext, work: () => Promise<unknown>): void {
  const started = (async () => work())().catch((err: unknown) =>
    ctx.warn(`notifications not sent: ${err instanceof Error ? err.message : String(err)}`),
  );
  trackDelivery(ctx.backends, started);
}

/** The events of a run's end (run_failed, run_timeout, dq_failed, dq_warned, run_recovered) to the pipeline's targets. */
export function notifyRunEnd(ctx: ServiceContext, pipeline: Pick<PipelineConfig, 'notifications'>, summary: RunSummary): void {
  const targets = targetsFor(ctx, pipeline);
  if (targets.length === 0) return;
  inBackground(ctx, async () => {
    const wantsRecovery = summary.status === 'COMPLETE' && targetsWanting(targets, 'run_recovered').length > 0;
    const previous = wantsRecovery ? await previousRunStatus(ctx, summary) : undefined;
    const events = runEndEvents(summary, previous);
    await Promise.all(events.map((event) => send(ctx, runMessage(ctx, event, summary), targets, summary.tenantId)));
  });
}

/** A run refused at admission for the tenant's daily quota (quota_exhausted). */
export function notifyRunRefused(
  ctx: ServiceContext,
  pipeline: Pick<PipelineConfig, 'notifications'>,
  run: { tenantId: string; pipelineId: string; runId?: string },
  err: unknown,
): void {
  if (!isConvergenceError(err) || err.code !== 'QUOTA_EXCEEDED') return;
  const targets = targetsFor(ctx, pipeline);
  if (targets.length === 0) return;
  const message = eventMessage(ctx, 'quota_exhausted', {
    summary: `A run of ${run.pipelineId} (tenant ${run.tenantId}) was refused: ${err.message}`,
    tenant_id: run.tenantId,
    pipeline_id: run.pipelineId,
    ...(run.runId ? { run_id: run.runId } : {}),
    status: 'REFUSED',
    exit_code: err.exitCode,
    error: err.message,
  });
  inBackground(ctx, () => send(ctx, message, targets, run.tenantId));
}

/** An operator event (deploy_rolled_back, dispatch_failed) to the environment's targets. */
export function notifyOperatorEvent(
  ctx: ServiceContext,
  event: Extract<NotificationEvent, 'deploy_rolled_back' | 'dispatch_failed'>,
  fields: Omit<NotificationMessage, 'event' | 'env' | 'occurred_at'>,
): void {
  const targets = targetsFor(ctx);
  if (targets.length === 0) return;
  inBackground(ctx, () => send(ctx, eventMessage(ctx, event, fields), targets, undefined));
}

async function send(ctx: ServiceContext, message: NotificationMessage, targets: PlacedTarget[], tenantId: string | undefined) {
  const wanting = targetsWanting(targets, message.event);
  if (wanting.length > 0) await deliver(ctx, message, wanting, tenantId ? { tenantId } : {});
}

/** The status of the run of the same tenant and pipeline that ended before this one. */
async function previousRunStatus(ctx: ServiceContext, summary: RunSummary): Promise<string | undefined> {
  const runs = await listRuns(ctx, { tenantId: summary.tenantId, pipelineId: summary.pipelineId, limit: 20 });
  return runs.find((run) => run.runId !== summary.runId && ENDED.has(run.status))?.status;
}
