/**
 * Attack: a flood of junk API keys against `convergence serve`, meant to make every request cost
 * the warehouse a round trip and slow down the real tenants. Refused without the warehouse: keys
 * the in-memory index of usable keys does not list (401 for tenants without keys; for a real
 * tenant's prefix a few are verified per second, in case one was minted elsewhere a moment ago,
 * the rest 503), every key from an address that keeps failing (429 after a small burst), junk
 * admin keys (compared in memory); and verifications of keys never seen before are capped (503 at
 * once beyond the cap). The real tenant's key keeps working throughout, and no tenant's keys change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Warehouse } from '../../src/backends/warehouse/port.ts';
import { randomKeyBody } from '../../src/domain/api-keys.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { createKey, listKeys, revokeKey } from '../../src/services/keys.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { apiHarness, waitFor, type ApiHarness } from '../server/helpers.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { withContext } from '../helpers/context.ts';

after(cleanupAll);

/** A warehouse that counts key verifications and can hold them until released. */
class WatchedWarehouse {
  verifications = 0;
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  hold(): void {
    this.#held = new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  release(): void {
    this.#release?.();
    this.#held = undefined;
  }

  wrap(warehouse: Warehouse): Warehouse {
    return new Proxy(warehouse, {
      get: (target, prop) => {
        if (prop === 'query') {
          return async (sql: string, params?: Record<string, unknown>) => {
            if (sql.includes('api_key_hash = @digest')) {
              this.verifications++;
              await this.#held;
            }
            return target.query(sql, params as never);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}

/** A context whose warehouse is watched and whose secret store counts reads of the admin key. */
function watched(watch: WatchedWarehouse, secretReads: { count: number }) {
  return (ctx: ServiceContext): ServiceContext => ({
    ...ctx,
    backends: {
      ...ctx.backends,
      warehouse: async () => watch.wrap(await ctx.backends.warehouse()),
      secrets: async () => {
        const store = await ctx.backends.secrets();
        return new Proxy(store, {
          get(target, prop) {
            const value = Reflect.get(target, prop, target) as unknown;
            if (prop === 'get') {
              return (...args: unknown[]) => {
                secretReads.count++;
                return (value as (...a: unknown[]) => unknown).apply(target, args);
              };
            }
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
      },
    },
  });
}

const junkKey = (tenant: string) => `${tenant}_api_${randomKeyBody()}`;
let nextAddress = 1;
/** A fresh client address per call, so the per-address limit stays out of tests about other defences. */
const freshAddress = () => `10.1.${Math.floor(nextAddress / 250)}.${(nextAddress++ % 250) + 1}`;

describe('junk API keys cannot slow real tenants', () => {
  let h: ApiHarness;
  const watch = new WatchedWarehouse();
  const secretReads = { count: 0 };
  const runsUrl = '/api/v1/pipelines/runs';
  const get = (key: string, remoteAddress = freshAddress()) =>
    h.app.inject({ method: 'GET', url: runsUrl, headers: { 'x-api-key': key }, remoteAddress });

  before(async () => {
    h = await apiHarness({ keyIndexRefreshMs: 100, logLevel: 'silent' }, undefined, watched(watch, secretReads));
    await createTenant(h.ctx, { tenantId: 'keyless_co', name: 'No keys yet', plan: 'starter' });
    // other_co had a key; once revoked, the tenant has none.
    for (const key of await listKeys(h.ctx, 'other_co')) await revokeKey(h.ctx, key.apiKeyId);
    await h.parts.auth.forgetAll();
  });
  after(() => h.close());

  it('refuses keys of unknown tenants and of tenants without a usable key from memory', async () => {
    const before = watch.verifications;
    for (const tenant of ['nosuch_tenant', 'zz_unknown', 'keyless_co', 'other_co']) {
      for (let i = 0; i < 10; i++) {
        const res = await get(junkKey(tenant));
        assert.equal(res.statusCode, 401, res.body);
        assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH');
      }
    }
    assert.equal(watch.verifications, before, 'a junk key of a tenant without keys reached the warehouse');
    // The real tenant's key is verified (once) and works.
    const real = await get(h.keys.acme);
    assert.equal(real.statusCode, 200, real.body);
  });

  it('answers 429 with Retry-After to an address after a small burst of failures, not to the others, and not to a working key', async () => {
    const attacker = '10.9.9.9';
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await get(junkKey('nosuch_tenant'), attacker)).statusCode);
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
    assert.deepEqual(statuses.slice(10), Array(5).fill(429));
    const limited = await get(junkKey('acme_corp'), attacker);
    assert.equal(limited.statusCode, 429);
    const body = limited.json<{ error: { code: string; message: string }; request_id: string }>();
    assert.equal(body.error.code, 'TOO_MANY_AUTH_FAILURES');
    assert.ok(body.request_id);
    assert.ok(Number(limited.headers['retry-after']) >= 1, String(limited.headers['retry-after']));
    // No key is even looked at for the blocked address; the others are unaffected.
    assert.equal((await get(junkKey('nosuch_tenant'))).statusCode, 401);
    // The tenant's working key still works from the blocked address (a shared NAT, say).
    assert.equal((await get(h.keys.acme, attacker)).statusCode, 200);
  });

  it('treats an IPv6 /64 as one address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await get(junkKey('nosuch_tenant'), `2001:db8:1:2::${(i + 1).toString(16)}`)).statusCode);
    assert.equal(statuses.at(-1), 429, statuses.join(','));
    assert.equal((await get(junkKey('nosuch_tenant'), '2001:db8:1:3::1')).statusCode, 401);
  });

  it("verifies only a few unlisted keys of a real tenant's prefix per second; the rest get 503 without the warehouse", async () => {
    assert.equal((await get(h.keys.acme)).statusCode, 200);
    const before = watch.verifications;
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await get(junkKey('acme_corp'))).statusCode);
    const verified = watch.verifications - before;
    assert.ok(verified >= 1 && verified <= 4, `${verified} junk keys reached the warehouse`);
    assert.equal(statuses.filter((s) => s === 401).length, verified);
    assert.equal(statuses.filter((s) => s === 503).length, 20 - verified);
    const shed = await get(junkKey('acme_corp'));
    assert.equal(shed.json<{ error: { code: string } }>().error.code, 'AUTH_BUSY');
    assert.equal(shed.headers['retry-after'], '1');
    assert.equal((await get(h.keys.acme)).statusCode, 200);
  });

  it('compares junk admin keys in memory: the key store is read once per cache period, not once per key', async () => {
    const reads = secretReads.count;
    for (let i = 0; i < 20; i++) {
      const res = await h.app.inject({
        method: 'GET',
        url: '/api/v1/admin/tenants/acme_corp',
        headers: { 'x-admin-key': `admin_${randomKeyBody()}` },
        remoteAddress: freshAddress(),
      });
      assert.equal(res.statusCode, 401);
    }
    assert.ok(secretReads.count - reads <= 1, `${secretReads.count - reads} reads of the key store`);
  });

  it('accepts a key minted by another process within the refresh interval', async () => {
    // Another process (the CLI) gives keyless_co its first key: refused from memory until the index is reloaded.
    const minted = await withContext(h.root, async (ctx) => (await createKey(ctx, { tenantId: 'keyless_co' })).apiKey);
    await waitFor(async () => (await get(minted)).statusCode === 200, 'the CLI-minted key to be accepted', 10_000, 50);
  });

  it("changes no tenant's keys", async () => {
    const acme = await listKeys(h.ctx, 'acme_corp', { all: true });
    assert.equal(acme.length, 1);
    assert.equal(acme[0]!.status, 'ACTIVE');
    assert.equal((await get(h.keys.acme)).statusCode, 200);
  });
});

describe('a key issued through the admin API', () => {
  it('is accepted at once, even for a tenant that had no key and with no reload due for an hour', async () => {
    const h = await apiHarness({ keyIndexRefreshMs: 3_600_000, logLevel: 'silent' });
    try {
      await createTenant(h.ctx, { tenantId: 'brand_new', name: 'New', plan: 'starter' });
      // Minted behind the server's back: the in-memory set does not know the tenant yet.
      const cliKey = (await createKey(h.ctx, { tenantId: 'brand_new' })).apiKey;
      assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: cliKey })).statusCode, 401);
      const created = await h.call({
        method: 'POST',
        url: '/api/v1/admin/api-keys',
        admin: h.keys.admin,
        payload: { tenant_id: 'brand_new' },
      });
      assert.equal(created.statusCode, 201, created.body);
      const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: created.json<{ api_key: string }>().api_key });
      assert.equal(res.statusCode, 200, res.body);
    } finally {
      await h.close();
    }
  });
});

describe('verifications of keys never seen before', () => {
  const watch = new WatchedWarehouse();
  let h: ApiHarness;
  before(async () => {
    // No per-tenant budget for unlisted keys here: this is about the cap behind it.
    h = await apiHarness(
      { maxConcurrentVerifications: 2, unlistedKeyLimits: { burst: 0, refillEveryMs: 1_000 }, logLevel: 'silent' },
      undefined,
      watched(watch, { count: 0 }),
    );
  });
  after(() => h.close());
  const get = (key: string) =>
    h.app.inject({ method: 'GET', url: '/api/v1/pipelines/runs', headers: { 'x-api-key': key }, remoteAddress: freshAddress() });

  it('caps concurrent verifications of new keys: beyond the cap, 503 at once instead of queueing', async () => {
    // The real key verified first, so it is known while the warehouse is held.
    assert.equal((await get(h.keys.acme)).statusCode, 200);
    watch.hold();
    const before = watch.verifications;
    try {
      const first = [get(junkKey('acme_corp')), get(junkKey('acme_corp'))];
      await waitFor(() => watch.verifications === before + 2, 'two verifications to start');
      const shed = await Promise.all([get(junkKey('acme_corp')), get(junkKey('acme_corp')), get(junkKey('acme_corp'))]);
      for (const res of shed) {
        assert.equal(res.statusCode, 503, res.body);
        assert.equal(res.json<{ error: { code: string } }>().error.code, 'AUTH_BUSY');
        assert.equal(res.headers['retry-after'], '1');
      }
      assert.equal(watch.verifications, before + 2, 'a shed request reached the warehouse');
      // The real tenant's key, known to the server, is not held up by the cap.
      assert.equal((await get(h.keys.acme)).statusCode, 200);
      watch.release();
      for (const res of await Promise.all(first)) assert.equal(res.statusCode, 401);
    } finally {
      watch.release();
    }
  });
});
