import { Args, Flags } from '@oclif/core';
import { PLAN_NAMES } from '../../domain/plans.ts';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatRecord } from '../../cli/render.ts';
import { createTenant, type CreateTenantResult } from '../../services/tenants.ts';

export default class TenantCreate extends BaseCommand<typeof TenantCreate> {
  static override summary = 'Onboard a tenant: profile, subscription, quota, its dataset and configs/<id>/ folders.';
  static override examples = [
    '<%= config.bin %> tenant create acme_corp --name "ACME Corp" --plan starter',
    '<%= config.bin %> tenant create globex --name Globex --plan scale --contact-email ops@globex.example --json',
  ];
  static override args = {
    tenant: Args.string({ description: 'Tenant id: ^[a-z][a-z0-9_]{2,49}$ (also the dataset name)', required: true }),
  };
  static override flags = {
    name: Flags.string({ description: 'Company name', required: true }),
    plan: Flags.string({ description: `Subscription plan: ${PLAN_NAMES.join(' | ')}`, default: 'starter' }),
    'contact-email': Flags.string({ description: 'Contact email of the tenant' }),
  };

  public async run(): Promise<CreateTenantResult> {
    const ctx = await this.context();
    const result = await createTenant(ctx, {
      tenantId: this.args.tenant,
      name: this.flags.name,
      plan: this.flags.plan,
      ...(this.flags['contact-email'] ? { contactEmail: this.flags['contact-email'] } : {}),
    });
    this.log(`Tenant ${result.tenantId} created in ${ctx.env.name}.`);
    this.log(
      formatRecord([
        ['name', result.name],
        ['plan', result.plan],
        ['dataset', result.datasetId],
        ['runs per day', result.limits.max_pipelines_per_day],
        ['concurrent runs', result.limits.max_concurrent_pipelines],
        ['config folder', `${result.configDir}/`],
      ]),
    );
    this.log(`\nNext: convergence keys create --tenant ${result.tenantId}`);
    return result;
  }
}
