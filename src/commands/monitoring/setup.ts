import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { confirm } from '../../cli/prompt.ts';
import type { MonitoringSetupResult, ResourceResult } from '../../services/monitoring/setup.ts';

const KIND_LABEL: Record<ResourceResult['kind'], string> = {
  log_metric: 'log metric',
  notification_channel: 'channel',
  uptime_check: 'uptime check',
  alert_policy: 'policy',
};

export default class MonitoringSetup extends BaseCommand<typeof MonitoringSetup> {
  static override summary =
    'Create or update the log-based metrics, alert policies, uptime check and notification channels of an environment.';
  static override description = `Reconciles, in the environment's project:
  log-based metrics  convergence/runs_failed and convergence/dq_failed, counted from the headless job's JSON lines, by tenant_id and pipeline_id
  alert policies     API error rate > 0.1% (5 min), availability < 99.9% (1 h), latency P50 > 100 ms, P95 > 500 ms and P99 > 1000 ms on the Cloud Run service's request metrics; the /health uptime check failing; failed runs and data-quality failures
  uptime check       HTTPS GET of the service URL's health path every minute (with an OIDC token unless the service is public)
  channels           one per notification target of the environment with an alerting event (all, run_failed, run_timeout, dq_failed): webhook → webhook_tokenauth, pubsub → pubsub; slack targets get none (Monitoring posts to Slack only through its Slack app)
Each resource is read, then created, or updated with an update mask of only the fields that differ, and the differences are printed; running it again changes nothing. Only resources labelled managed_by=convergence for the environment are written; channels attached to a convergence policy by hand stay. A production environment asks before writing (--yes skips the question).`;
  static override examples = [
    '<%= config.bin %> monitoring setup --env prod --dry-run',
    '<%= config.bin %> monitoring setup --env prod --yes',
    '<%= config.bin %> monitoring setup --env staging --json',
  ];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'Print what would change and write nothing' }),
    yes: Flags.boolean({ char: 'y', description: 'Change the monitoring of a production environment without a prompt' }),
  };

  public async run(): Promise<MonitoringSetupResult> {
    const ctx = await this.context();
    const { setupMonitoring } = await import('../../services/monitoring/setup.ts');
    const result = await setupMonitoring(ctx, {
      dryRun: this.flags['dry-run'],
      confirm: async (prompt, planned) => {
        // The diff first, so the question is asked about what it shows.
        if (!this.jsonEnabled() && !this.flags.yes) for (const line of resultLines(planned)) this.logToStderr(line);
        await confirm(prompt.question, { yes: this.flags.yes, action: prompt.action });
      },
    });
    for (const line of resultLines(result)) this.log(line);
    return result;
  }
}

function resultLines(result: MonitoringSetupResult): string[] {
  const verb: Record<ResourceResult['action'], string> = {
    create: result.dryRun ? 'would create' : 'created',
    update: result.dryRun ? 'would update' : 'updated',
    replace: result.dryRun ? 'would replace' : 'replaced',
    delete: result.dryRun ? 'would delete' : 'deleted',
    unchanged: 'unchanged',
    skipped: 'skipped',
  };
  const lines: string[] = [];
  for (const r of result.resources) {
    // The reason's first clause: the whole of it, with the way out, is among the warnings.
    lines.push(`${KIND_LABEL[r.kind]} ${r.displayName}: ${verb[r.action]}${r.reason ? ` (${r.reason.split(':')[0]})` : ''}`);
    if (r.action === 'unchanged' || r.action === 'skipped') continue;
    for (const change of r.changes) lines.push(`  ${change.field}: ${change.from ?? '(none)'} → ${change.to}`);
  }
  const changed = result.created + result.updated + result.replaced + result.deleted;
  const counts = `${result.created} ${result.dryRun ? 'to create' : 'created'}, ${result.updated} ${result.dryRun ? 'to update' : 'updated'}, ${result.replaced} ${result.dryRun ? 'to replace' : 'replaced'}, ${result.deleted} ${result.dryRun ? 'to delete' : 'deleted'}, ${result.unchanged} unchanged`;
  if (changed === 0)
    lines.push(`No changes: the monitoring of ${result.env} in project ${result.project} is up to date (${result.unchanged} unchanged).`);
  else lines.push(`${result.dryRun ? 'Dry run, nothing written: ' : ''}${counts} in project ${result.project}.`);
  return lines;
}
