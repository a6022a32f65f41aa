import { rememberSecret } from '../lib/redaction.ts';
import type { ServiceContext } from './context.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';

/**
 * A tenant secret by name, as the seeds resolve it: the secret file first
 * (configs/<tenant>/secrets/<name>.txt locally, Secret Manager in the cloud), then the tenant's
 * KeyRing-encrypted cloud credentials. Undefined when neither has it.
 */
export async function resolveSecret(ctx: ServiceContext, tenantId: string, name: string): Promise<string | undefined> {
  const value = await lookUpSecret(ctx, tenantId, name);
  // Whoever asked will send it somewhere: from now on this process redacts it wherever it writes.
  rememberSecret(value);
  return value;
}

async function lookUpSecret(ctx: ServiceContext, tenantId: string, name: string): Promise<string | undefined> {
  const fromStore = await (await ctx.backends.secrets()).get(tenantId, name);
  if (fromStore !== undefined) return fromStore;
  const warehouse = await ctx.backends.warehouse();
  if (!(await warehouse.tableExists(METADATA_DATASET, T.credentials))) return undefined;
  const [row] = await warehouse.select(METADATA_DATASET, T.credentials, {
    where: { tenant_id: tenantId, credential_name: name, status: 'ACTIVE' },
    orderBy: [['created_at', 'desc']],
    limit: 1,
  });
  if (!row) return undefined;
  const keyring = await ctx.backends.keyring();
  return (await keyring.decrypt(Buffer.from(String(row['encrypted_value']), 'base64'))).toString('utf8');
}
