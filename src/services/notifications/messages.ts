import type { NotificationEvent, NotificationKind, NotificationMessage } from '../../domain/notifications.ts';
import { envFlag, type ServiceContext } from '../context.ts';
import type { RunSummary } from '../pipelines/run.ts';

/** Run states after which a COMPLETE run is a recovery. */
const FAILURES = new Set(['FAILED', 'TIMEOUT']);

/**
 * The events a run's end raises: one for how it ended (run_failed, or the more precise dq_failed
 * for a data-quality failure and run_timeout for a timeout; none for a cancel, which someone
 * asked for), dq_warned when a data-quality step recorded warnings, and run_recovered for the
 * first COMPLETE after failures (`previousStatus` is the status of the run before it).
 */
export function runEndEvents(summary: RunSummary, previousStatus: string | undefined): NotificationEvent[] {
  const events: NotificationEvent[] = [];
  if (summary.status === 'TIMEOUT') events.push('run_timeout');
  else if (summary.status === 'FAILED') events.push(summary.exitCode === 4 ? 'dq_failed' : 'run_failed');
  else if (summary.status === 'COMPLETE' && FAILURES.has(previousStatus ?? '')) events.push('run_recovered');
  if (summary.steps.some((step) => step.type === 'dq' && step.notes.length > 0)) events.push('dq_warned');
  return events;
}

/** Where to read a run next: the CLI's logs command and, for a Cloud Run execution, its console page. */
function runLinks(ctx: ServiceContext, runId: string): Record<string, string> {
  const links: Record<string, string> = { logs: `convergence pipeline logs ${runId}${envFlag(ctx.env.name)}` };
  const execution = process.env.CLOUD_RUN_EXECUTION;
  if (ctx.env.backend === 'gcp' && execution) {
    const { region, project } = ctx.env.settings;
    const query = project ? `?project=${encodeURIComponent(project)}` : '';
    links.execution = `https://console.cloud.google.com/run/jobs/executions/details/${region}/${encodeURIComponent(execution)}/tasks${query}`;
  }
  return links;
}

const RUN_SUMMARY: Record<NotificationEvent, string> = {
  run_failed: 'failed',
  run_timeout: 'timed out',
  dq_failed: 'failed its data-quality checks',
  dq_warned: 'recorded data-quality warnings',
  run_recovered: 'completed after failing before',
  deploy_rolled_back: 'was rolled back',
  dispatch_failed: 'could not be dispatched',
  quota_exhausted: 'was refused: daily quota exhausted',
};

/** The message of a run's event. */
export function runMessage(ctx: ServiceContext, event: NotificationEvent, summary: RunSummary): NotificationMessage {
  const warnings = summary.steps.flatMap((step) => (step.type === 'dq' ? step.notes : []));
  const error = event === 'dq_warned' ? warnings.join('; ') : summary.error?.message;
  return {
    event,
    env: ctx.env.name,
    occurred_at: ctx.now().toISOString(),
    summary: `Run ${summary.runId} of ${summary.pipelineId} (tenant ${summary.tenantId}) ${RUN_SUMMARY[event]}${summary.status === 'COMPLETE' ? '' : `: ${summary.status}, exit ${summary.exitCode}`}`,
    tenant_id: summary.tenantId,
    pipeline_id: summary.pipelineId,
    run_id: summary.runId,
    status: summary.status,
    exit_code: summary.exitCode,
    ...(error ? { error } : {}),
    counts: {
      rows_processed: summary.rowsProcessed,
      steps: summary.steps.length,
      steps_failed: summary.steps.filter((step) => step.status === 'FAILED').length,
      duration_ms: summary.durationMs,
    },
    links: runLinks(ctx, summary.runId),
  };
}

/** The message of an event that is not a run's end (a refusal, a dispatch, a deploy). */
export function eventMessage(
  ctx: ServiceContext,
  event: NotificationKind,
  fields: Omit<NotificationMessage, 'event' | 'env' | 'occurred_at'>,
): NotificationMessage {
  return { event, env: ctx.env.name, occurred_at: ctx.now().toISOString(), ...fields };
}
