import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { setTenantStatus } from '../../services/tenants.ts';

export default class TenantSuspend extends BaseCommand<typeof TenantSuspend> {
  static override summary = 'Suspend a tenant: its keys are refused and its pipelines cannot run until resumed.';
  static override examples = ['<%= config.bin %> tenant suspend acme_corp --reason "unpaid invoice"'];
  static override args = { tenant: Args.string({ description: 'Tenant id', required: true }) };
  static override flags = { reason: Flags.string({ description: 'Why (kept on the profile)' }) };

  public async run() {
    const ctx = await this.context();
    const result = await setTenantStatus(ctx, this.args.tenant, 'SUSPENDED', this.flags.reason);
    this.log(result.changed ? `Tenant ${result.tenantId} suspended.` : `Tenant ${result.tenantId} was already suspended.`);
    return result;
  }
}
