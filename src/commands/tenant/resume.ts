import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { setTenantStatus } from '../../services/tenants.ts';

export default class TenantResume extends BaseCommand<typeof TenantResume> {
  static override summary = 'Resume a suspended tenant.';
  static override examples = ['<%= config.bin %> tenant resume acme_corp'];
  static override args = { tenant: Args.string({ description: 'Tenant id', required: true }) };

  public async run() {
    const ctx = await this.context();
    const result = await setTenantStatus(ctx, this.args.tenant, 'ACTIVE');
    this.log(result.changed ? `Tenant ${result.tenantId} resumed.` : `Tenant ${result.tenantId} was already active.`);
    return result;
  }
}
