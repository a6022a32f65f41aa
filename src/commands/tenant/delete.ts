import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { confirm } from '../../cli/prompt.ts';
import { deleteTenant, type DeleteTenantResult } from '../../services/tenant-delete.ts';

export default class TenantDelete extends BaseCommand<typeof TenantDelete> {
  static override summary = 'Delete a tenant: revoke its keys and drop its dataset; the profile stays as an audit trail.';
  static override examples = [
    '<%= config.bin %> tenant delete acme_corp',
    '<%= config.bin %> tenant delete acme_corp --yes --json',
    '<%= config.bin %> tenant delete acme_corp --force --yes',
  ];
  static override args = { tenant: Args.string({ description: 'Tenant id', required: true }) };
  static override flags = {
    yes: Flags.boolean({ char: 'y', description: 'Confirm without a prompt' }),
    force: Flags.boolean({ description: "Cancel the tenant's runs in progress first (otherwise deletion is refused while one runs)" }),
  };

  public async run(): Promise<DeleteTenantResult> {
    const ctx = await this.context();
    await confirm(
      `Delete tenant "${this.args.tenant}" in ${ctx.env.name}? Its keys are revoked and dataset "${this.args.tenant}" is dropped with all its tables.`,
      {
        yes: this.flags.yes,
        action: `delete tenant ${this.args.tenant}`,
      },
    );
    const result = await deleteTenant(ctx, this.args.tenant, { force: this.flags.force });
    if (result.runsCancelled.length > 0)
      this.log(`Cancelled ${result.runsCancelled.length} run(s) in progress: ${result.runsCancelled.join(', ')}.`);
    this.log(
      `Tenant ${result.tenantId} deleted: ${result.keysRevoked} key(s) revoked, dataset ${result.datasetDropped ? 'dropped' : 'already gone'}.`,
    );
    this.log(`The profile is kept (status DELETED) as an audit trail; ${result.configDirKept}/ was left in place.`);
    return result;
  }
}
