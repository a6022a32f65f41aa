import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatRecord } from '../../cli/render.ts';
import { showTenant, type TenantDetails } from '../../services/tenants.ts';

export default class TenantShow extends BaseCommand<typeof TenantShow> {
  static override summary = 'Show a tenant: status, plan, quota use, active keys, credentials and pipelines found.';
  static override examples = ['<%= config.bin %> tenant show acme_corp', '<%= config.bin %> tenant show acme_corp --json'];
  static override args = { tenant: Args.string({ description: 'Tenant id', required: true }) };

  public async run(): Promise<TenantDetails> {
    const ctx = await this.context();
    const t = await showTenant(ctx, this.args.tenant);
    this.log(
      formatRecord([
        ['tenant', t.tenantId],
        ['name', t.name],
        ['status', t.statusReason ? `${t.status} (${t.statusReason})` : t.status],
        ['plan', t.plan],
        ['dataset', `${t.datasetId}${t.datasetExists ? '' : ' (missing)'}`],
        ['runs today', t.quota ? `${t.quota.runsToday} / ${t.quota.dailyLimit} (${t.quota.usageDate})` : null],
        ['running', t.quota ? `${t.quota.running} / ${t.quota.concurrentLimit}` : null],
        ['active keys', t.subscription ? `${t.activeKeys} / ${t.subscription.maxApiKeys}` : t.activeKeys],
        ['credentials', t.credentials.length ? t.credentials.join(', ') : null],
        ['pipelines', t.pipelines.length ? t.pipelines.join(', ') : `none in configs/${t.tenantId}/pipelines/`],
        ['created', t.createdAt],
      ]),
    );
    return t;
  }
}
