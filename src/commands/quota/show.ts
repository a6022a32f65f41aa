import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatRecord } from '../../cli/render.ts';
import { showQuota, type QuotaView } from '../../services/quotas.ts';

export default class QuotaShow extends BaseCommand<typeof QuotaShow> {
  static override summary = "Show a tenant's pipeline quota: limits, use today, runs in flight and when it resets.";
  static override description =
    'Daily counters reset at midnight UTC (the reset-daily-quotas job, or lazily on the first run of a new day). Runs in flight count against the concurrent limit.';
  static override examples = ['<%= config.bin %> quota show --tenant acme_corp', '<%= config.bin %> quota show --tenant acme_corp --json'];
  static override flags = { tenant: Flags.string({ description: 'Tenant id', required: true }) };

  public async run(): Promise<QuotaView> {
    const ctx = await this.context();
    const q = await showQuota(ctx, this.flags.tenant);
    this.log(
      formatRecord([
        ['tenant', q.tenantId],
        ['day (UTC)', q.usageDate],
        ['runs today', `${q.runsToday} / ${q.dailyLimit} (${q.remainingToday} left)`],
        ['succeeded', q.succeededToday],
        ['failed', q.failedToday],
        ['running', `${q.running} / ${q.concurrentLimit}`],
        ['resets at', q.resetsAt],
        ['last reset', q.lastResetAt],
      ]),
    );
    return q;
  }
}
