import { randomUUID } from 'node:crypto';
import type { Row } from '../backends/warehouse/port.ts';
import { assertTenantId } from '../domain/ids.ts';
import { ADMIN_KEY_PATTERN, digestsEqual, hashKey, newAdminKey, newTenantKey, tenantOfKey } from '../domain/api-keys.ts';
import { authError, conflictError, notFoundError, quotaExceededError, validationError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';
import { withLease } from './leases.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';
import { requireTenant } from './tenants.ts';

type KeyState = 'ACTIVE' | 'EXPIRED' | 'REVOKED';

export interface KeyInfo {
  apiKeyId: string;
  tenantId: string;
  hashPrefix: string;
  keyPrefix: string;
  description: string | null;
  status: KeyState;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface CreatedKey extends KeyInfo {
  /** The only time the key exists in plain text: shown once, never stored. */
  apiKey: string;
}

const HASH_PREFIX = 12;
const adminSecretName = (env: string) => `admin-api-key-${env}`;

function keyState(row: Row, now: Date): KeyState {
  if (row.status === 'REVOKED') return 'REVOKED';
  const expires = row.expires_at as Date | null;
  return expires && expires.getTime() <= now.getTime() ? 'EXPIRED' : 'ACTIVE';
}

function toInfo(row: Row, now: Date): KeyInfo {
  return {
    apiKeyId: String(row.api_key_id),
    tenantId: String(row.tenant_id),
    hashPrefix: String(row.api_key_hash).slice(0, HASH_PREFIX),
    keyPrefix: String(row.key_prefix),
    description: (row.description as string | null) ?? null,
    status: keyState(row, now),
    createdAt: row.created_at as Date,
    expiresAt: (row.expires_at as Date | null) ?? null,
    lastUsedAt: (row.last_used_at as Date | null) ?? null,
    revokedAt: (row.revoked_at as Date | null) ?? null,
  };
}

async function requireActiveTenant(ctx: ServiceContext, tenantId: string): Promise<Row> {
  const profile = await requireTenant(ctx, tenantId);
  if (profile.status !== 'ACTIVE') {
    throw conflictError(`tenant "${tenantId}" is ${String(profile.status).toLowerCase()}; keys cannot be issued`, {
      suggestion: `resume it first: convergence tenant resume ${tenantId}`,
    });
  }
  return profile;
}

/**
 * Changes to one tenant's keys are serialised across processes, so two concurrent creates cannot
 * both pass the plan limit check; a caller waits a little for the holder instead of failing.
 */
const withKeysLock = <R>(ctx: ServiceContext, tenantId: string, work: () => Promise<R>) =>
  withLease(ctx, `keys/${tenantId}`, { waitMs: 15_000, what: `the keys of tenant "${tenantId}"` }, work);

/** Mints a tenant key: stored as SHA-256 (lookup) plus a KeyRing-encrypted copy; returned once. */
export async function createKey(
  ctx: ServiceContext,
  input: { tenantId: string; description?: string; expiresInMs?: number },
): Promise<CreatedKey> {
  const tenantId = assertTenantId(input.tenantId);
  await requireActiveTenant(ctx, tenantId);
  if (input.expiresInMs !== undefined && input.expiresInMs <= 0) throw validationError('--expires-in must be positive');
  const warehouse = await ctx.backends.warehouse();
  return withKeysLock(ctx, tenantId, async () => {
    const [subscription] = await warehouse.select(METADATA_DATASET, T.subscriptions, {
      where: { tenant_id: tenantId, status: 'ACTIVE' },
      limit: 1,
    });
    const now = ctx.now();
    const limit = subscription ? Number(subscription.max_api_keys) : Infinity;
    const activeRows = await warehouse.select(METADATA_DATASET, T.apiKeys, { where: { tenant_id: tenantId, status: 'ACTIVE' } });
    const active = activeRows.filter((r) => keyState(r, now) === 'ACTIVE').length;
    if (active >= limit) {
      throw quotaExceededError(`tenant "${tenantId}" already has ${active} active keys (plan limit ${limit})`, {
        suggestion: 'revoke an unused key (convergence keys revoke <id>) or rotate instead',
      });
    }
    const apiKey = newTenantKey(tenantId);
    const row = await keyRow(
      ctx,
      tenantId,
      apiKey,
      input.description ?? null,
      input.expiresInMs === undefined ? null : new Date(now.getTime() + input.expiresInMs),
    );
    await warehouse.insert(METADATA_DATASET, T.apiKeys, [row]);
    return { ...toInfo(row, now), apiKey };
  });
}

async function keyRow(
  ctx: ServiceContext,
  tenantId: string,
  apiKey: string,
  description: string | null,
  expiresAt: Date | null,
): Promise<Row> {
  const keyring = await ctx.backends.keyring();
  const now = ctx.now();
  return {
    api_key_id: randomUUID(),
    tenant_id: tenantId,
    api_key_hash: hashKey(apiKey),
    encrypted_api_key: (await keyring.encrypt(Buffer.from(apiKey, 'utf8'))).toString('base64'),
    key_prefix: `${apiKey.slice(0, tenantId.length + 5 + 4)}…`,
    description,
    status: 'ACTIVE',
    expires_at: expiresAt,
    created_at: now,
    updated_at: now,
  };
}

export async function listKeys(ctx: ServiceContext, tenantId: string, options: { all?: boolean } = {}): Promise<KeyInfo[]> {
  await requireTenant(ctx, tenantId, { allowDeleted: true });
  const warehouse = await ctx.backends.warehouse();
  const rows = await warehouse.select(METADATA_DATASET, T.apiKeys, { where: { tenant_id: tenantId }, orderBy: [['created_at', 'desc']] });
  const now = ctx.now();
  const keys = rows.map((r) => toInfo(r, now));
  return options.all ? keys : keys.filter((k) => k.status === 'ACTIVE');
}

/** Finds one key by its id or by a hash prefix of at least 8 hex digits. */
async function findKey(ctx: ServiceContext, idOrHash: string): Promise<Row> {
  const warehouse = await ctx.backends.warehouse();
  let rows: Row[];
  if (/^[0-9a-f-]{36}$/.test(idOrHash)) {
    rows = await warehouse.select(METADATA_DATASET, T.apiKeys, { where: { api_key_id: idOrHash } });
  } else if (/^[0-9a-f]{8,64}$/.test(idOrHash)) {
    // Keys with this prefix sort first among hashes >= it; two rows are enough to detect ambiguity.
    rows = await warehouse.select(METADATA_DATASET, T.apiKeys, {
      where: { api_key_hash: { op: '>=', value: idOrHash } },
      orderBy: [['api_key_hash', 'asc']],
      limit: 2,
    });
    rows = rows.filter((r) => String(r.api_key_hash).startsWith(idOrHash));
  } else {
    throw validationError(`"${idOrHash}" is neither a key id nor a hash prefix`, {
      suggestion: 'pass the ID or HASH column of `convergence keys list --tenant <id>`',
    });
  }
  if (rows.length === 0)
    throw notFoundError(`no API key with id or hash prefix "${idOrHash}"`, {
      suggestion: 'list keys with `convergence keys list --tenant <id> --all`',
    });
  if (rows.length > 1)
    throw validationError(`hash prefix "${idOrHash}" matches ${rows.length} keys`, { suggestion: 'give more digits or the key id' });
  return rows[0]!;
}

export async function revokeKey(
  ctx: ServiceContext,
  idOrHash: string,
  reason = 'revoked by operator',
): Promise<KeyInfo & { changed: boolean }> {
  const row = await findKey(ctx, idOrHash);
  const now = ctx.now();
  if (row.status === 'REVOKED') return { ...toInfo(row, now), changed: false };
  const warehouse = await ctx.backends.warehouse();
  await warehouse.update(
    METADATA_DATASET,
    T.apiKeys,
    { status: 'REVOKED', revoked_at: now, revoked_reason: reason, updated_at: now },
    { api_key_id: String(row.api_key_id) },
  );
  return { ...toInfo({ ...row, status: 'REVOKED', revoked_at: now }, now), changed: true };
}

/**
 * Issues a new key and lets the tenant's other active keys live on for a grace period (0 revokes
 * them at once), so clients can switch over without an outage.
 */
export async function rotateKeys(
  ctx: ServiceContext,
  input: { tenantId: string; graceMs: number; description?: string },
): Promise<{ created: CreatedKey; retired: Array<{ apiKeyId: string; expiresAt: Date | null; revoked: boolean }> }> {
  const tenantId = assertTenantId(input.tenantId);
  await requireActiveTenant(ctx, tenantId);
  const warehouse = await ctx.backends.warehouse();
  return withKeysLock(ctx, tenantId, async () => {
    const now = ctx.now();
    const old = (await warehouse.select(METADATA_DATASET, T.apiKeys, { where: { tenant_id: tenantId, status: 'ACTIVE' } })).filter(
      (r) => keyState(r, now) === 'ACTIVE',
    );
    const apiKey = newTenantKey(tenantId);
    const row = await keyRow(ctx, tenantId, apiKey, input.description ?? 'rotated', null);
    const graceEnd = new Date(now.getTime() + input.graceMs);
    const retired = old.map((r) => {
      const current = r.expires_at as Date | null;
      const expiresAt = current && current < graceEnd ? current : graceEnd;
      return { apiKeyId: String(r.api_key_id), expiresAt: input.graceMs === 0 ? null : expiresAt, revoked: input.graceMs === 0 };
    });
    await warehouse.atomic([
      { kind: 'insert', dataset: METADATA_DATASET, table: T.apiKeys, rows: [row] },
      ...retired.map((r) => ({
        kind: 'update' as const,
        dataset: METADATA_DATASET,
        table: T.apiKeys,
        set: (r.revoked
          ? { status: 'REVOKED', revoked_at: now, revoked_reason: 'rotated', rotated_to: String(row.api_key_id), updated_at: now }
          : { expires_at: r.expiresAt, rotated_to: String(row.api_key_id), updated_at: now }) as Row,
        where: { api_key_id: r.apiKeyId },
      })),
    ]);
    return { created: { ...toInfo(row, now), apiKey }, retired };
  });
}

/** Creates the admin key of this environment in the SecretStore as admin-api-key-<env>. */
export async function createAdminKey(
  ctx: ServiceContext,
  options: { replace?: boolean } = {},
): Promise<{ adminKey: string; secretName: string; replaced: boolean; store: string }> {
  const secrets = await ctx.backends.secrets();
  const secretName = adminSecretName(ctx.env.name);
  const existing = await secrets.get(null, secretName);
  if (existing && !options.replace) {
    throw conflictError(`an admin key already exists in ${secrets.describe} as ${secretName}`, {
      suggestion: 'pass --replace to issue a new one (the old one stops working)',
    });
  }
  const adminKey = newAdminKey();
  await secrets.put(null, secretName, adminKey);
  return { adminKey, secretName, replaced: Boolean(existing), store: secrets.describe };
}

export interface VerifiedKey {
  tenantId: string;
  apiKeyId: string;
  /** The plan's API request budget (tenant_subscriptions.requests_per_minute); null without a subscription. */
  requestsPerMinute: number | null;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

/** The one refusal for every wrong API key, so a caller learns nothing about which part was wrong. */
export const invalidApiKeyError = () =>
  authError('invalid or inactive API key', {
    suggestion: 'check the X-API-Key header; keys are shown once by `convergence keys create`',
  });

/**
 * The check `serve` runs on every request. Any failure is the same AUTH error, so a caller learns
 * nothing about which part was wrong; digests are compared in constant time.
 */
export async function verifyApiKey(ctx: ServiceContext, presented: string): Promise<VerifiedKey> {
  const tenantId = tenantOfKey(presented);
  if (!tenantId) throw invalidApiKeyError();
  const digest = hashKey(presented);
  const warehouse = await ctx.backends.warehouse();
  // One statement for key, tenant state and plan: a cache miss of `serve` costs one warehouse
  // round trip (one BigQuery job, one DuckDB file open) instead of three.
  const table = (name: string) => warehouse.qualify(METADATA_DATASET, name);
  const [row] = await warehouse.query(
    `SELECT k.api_key_id, k.api_key_hash, k.tenant_id, k.status, k.expires_at, k.last_used_at,
            p.status AS tenant_status, s.requests_per_minute
     FROM ${table(T.apiKeys)} AS k
     LEFT JOIN ${table(T.profiles)} AS p ON p.tenant_id = k.tenant_id
     LEFT JOIN ${table(T.subscriptions)} AS s ON s.tenant_id = k.tenant_id AND s.status = @active
     WHERE k.api_key_hash = @digest
     LIMIT 1`,
    { digest, active: 'ACTIVE' },
  );
  if (!row || !digestsEqual(String(row.api_key_hash), digest) || row.tenant_id !== tenantId) throw invalidApiKeyError();
  if (keyState(row, ctx.now()) !== 'ACTIVE' || row.tenant_status !== 'ACTIVE') throw invalidApiKeyError();
  const perMinute = row.requests_per_minute;
  return {
    tenantId,
    apiKeyId: String(row.api_key_id),
    requestsPerMinute: perMinute === null || perMinute === undefined ? null : Number(perMinute),
    expiresAt: (row.expires_at as Date | null) ?? null,
    lastUsedAt: (row.last_used_at as Date | null) ?? null,
  };
}

/**
 * The digest and tenant of every usable key (ACTIVE, unexpired, tenant ACTIVE), in one statement:
 * `serve` keeps them in memory so that any other key is refused without a warehouse round trip.
 */
export async function activeKeyDigests(ctx: ServiceContext): Promise<Map<string, string>> {
  const warehouse = await ctx.backends.warehouse();
  const table = (name: string) => warehouse.qualify(METADATA_DATASET, name);
  const rows = await warehouse.query(
    `SELECT k.api_key_hash, k.tenant_id
     FROM ${table(T.apiKeys)} AS k
     JOIN ${table(T.profiles)} AS p ON p.tenant_id = k.tenant_id
     WHERE k.status = @active AND p.status = @active AND (k.expires_at IS NULL OR k.expires_at > @now)`,
    { active: 'ACTIVE', now: ctx.now() },
  );
  return new Map(rows.map((row) => [String(row.api_key_hash), String(row.tenant_id)]));
}

/** Records that a key was used (tenant_api_keys.last_used_at); callers throttle how often. */
export async function touchKey(ctx: ServiceContext, apiKeyId: string): Promise<void> {
  const warehouse = await ctx.backends.warehouse();
  const now = ctx.now();
  await warehouse.update(METADATA_DATASET, T.apiKeys, { last_used_at: now }, { api_key_id: apiKeyId, status: 'ACTIVE' });
}

/** SHA-256 of this environment's admin key, undefined when none was created; `serve` compares presented keys to it in memory. */
export async function adminKeyDigest(ctx: ServiceContext): Promise<string | undefined> {
  const stored = await (await ctx.backends.secrets()).get(null, adminSecretName(ctx.env.name));
  return stored ? hashKey(stored) : undefined;
}

/**
 * The one admin key check: whether `presented` is the key whose digest adminKeyDigest read (none
 * when no admin key was created). Digests are compared in constant time, so the time taken says
 * nothing about how much of a guess was right; a value not shaped like an admin key never matches.
 */
export function adminKeyMatches(digest: string | null | undefined, presented: string): boolean {
  if (!digest) return false;
  return ADMIN_KEY_PATTERN.test(presented) && digestsEqual(digest, hashKey(presented));
}
