import { Flags } from '@oclif/core';
import { TENANT_STATUSES } from '../../domain/states.ts';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { listTenants, type TenantSummary } from '../../services/tenants.ts';

export default class TenantList extends BaseCommand<typeof TenantList> {
  static override summary = 'List tenants (deleted ones only with --all).';
  static override examples = ['<%= config.bin %> tenant list', '<%= config.bin %> tenant list --status SUSPENDED --json'];
  static override flags = {
    all: Flags.boolean({ description: 'Include deleted tenants' }),
    status: Flags.string({ description: 'Only tenants in this status', options: [...TENANT_STATUSES] }),
  };

  public async run(): Promise<TenantSummary[]> {
    const ctx = await this.context();
    const tenants = await listTenants(ctx, {
      includeDeleted: this.flags.all,
      ...(this.flags.status ? { status: this.flags.status as TenantSummary['status'] } : {}),
    });
    if (tenants.length === 0) this.log('No tenants yet. Create one with `convergence tenant create <id> --name <name>`.');
    else
      this.log(
        formatTable(tenants, [
          { header: 'tenant', get: (t) => t.tenantId },
          { header: 'name', get: (t) => t.name },
          { header: 'status', get: (t) => t.status },
          { header: 'plan', get: (t) => t.plan },
          { header: 'created', get: (t) => t.createdAt },
        ]),
      );
    return tenants;
  }
}
