import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashKey, newAdminKey, newTenantKey } from '../../src/domain/api-keys.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import {
  adminKeyDigest,
  adminKeyMatches,
  createAdminKey,
  createKey,
  listKeys,
  revokeKey,
  rotateKeys,
  touchKey,
  verifyApiKey,
} from '../../src/services/keys.ts';
import { PLANS } from '../../src/domain/plans.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { deleteTenant } from '../../src/services/tenant-delete.ts';
import { createTenant, setTenantStatus } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { manualClock, newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const T0 = '2030-01-15T12:00:00.000Z';

let root: string;
let ctx: TestContext;
const clock = manualClock(T0);
/** The one message every refused key gets, taken from the simplest refusal. */
let deniedMessage: string;

async function tenant(id: string, plan = 'starter') {
  await createTenant(ctx, { tenantId: id, name: `Tenant ${id}`, plan });
}

async function denied(presented: string) {
  const err = await rejectsWith(verifyApiKey(ctx, presented), ExitCode.auth);
  assert.equal(err.code, 'AUTH');
  assert.equal(err.message, deniedMessage, `message for ${JSON.stringify(presented)}`);
  return err;
}

async function keyRow(apiKeyId: string) {
  const warehouse = await ctx.backends.warehouse();
  const [row] = await warehouse.select(METADATA_DATASET, T.apiKeys, { where: { api_key_id: apiKeyId } });
  assert.ok(row, `key row ${apiKeyId}`);
  return row;
}

before(async () => {
  root = await newBootstrappedWorkspace('keys');
  ctx = await openContext(root, { clock });
  const err = await rejectsWith(verifyApiKey(ctx, 'garbage'), ExitCode.auth);
  deniedMessage = err.message;
  assert.ok(deniedMessage.length > 0);
});

after(async () => {
  await ctx?.close();
  await cleanupAll();
});

describe('createKey', () => {
  it('mints <tenant>_api_<base62> and stores only its hash and an encrypted copy', async () => {
    clock.set(T0);
    await tenant('store_co');
    const key = await createKey(ctx, { tenantId: 'store_co', description: 'ci' });
    assert.match(key.apiKey, /^store_co_api_[0-9A-Za-z]{43}$/);
    assert.equal(key.status, 'ACTIVE');
    assert.equal(key.createdAt.toISOString(), T0);

    const row = await keyRow(key.apiKeyId);
    assert.equal(row.api_key_hash, hashKey(key.apiKey));
    assert.equal(key.hashPrefix, String(row.api_key_hash).slice(0, 12));
    assert.equal(row.description, 'ci');
    for (const [column, value] of Object.entries(row)) {
      assert.ok(!String(value).includes(key.apiKey.slice('store_co_api_'.length)), `column ${column} holds the key body`);
    }
    const keyring = await ctx.backends.keyring();
    const plain = await keyring.decrypt(Buffer.from(String(row.encrypted_api_key), 'base64'));
    assert.equal(plain.toString('utf8'), key.apiKey);
  });

  it('listKeys never returns the key itself', async () => {
    const [info] = await listKeys(ctx, 'store_co');
    assert.ok(info);
    assert.ok(!('apiKey' in info));
    assert.match(info.keyPrefix, /^store_co_api_.{4}…$/);
  });

  it('refuses unknown (8), invalid (2) and suspended (2) tenants, and a non-positive expiry (2)', async () => {
    await rejectsWith(createKey(ctx, { tenantId: 'no_such_co' }), ExitCode.notFound, /not found/);
    await rejectsWith(createKey(ctx, { tenantId: 'Bad Id' }), ExitCode.usage, /invalid tenant id/);
    await tenant('paused_co');
    await setTenantStatus(ctx, 'paused_co', 'SUSPENDED');
    await rejectsWith(createKey(ctx, { tenantId: 'paused_co' }), ExitCode.usage, /suspended/);
    await rejectsWith(createKey(ctx, { tenantId: 'store_co', expiresInMs: 0 }), ExitCode.usage, /--expires-in/);
    await rejectsWith(createKey(ctx, { tenantId: 'store_co', expiresInMs: -5 }), ExitCode.usage, /--expires-in/);
    const warehouse = await ctx.backends.warehouse();
    assert.equal(await warehouse.count(METADATA_DATASET, T.apiKeys, { tenant_id: 'paused_co' }), 0);
    assert.equal(await warehouse.count(METADATA_DATASET, T.apiKeys, { tenant_id: 'store_co' }), 1);
  });
});

describe('plan key limit', () => {
  it('starter allows 5 active keys; the 6th is quota exceeded (6) and writes nothing', async () => {
    clock.set(T0);
    await tenant('limit_co', 'starter');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createKey(ctx, { tenantId: 'limit_co' })).apiKeyId);
    const err = await rejectsWith(createKey(ctx, { tenantId: 'limit_co' }), ExitCode.quotaExceeded);
    assert.equal(err.code, 'QUOTA_EXCEEDED');
    assert.match(err.message, /5 active keys \(plan limit 5\)/);
    const warehouse = await ctx.backends.warehouse();
    assert.equal(await warehouse.count(METADATA_DATASET, T.apiKeys, { tenant_id: 'limit_co' }), 5);

    // Revoking one frees a slot.
    await revokeKey(ctx, ids[0]!);
    await createKey(ctx, { tenantId: 'limit_co' });
    await rejectsWith(createKey(ctx, { tenantId: 'limit_co' }), ExitCode.quotaExceeded);
  });

  it('expired keys do not count against the limit', async () => {
    clock.set(T0);
    await tenant('limit_exp_co', 'starter');
    for (let i = 0; i < 5; i++) await createKey(ctx, { tenantId: 'limit_exp_co', expiresInMs: HOUR });
    await rejectsWith(createKey(ctx, { tenantId: 'limit_exp_co' }), ExitCode.quotaExceeded);
    clock.advance(HOUR);
    const fresh = await createKey(ctx, { tenantId: 'limit_exp_co' });
    assert.equal(fresh.status, 'ACTIVE');
  });

  it('the limit follows the plan (professional allows more than 5)', async () => {
    clock.set(T0);
    await tenant('pro_co', 'professional');
    for (let i = 0; i < 6; i++) await createKey(ctx, { tenantId: 'pro_co' });
    assert.equal((await listKeys(ctx, 'pro_co')).length, 6);
  });
});

describe('verifyApiKey', () => {
  it('accepts a fresh key and names its tenant and key id', async () => {
    clock.set(T0);
    await tenant('verify_co');
    const key = await createKey(ctx, { tenantId: 'verify_co' });
    assert.deepEqual(await verifyApiKey(ctx, key.apiKey), {
      tenantId: 'verify_co',
      apiKeyId: key.apiKeyId,
      requestsPerMinute: PLANS.starter.requests_per_minute,
      expiresAt: null,
      lastUsedAt: null,
    });
  });

  it('touchKey records the last use of an active key', async () => {
    clock.set(T0);
    await tenant('touch_co');
    const key = await createKey(ctx, { tenantId: 'touch_co' });
    clock.advance(5_000);
    await touchKey(ctx, key.apiKeyId);
    assert.deepEqual((await verifyApiKey(ctx, key.apiKey)).lastUsedAt, clock.now());
  });

  it('refuses a revoked key (revoked by hash prefix)', async () => {
    clock.set(T0);
    const key = await createKey(ctx, { tenantId: 'verify_co' });
    await verifyApiKey(ctx, key.apiKey);
    const revoked = await revokeKey(ctx, key.hashPrefix, 'test');
    assert.equal(revoked.apiKeyId, key.apiKeyId);
    assert.equal(revoked.changed, true);
    await denied(key.apiKey);
    assert.equal((await keyRow(key.apiKeyId)).revoked_reason, 'test');
    const again = await revokeKey(ctx, key.apiKeyId);
    assert.equal(again.changed, false);
  });

  it('refuses an expired key from the moment it expires', async () => {
    clock.set(T0);
    const key = await createKey(ctx, { tenantId: 'verify_co', expiresInMs: HOUR });
    assert.equal(key.expiresAt?.toISOString(), new Date(Date.parse(T0) + HOUR).toISOString());
    clock.advance(HOUR - 1000);
    await verifyApiKey(ctx, key.apiKey);
    clock.advance(1000);
    await denied(key.apiKey);
    const listed = await listKeys(ctx, 'verify_co', { all: true });
    assert.equal(listed.find((k) => k.apiKeyId === key.apiKeyId)?.status, 'EXPIRED');
    assert.ok(!(await listKeys(ctx, 'verify_co')).some((k) => k.apiKeyId === key.apiKeyId), 'expired keys are not listed as active');
  });

  it('refuses the key of a suspended tenant, and accepts it again after resume', async () => {
    clock.set(T0);
    await tenant('suspend_co');
    const key = await createKey(ctx, { tenantId: 'suspend_co' });
    await setTenantStatus(ctx, 'suspend_co', 'SUSPENDED', 'unpaid');
    await denied(key.apiKey);
    await setTenantStatus(ctx, 'suspend_co', 'ACTIVE');
    await verifyApiKey(ctx, key.apiKey);
  });

  it('refuses the key of a deleted tenant', async () => {
    clock.set(T0);
    await tenant('gone_co');
    const key = await createKey(ctx, { tenantId: 'gone_co' });
    await deleteTenant(ctx, 'gone_co');
    await denied(key.apiKey);
  });

  it('refuses an active key whose tenant was deleted even if its row was not revoked', async () => {
    clock.set(T0);
    await tenant('gone_row_co');
    const key = await createKey(ctx, { tenantId: 'gone_row_co' });
    await deleteTenant(ctx, 'gone_row_co');
    const warehouse = await ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.apiKeys, { status: 'ACTIVE', revoked_at: null }, { api_key_id: key.apiKeyId });
    await denied(key.apiKey);
  });

  it('refuses malformed keys', async () => {
    const key = await createKey(ctx, { tenantId: 'verify_co' });
    const body = key.apiKey.slice('verify_co_api_'.length);
    for (const bad of [
      '',
      'x',
      body,
      `verify_co_api_`,
      `verify_co_api_${body}=`,
      ` ${key.apiKey}`,
      `${key.apiKey}\n`,
      `VERIFY_CO_api_${body}`,
      newAdminKey(),
    ]) {
      await denied(bad);
    }
  });

  it('refuses a key whose tenant prefix was altered, even to another real tenant', async () => {
    clock.set(T0);
    await tenant('other_co');
    const key = await createKey(ctx, { tenantId: 'verify_co' });
    const body = key.apiKey.slice('verify_co_api_'.length);
    await verifyApiKey(ctx, key.apiKey);
    await denied(`other_co_api_${body}`);
    await denied(`verify_cx_api_${body}`);
  });

  it('refuses a key one character off, wherever the change is', async () => {
    const key = await createKey(ctx, { tenantId: 'verify_co' });
    const start = 'verify_co_api_'.length;
    for (const i of [start, start + 20, key.apiKey.length - 1]) {
      const ch = key.apiKey[i] === 'a' ? 'b' : 'a';
      await denied(`${key.apiKey.slice(0, i)}${ch}${key.apiKey.slice(i + 1)}`);
    }
    await verifyApiKey(ctx, key.apiKey);
  });

  it('refuses a key whose stored row belongs to another tenant than the key claims', async () => {
    const forged = newTenantKey('verify_co');
    const warehouse = await ctx.backends.warehouse();
    const real = await createKey(ctx, { tenantId: 'other_co' });
    const row = await keyRow(real.apiKeyId);
    await warehouse.insert(METADATA_DATASET, T.apiKeys, [
      { ...row, api_key_id: '00000000-0000-4000-8000-000000000001', api_key_hash: hashKey(forged) },
    ]);
    await denied(forged);
  });
});

describe('rotateKeys', () => {
  it('with a grace period the old key stays valid until now + grace, the new one at once', async () => {
    clock.set(T0);
    await tenant('rotate_co');
    const old = await createKey(ctx, { tenantId: 'rotate_co' });
    const result = await rotateKeys(ctx, { tenantId: 'rotate_co', graceMs: HOUR });
    assert.match(result.created.apiKey, /^rotate_co_api_[0-9A-Za-z]{43}$/);
    assert.notEqual(result.created.apiKey, old.apiKey);
    const graceEnd = new Date(Date.parse(T0) + HOUR).toISOString();
    assert.deepEqual(
      result.retired.map((r) => ({ ...r, expiresAt: r.expiresAt?.toISOString() })),
      [{ apiKeyId: old.apiKeyId, expiresAt: graceEnd, revoked: false }],
    );
    const row = await keyRow(old.apiKeyId);
    assert.equal((row.expires_at as Date).toISOString(), graceEnd);
    assert.equal(row.rotated_to, result.created.apiKeyId);

    clock.advance(HOUR - MINUTE);
    assert.equal((await verifyApiKey(ctx, old.apiKey)).apiKeyId, old.apiKeyId);
    assert.equal((await verifyApiKey(ctx, result.created.apiKey)).apiKeyId, result.created.apiKeyId);
    clock.advance(MINUTE);
    await denied(old.apiKey);
    assert.equal((await verifyApiKey(ctx, result.created.apiKey)).apiKeyId, result.created.apiKeyId);
  });

  it('a key that expires before the grace ends keeps its earlier expiry', async () => {
    clock.set(T0);
    await tenant('rotate_soon_co');
    const soon = await createKey(ctx, { tenantId: 'rotate_soon_co', expiresInMs: 10 * MINUTE });
    const result = await rotateKeys(ctx, { tenantId: 'rotate_soon_co', graceMs: HOUR });
    assert.equal(result.retired[0]?.expiresAt?.toISOString(), new Date(Date.parse(T0) + 10 * MINUTE).toISOString());
    assert.equal(((await keyRow(soon.apiKeyId)).expires_at as Date).toISOString(), new Date(Date.parse(T0) + 10 * MINUTE).toISOString());
  });

  it('with 0s grace the old keys are revoked at once', async () => {
    clock.set(T0);
    await tenant('rotate_now_co');
    const a = await createKey(ctx, { tenantId: 'rotate_now_co' });
    const b = await createKey(ctx, { tenantId: 'rotate_now_co' });
    const result = await rotateKeys(ctx, { tenantId: 'rotate_now_co', graceMs: 0 });
    assert.deepEqual(
      result.retired.map((r) => [r.apiKeyId, r.revoked, r.expiresAt]).sort(),
      [
        [a.apiKeyId, true, null],
        [b.apiKeyId, true, null],
      ].sort(),
    );
    await denied(a.apiKey);
    await denied(b.apiKey);
    await verifyApiKey(ctx, result.created.apiKey);
    const listed = await listKeys(ctx, 'rotate_now_co', { all: true });
    assert.deepEqual(
      listed.map((k) => [k.apiKeyId, k.status]).sort(),
      [
        [a.apiKeyId, 'REVOKED'],
        [b.apiKeyId, 'REVOKED'],
        [result.created.apiKeyId, 'ACTIVE'],
      ].sort(),
    );
  });

  it('refuses a suspended tenant and writes nothing', async () => {
    clock.set(T0);
    await tenant('rotate_paused_co');
    const key = await createKey(ctx, { tenantId: 'rotate_paused_co' });
    await setTenantStatus(ctx, 'rotate_paused_co', 'SUSPENDED');
    await rejectsWith(rotateKeys(ctx, { tenantId: 'rotate_paused_co', graceMs: 0 }), ExitCode.usage, /suspended/);
    const listed = await listKeys(ctx, 'rotate_paused_co', { all: true });
    assert.deepEqual(
      listed.map((k) => [k.apiKeyId, k.status]),
      [[key.apiKeyId, 'ACTIVE']],
    );
  });
});

describe('revokeKey lookup', () => {
  it('unknown id or prefix is not found (8); a malformed one is usage (2)', async () => {
    await rejectsWith(revokeKey(ctx, '00000000-0000-4000-8000-00000000ffff'), ExitCode.notFound);
    await rejectsWith(revokeKey(ctx, 'ffffffffffff'.replace(/f/g, 'e')), ExitCode.notFound);
    await rejectsWith(revokeKey(ctx, 'not-a-key'), ExitCode.usage, /neither a key id nor a hash prefix/);
    await rejectsWith(revokeKey(ctx, 'abc'), ExitCode.usage);
  });

  it('an ambiguous hash prefix is refused and revokes nothing', async () => {
    const warehouse = await ctx.backends.warehouse();
    const real = await createKey(ctx, { tenantId: 'other_co' });
    const row = await keyRow(real.apiKeyId);
    const ids = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2'];
    await warehouse.insert(METADATA_DATASET, T.apiKeys, [
      { ...row, api_key_id: ids[0]!, api_key_hash: `deadbeef01${'0'.repeat(54)}` },
      { ...row, api_key_id: ids[1]!, api_key_hash: `deadbeef02${'0'.repeat(54)}` },
    ]);
    await rejectsWith(revokeKey(ctx, 'deadbeef'), ExitCode.usage, /matches 2 keys/);
    assert.equal(await warehouse.count(METADATA_DATASET, T.apiKeys, { api_key_id: { op: 'in', values: ids }, status: 'REVOKED' }), 0);
    const one = await revokeKey(ctx, 'deadbeef02');
    assert.equal(one.apiKeyId, ids[1]);
  });
});

describe('admin keys', () => {
  const file = () => path.join(root, '.convergence', 'secrets', 'admin-api-key-local.txt');

  const matches = async (presented: string) => adminKeyMatches(await adminKeyDigest(ctx), presented);

  it('nothing matches before an admin key exists', async () => {
    assert.equal(await adminKeyDigest(ctx), undefined);
    assert.equal(await matches(newAdminKey()), false);
  });

  it('createAdminKey stores admin_<base62> in a 0600 file and adminKeyMatches accepts it', async () => {
    const created = await createAdminKey(ctx);
    assert.match(created.adminKey, /^admin_[0-9A-Za-z]{43}$/);
    assert.equal(created.secretName, 'admin-api-key-local');
    assert.equal(created.replaced, false);
    assert.equal(await readFile(file(), 'utf8'), created.adminKey);
    assert.equal((await stat(file())).mode & 0o777, 0o600);
    assert.equal(await matches(created.adminKey), true);
  });

  it('refuses a wrong, malformed or tenant key', async () => {
    const stored = await readFile(file(), 'utf8');
    const tenantKey = await createKey(ctx, { tenantId: 'other_co' });
    const last = stored.at(-1) === 'a' ? 'b' : 'a';
    for (const bad of [newAdminKey(), '', 'admin_', `${stored.slice(0, -1)}${last}`, `${stored} `, tenantKey.apiKey]) {
      assert.equal(await matches(bad), false, JSON.stringify(bad));
    }
  });

  it('a second create without replace is refused (2) and keeps the key; with replace the old key stops working', async () => {
    const before = await readFile(file(), 'utf8');
    await rejectsWith(createAdminKey(ctx), ExitCode.usage, /already exists/);
    assert.equal(await readFile(file(), 'utf8'), before);
    const replaced = await createAdminKey(ctx, { replace: true });
    assert.equal(replaced.replaced, true);
    assert.notEqual(replaced.adminKey, before);
    assert.equal(await matches(replaced.adminKey), true);
    assert.equal(await matches(before), false);
  });
});
