import { randomUUID } from 'node:crypto';
import { assertName } from '../domain/ids.ts';
import { validationError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';
import { requireTenant } from './tenants.ts';

/** Stores a tenant credential KeyRing-encrypted; the previous value of the same name is marked REPLACED. */
export async function setTenantCredential(
  ctx: ServiceContext,
  tenantId: string,
  name: string,
  value: string,
): Promise<{ tenantId: string; name: string; credentialId: string; replaced: boolean }> {
  assertName('credential name', name);
  if (value.length === 0)
    throw validationError('the credential value read from stdin is empty', {
      suggestion: `printf '%s' "$VALUE" | convergence tenant credentials set ${tenantId} ${name}`,
    });
  await requireTenant(ctx, tenantId);
  const keyring = await ctx.backends.keyring();
  const warehouse = await ctx.backends.warehouse();
  const encrypted = (await keyring.encrypt(Buffer.from(value, 'utf8'))).toString('base64');
  const now = ctx.now();
  const active = { tenant_id: tenantId, credential_name: name, status: 'ACTIVE' };
  const replaced = (await warehouse.count(METADATA_DATASET, T.credentials, active)) > 0;
  const credentialId = randomUUID();
  await warehouse.atomic([
    { kind: 'update', dataset: METADATA_DATASET, table: T.credentials, set: { status: 'REPLACED', updated_at: now }, where: active },
    {
      kind: 'insert',
      dataset: METADATA_DATASET,
      table: T.credentials,
      rows: [
        {
          credential_id: credentialId,
          tenant_id: tenantId,
          credential_name: name,
          encrypted_value: encrypted,
          status: 'ACTIVE',
          created_at: now,
          updated_at: now,
        },
      ],
    },
  ]);
  return { tenantId, name, credentialId, replaced };
}

/**
 * A tenant secret by name, as the seeds resolve it: the secret file first
 * (configs/<tenant>/secrets/<name>.txt locally, Secret Manager in the cloud), then the tenant's
 * KeyRing-encrypted cloud credentials. Undefined when neither has it.
 *
 * The value is not remembered for redaction here: the one place that does is the REST ingest
 * (engine/steps/ingest.ts, restConfig), the only reader of StepEnv.secret(). It remembers every
 * value it is given, whatever the StepEnv reads it from, before the value goes anywhere.
 */
export async function resolveSecret(ctx: ServiceContext, tenantId: string, name: string): Promise<string | undefined> {
  const fromStore = await (await ctx.backends.secrets()).get(tenantId, name);
  if (fromStore !== undefined) return fromStore;
  return activeCredential(ctx, tenantId, name);
}

/** The newest ACTIVE credential of that name, decrypted; undefined before bootstrap or when none is stored. */
async function activeCredential(ctx: ServiceContext, tenantId: string, name: string): Promise<string | undefined> {
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
