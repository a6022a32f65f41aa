import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import type { MonitoringListResult } from '../../services/monitoring/setup.ts';

export default class MonitoringList extends BaseCommand<typeof MonitoringList> {
  static override summary = "List an environment's log-based metrics, notification channels, uptime check and alert policies.";
  static override description =
    "The resources `monitoring setup` manages in the environment's project (labelled managed_by=convergence for the environment, and the convergence/ log-based metrics), with those setup would still create as NOT_CREATED.";
  static override examples = ['<%= config.bin %> monitoring list --env prod', '<%= config.bin %> monitoring list --env prod --json'];

  public async run(): Promise<MonitoringListResult> {
    const ctx = await this.context();
    const { listMonitoring } = await import('../../services/monitoring/setup.ts');
    const result = await listMonitoring(ctx);
    this.log(
      formatTable(result.resources, [
        { header: 'kind', get: (r) => r.kind },
        { header: 'id', get: (r) => r.id },
        { header: 'display name', get: (r) => r.displayName },
        { header: 'state', get: (r) => r.state },
        { header: 'channels', get: (r) => (r.notificationChannels ? String(r.notificationChannels.length) : null) },
      ]),
    );
    return result;
  }
}
