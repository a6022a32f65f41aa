import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { parseDuration } from '../../lib/duration.ts';
import { createKey, type CreatedKey } from '../../services/keys.ts';

export default class KeysCreate extends BaseCommand<typeof KeysCreate> {
  static override summary = 'Mint an API key for a tenant. The key is printed once and never stored in plain text.';
  static override examples = [
    '<%= config.bin %> keys create --tenant acme_corp',
    '<%= config.bin %> keys create --tenant acme_corp --description "billing export" --expires-in 90d --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    description: Flags.string({ description: 'What the key is for' }),
    'expires-in': Flags.string({ description: 'Lifetime, e.g. 90d or 12h (default: no expiry)' }),
  };

  public async run(): Promise<CreatedKey> {
    const expiresInMs = this.flags['expires-in'] ? parseDuration(this.flags['expires-in'], '--expires-in') : undefined;
    const ctx = await this.context();
    const key = await createKey(ctx, {
      tenantId: this.flags.tenant,
      ...(this.flags.description ? { description: this.flags.description } : {}),
      ...(expiresInMs !== undefined ? { expiresInMs } : {}),
    });
    this.log(key.apiKey);
    process.stderr.write(
      `\nKey ${key.apiKeyId} for ${key.tenantId}${key.expiresAt ? `, expires ${key.expiresAt.toISOString()}` : ''}.\nStore it now: it is shown only once. Send it as the X-API-Key header.\n`,
    );
    return key;
  }
}
