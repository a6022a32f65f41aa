import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { parseDuration } from '../../lib/duration.ts';
import { confirm } from '../../cli/prompt.ts';
import { rotateKeys } from '../../services/keys.ts';

export default class KeysRotate extends BaseCommand<typeof KeysRotate> {
  static override summary = 'Issue a new key for a tenant; its current keys keep working for a grace period, then expire.';
  static override examples = [
    '<%= config.bin %> keys rotate --tenant acme_corp',
    '<%= config.bin %> keys rotate --tenant acme_corp --grace 0s --yes --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    grace: Flags.string({ description: 'How long the old keys stay valid (0s revokes them at once)', default: '24h' }),
    yes: Flags.boolean({ char: 'y', description: 'Confirm revoking every active key at once (--grace 0s) without a prompt' }),
  };

  public async run() {
    const graceMs = parseDuration(this.flags.grace, '--grace');
    const ctx = await this.context();
    if (graceMs === 0) {
      // Every client of the tenant stops working the moment this returns.
      await confirm(`Revoke every active key of "${this.flags.tenant}" in ${ctx.env.name} now? Clients using them fail at once.`, {
        yes: this.flags.yes,
        action: `revoke every active key of ${this.flags.tenant} at once (--grace 0s)`,
      });
    }
    const result = await rotateKeys(ctx, { tenantId: this.flags.tenant, graceMs });
    this.log(result.created.apiKey);
    const retired = result.retired.length
      ? result.retired.map((r) => `  ${r.apiKeyId}: ${r.revoked ? 'revoked' : `valid until ${r.expiresAt?.toISOString()}`}`).join('\n')
      : '  (no previous active keys)';
    process.stderr.write(`\nNew key ${result.created.apiKeyId}; shown only once. Previous keys:\n${retired}\n`);
    return result;
  }
}
