import { Args } from '@oclif/core';
import { BaseCommand } from '../../../cli/base-command.ts';
import { usageError } from '../../../lib/errors.ts';
import { setTenantCredential } from '../../../services/credentials.ts';

export default class TenantCredentialsSet extends BaseCommand<typeof TenantCredentialsSet> {
  static override summary = 'Store a tenant credential, read from stdin (never from argv), KeyRing-encrypted.';
  static override description =
    'The value is read from standard input so it never appears in shell history or the process list. One trailing newline is removed.';
  static override examples = [
    'printf \'%s\' "$USAGE_API_TOKEN" | <%= config.bin %> tenant credentials set acme_corp usage_api_token',
    '<%= config.bin %> tenant credentials set acme_corp sheets_sa < service-account.json',
  ];
  static override args = {
    tenant: Args.string({ description: 'Tenant id', required: true }),
    name: Args.string({ description: 'Credential name (letters, digits, _ and -)', required: true }),
  };

  public async run() {
    if (process.stdin.isTTY) {
      throw usageError('the credential value is read from stdin, which is a terminal here', {
        suggestion: `pipe it in: printf '%s' "$VALUE" | convergence tenant credentials set ${this.args.tenant} ${this.args.name}`,
      });
    }
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const value = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    const ctx = await this.context();
    const result = await setTenantCredential(ctx, this.args.tenant, this.args.name, value);
    this.log(`Credential ${result.name} of ${result.tenantId} ${result.replaced ? 'replaced' : 'stored'} (encrypted).`);
    return result;
  }
}
