import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../cli/base-command.ts';
import { createAdminKey } from '../../../services/keys.ts';

export default class KeysAdminCreate extends BaseCommand<typeof KeysAdminCreate> {
  static override summary = 'Create the admin API key of an environment, stored in the SecretStore as admin-api-key-<env>.';
  static override description = 'The key (admin_<base62>) is printed once. The serve API expects it in the X-Admin-Key header.';
  static override examples = ['<%= config.bin %> keys admin create', '<%= config.bin %> keys admin create --env staging --replace --json'];
  static override flags = { replace: Flags.boolean({ description: 'Replace an existing admin key (the old one stops working)' }) };

  public async run() {
    const ctx = await this.context();
    const result = await createAdminKey(ctx, { replace: this.flags.replace });
    this.log(result.adminKey);
    process.stderr.write(
      `\nStored as ${result.secretName} in ${result.store}${result.replaced ? ' (replaced the previous key)' : ''}. Shown only once.\n`,
    );
    return result;
  }
}
