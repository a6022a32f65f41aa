import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { revokeKey } from '../../services/keys.ts';

export default class KeysRevoke extends BaseCommand<typeof KeysRevoke> {
  static override summary = 'Revoke an API key by its id or a hash prefix (at least 8 hex digits).';
  static override examples = [
    '<%= config.bin %> keys revoke 5b0c7e1e-3f5a-4d8e-9a57-0d5c9e1f2a3b',
    '<%= config.bin %> keys revoke 3fa9c2d41b7e --reason "leaked in a log"',
  ];
  static override args = { key: Args.string({ description: 'Key id or hash prefix from `keys list`', required: true }) };
  static override flags = { reason: Flags.string({ description: 'Why (kept on the key row)', default: 'revoked by operator' }) };

  public async run() {
    const ctx = await this.context();
    const result = await revokeKey(ctx, this.args.key, this.flags.reason);
    this.log(result.changed ? `Key ${result.apiKeyId} of ${result.tenantId} revoked.` : `Key ${result.apiKeyId} was already revoked.`);
    return result;
  }
}
