import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { usageError } from '../../lib/errors.ts';
import { confirm } from '../../cli/prompt.ts';
import { resetQuotas, type ResetResult } from '../../services/quotas.ts';

export default class QuotaReset extends BaseCommand<typeof QuotaReset> {
  static override summary = 'Reset the daily pipeline quota of one tenant or of all tenants.';
  static override description =
    'Zeroes the daily run counters, dates them today (UTC) and recounts the runs in flight from the run records. This is the reset-daily-quotas job of the scheduler, run by hand.';
  static override examples = ['<%= config.bin %> quota reset --tenant acme_corp --yes', '<%= config.bin %> quota reset --all --yes --json'];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', exclusive: ['all'] }),
    all: Flags.boolean({ description: 'Every tenant', exclusive: ['tenant'] }),
    yes: Flags.boolean({ char: 'y', description: 'Confirm without a prompt' }),
  };

  public async run(): Promise<ResetResult> {
    if (!this.flags.tenant && !this.flags.all) {
      throw usageError('give --tenant <id> or --all', { suggestion: 'convergence quota reset --tenant acme_corp --yes' });
    }
    const ctx = await this.context();
    const which = this.flags.tenant ? `tenant "${this.flags.tenant}"` : 'every tenant';
    await confirm(`Reset today's pipeline quota of ${which} in ${ctx.env.name}?`, {
      yes: this.flags.yes,
      action: `reset the quota of ${which}`,
    });
    const result = await resetQuotas(ctx, this.flags.tenant ? { tenantId: this.flags.tenant } : {});
    this.log(
      `Reset the quota of ${result.count} tenant(s) for ${result.usageDate}${result.count ? `: ${result.tenants.join(', ')}` : ''}.`,
    );
    return result;
  }
}
