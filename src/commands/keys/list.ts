import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { listKeys, type KeyInfo } from '../../services/keys.ts';

export default class KeysList extends BaseCommand<typeof KeysList> {
  static override summary = "List a tenant's API keys (id, hash prefix, dates, status) — never the keys themselves.";
  static override examples = [
    '<%= config.bin %> keys list --tenant acme_corp',
    '<%= config.bin %> keys list --tenant acme_corp --all --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    all: Flags.boolean({ description: 'Include revoked and expired keys' }),
  };

  public async run(): Promise<KeyInfo[]> {
    const ctx = await this.context();
    const keys = await listKeys(ctx, this.flags.tenant, { all: this.flags.all });
    if (keys.length === 0) this.log(`No ${this.flags.all ? '' : 'active '}keys for ${this.flags.tenant}.`);
    else
      this.log(
        formatTable(keys, [
          { header: 'id', get: (k) => k.apiKeyId },
          { header: 'hash', get: (k) => k.hashPrefix },
          { header: 'status', get: (k) => k.status },
          { header: 'created', get: (k) => k.createdAt },
          { header: 'expires', get: (k) => k.expiresAt },
          { header: 'last used', get: (k) => k.lastUsedAt },
          { header: 'description', get: (k) => k.description },
        ]),
      );
    return keys;
  }
}
