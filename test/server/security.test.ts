/**
 * The API's security contract, through Fastify's inject: every way a key can be wrong is the same
 * 401, tenants see only their own runs, admin routes need the admin key, bad bodies are refused
 * before any service runs, and no key ever reaches the log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newTenantKey } from '../../src/domain/api-keys.ts';
import { createKey, listKeys, revokeKey } from '../../src/services/keys.ts';
import { createRun } from '../../src/services/runs/store.ts';
import { setTenantStatus } from '../../src/services/tenants.ts';
import { manualClock } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { apiHarness, waitFor, type ApiHarness } from './helpers.ts';

after(cleanupAll);

const INVALID = 'invalid or inactive API key';
const errorOf = (res: { json(): unknown }) => (res.json() as { error: { code: string; message: string } }).error;

describe('tenant key checks', () => {
  let h: ApiHarness;
  const clock = manualClock(new Date());
  before(async () => {
    // No verification cache: each request sees what other processes (the CLI) changed. This suite
    // is about what each refusal looks like, so the junk-key limits (test/security/junk-keys) are wide.
    h = await apiHarness(
      {
        authCacheTtlMs: 0,
        authFailureLimits: { burst: 1_000, refillEveryMs: 1_000 },
        unlistedKeyLimits: { burst: 1_000, refillEveryMs: 1_000 },
      },
      clock,
    );
  });
  after(() => h.close());

  it('accepts a valid key', async () => {
    const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.acme });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { runs: [], count: 0, next_page_token: null });
  });

  it('refuses a missing key with 401 naming the header', async () => {
    const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs' });
    assert.equal(res.statusCode, 401);
    assert.deepEqual(errorOf(res), {
      code: 'AUTH',
      message: 'missing X-API-Key header',
      suggestion: 'send the key in the X-API-Key header',
    });
  });

  it('refuses malformed, unknown and tampered keys with the same 401', async () => {
    const tampered = `${h.keys.acme.slice(0, -1)}${h.keys.acme.endsWith('A') ? 'B' : 'A'}`;
    const foreignPrefix = h.keys.acme.replace(/^acme_corp_/, 'other_co_');
    for (const key of [
      'nope',
      'acme_corp_api_short',
      `${h.keys.acme}x`,
      newTenantKey('acme_corp'),
      tampered,
      foreignPrefix,
      "acme_corp_api_' OR 1=1 --",
    ]) {
      const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key });
      assert.equal(res.statusCode, 401, `${key}: ${res.body}`);
      assert.equal(errorOf(res).message, INVALID, key);
    }
  });

  it('refuses a revoked key', async () => {
    const key = await createKey(h.ctx, { tenantId: 'acme_corp', description: 'to revoke' });
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey })).statusCode, 200);
    await revokeKey(h.ctx, key.apiKeyId);
    const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey });
    assert.equal(res.statusCode, 401);
    assert.equal(errorOf(res).message, INVALID);
  });

  it('refuses an expired key', async () => {
    const key = await createKey(h.ctx, { tenantId: 'acme_corp', description: 'short-lived', expiresInMs: 60_000 });
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey })).statusCode, 200);
    clock.advance(61_000);
    const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey });
    assert.equal(res.statusCode, 401);
    assert.equal(errorOf(res).message, INVALID);
  });

  it('refuses the keys of a suspended tenant, and accepts them again once resumed', async () => {
    await setTenantStatus(h.ctx, 'other_co', 'SUSPENDED', 'unpaid invoice');
    const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.other });
    assert.equal(res.statusCode, 401);
    assert.equal(errorOf(res).message, INVALID);
    await setTenantStatus(h.ctx, 'other_co', 'ACTIVE');
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.other })).statusCode, 200);
  });

  it("answers another tenant's run exactly like a run that does not exist", async () => {
    const runId = crypto.randomUUID();
    await createRun(h.ctx, {
      runId,
      tenantId: 'acme_corp',
      pipelineId: 'p_usage_daily',
      trigger: 'manual',
      runDate: '2025-01-31',
      parameters: {},
      timeoutAt: new Date(Date.now() + 60_000),
    });
    const own = await h.call({ method: 'GET', url: `/api/v1/pipelines/runs/${runId}`, key: h.keys.acme });
    assert.equal(own.statusCode, 200, own.body);
    assert.equal(own.json().tenant_id, 'acme_corp');

    const foreign = await h.call({ method: 'GET', url: `/api/v1/pipelines/runs/${runId}`, key: h.keys.other });
    const missingId = crypto.randomUUID();
    const missing = await h.call({ method: 'GET', url: `/api/v1/pipelines/runs/${missingId}`, key: h.keys.other });
    assert.equal(foreign.statusCode, 404);
    assert.equal(missing.statusCode, 404);
    assert.equal(errorOf(foreign).message.replace(runId, 'ID'), errorOf(missing).message.replace(missingId, 'ID'));
    const cancel = await h.call({ method: 'DELETE', url: `/api/v1/pipelines/runs/${runId}`, key: h.keys.other });
    assert.equal(cancel.statusCode, 404);
    const list = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.other });
    assert.equal(list.json().count, 0);
  });

  it('counts refusals in the auth failure metric', async () => {
    const metrics = await h.call({ method: 'GET', url: '/metrics' });
    const match = /convergence_auth_failures_total\{kind="api"\} (\d+)/.exec(metrics.body);
    assert.ok(match, metrics.body);
    assert.ok(Number(match[1]) >= 11, match[0]);
  });
});

describe('admin key checks', () => {
  let h: ApiHarness;
  before(async () => {
    // 28 refusals from one address: this suite is about what each refusal does, not about the per-address limit.
    h = await apiHarness({ authFailureLimits: { burst: 100, refillEveryMs: 60_000 } });
  });
  after(() => h.close());

  const adminRoutes = [
    { method: 'POST', url: '/api/v1/admin/bootstrap' },
    { method: 'POST', url: '/api/v1/admin/tenants', payload: { tenant_id: 'new_co' } },
    { method: 'GET', url: '/api/v1/admin/tenants/acme_corp' },
    { method: 'POST', url: '/api/v1/admin/api-keys', payload: { tenant_id: 'acme_corp' } },
    { method: 'DELETE', url: '/api/v1/admin/api-keys/0123456789ab' },
    { method: 'POST', url: '/api/v1/scheduler/reset-daily-quotas' },
    { method: 'POST', url: '/api/v1/scheduler/cleanup-orphaned-pipelines' },
  ] as const;

  it('refuses every admin and scheduler route without the admin key, with a tenant key, or with a wrong one', async () => {
    const before = await listKeys(h.ctx, 'acme_corp');
    for (const route of adminRoutes) {
      const attempts = [
        { name: 'none', res: await h.call({ ...route }) },
        { name: 'tenant key as admin key', res: await h.call({ ...route, admin: h.keys.acme }) },
        { name: 'tenant key header', res: await h.call({ ...route, key: h.keys.acme }) },
        { name: 'wrong admin key', res: await h.call({ ...route, admin: `admin_${'x'.repeat(43)}` }) },
      ];
      for (const { name, res } of attempts) assert.equal(res.statusCode, 401, `${route.method} ${route.url} (${name}): ${res.body}`);
    }
    // Nothing happened behind the refusals.
    assert.equal((await listKeys(h.ctx, 'acme_corp')).length, before.length);
    const show = await h.call({ method: 'GET', url: '/api/v1/admin/tenants/new_co', admin: h.keys.admin });
    assert.equal(show.statusCode, 404);
  });
});

describe('request checks', () => {
  let h: ApiHarness;
  before(async () => {
    h = await apiHarness({ bodyLimit: 2048 });
  });
  after(() => h.close());

  it('refuses malformed JSON with 400', async () => {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/pipelines/run/p_usage_daily',
      key: h.keys.acme,
      headers: { 'content-type': 'application/json' },
      payload: '{"trigger_by": ',
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(errorOf(res).code, 'BAD_REQUEST');
  });

  it('refuses a body that is not JSON with 415', async () => {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/pipelines/run/p_usage_daily',
      key: h.keys.acme,
      headers: { 'content-type': 'application/xml' },
      payload: '<run/>',
    });
    assert.equal(res.statusCode, 415, res.body);
    assert.equal(errorOf(res).code, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/admin/tenants',
      admin: h.keys.admin,
      payload: { tenant_id: 'big_co', company_name: 'x'.repeat(4096) },
    });
    assert.equal(res.statusCode, 413, res.body);
    assert.equal(errorOf(res).code, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses unknown fields, bad ids and bad query values with 400 naming them', async () => {
    const cases = [
      { method: 'POST', url: '/api/v1/pipelines/run/p_usage_daily', payload: { unexpected: true }, pattern: /unexpected|additional/ },
      { method: 'POST', url: '/api/v1/pipelines/run/P-Bad', pattern: /pipeline_id/ },
      { method: 'POST', url: '/api/v1/pipelines/run/p_usage_daily', payload: { run_date: 'yesterday' }, pattern: /run_date/ },
      { method: 'GET', url: '/api/v1/pipelines/runs/not-a-uuid', pattern: /run_id/ },
      { method: 'GET', url: '/api/v1/pipelines/runs?limit=0', pattern: /limit/ },
      { method: 'GET', url: '/api/v1/pipelines/runs?status=DONE', pattern: /status/ },
      { method: 'GET', url: '/api/v1/pipelines/runs?page_token=garbage', pattern: /page_token/ },
      { method: 'GET', url: '/api/v1/pipelines/runs?since=last-week', pattern: /since/ },
    ] as const;
    for (const { pattern, ...request } of cases) {
      const res = await h.call({ ...request, key: h.keys.acme });
      assert.equal(res.statusCode, 400, `${request.method} ${request.url}: ${res.body}`);
      assert.match(errorOf(res).message, pattern, `${request.method} ${request.url}`);
    }
    const tenant = await h.call({ method: 'POST', url: '/api/v1/admin/tenants', admin: h.keys.admin, payload: { tenant_id: 'Bad-Id' } });
    assert.equal(tenant.statusCode, 400, tenant.body);
    assert.match(errorOf(tenant).message, /tenant_id/);
  });

  it('answers an unknown route with a JSON 404', async () => {
    const res = await h.call({ method: 'GET', url: '/api/v1/nothing?x=1' });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(errorOf(res), { code: 'NOT_FOUND', message: 'no route GET /api/v1/nothing' });
  });

  it('sends security headers, no-store and a request id (the caller’s when it is well formed)', async () => {
    const res = await h.call({ method: 'GET', url: '/health', headers: { 'x-request-id': 'trace-42.a' } });
    assert.equal(res.headers['x-request-id'], 'trace-42.a');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const odd = await h.call({ method: 'GET', url: '/health', headers: { 'x-request-id': 'bad id\u0007' } });
    assert.match(String(odd.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const failed = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs' });
    assert.equal(failed.json().request_id, failed.headers['x-request-id']);
  });

  it('never writes a key to the log', async () => {
    await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.acme });
    await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: `${h.keys.acme}tampered` });
    await h.call({ method: 'GET', url: '/api/v1/admin/tenants/acme_corp', admin: h.keys.admin });
    const created = await h.call({
      method: 'POST',
      url: '/api/v1/admin/api-keys',
      admin: h.keys.admin,
      payload: { tenant_id: 'acme_corp' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const minted = created.json().api_key as string;
    assert.ok(h.logs.length >= 4, 'the requests were logged');
    for (const secret of [h.keys.acme, h.keys.admin, minted, h.keys.acme.slice(-43), h.keys.admin.slice(-43)]) {
      assert.ok(!h.logs.some((line) => line.includes(secret)), 'a key was logged');
    }
  });
});

describe('cached key checks', () => {
  it('never accept a key past its expiry, even while the cached answer is being re-checked', async () => {
    const clock = manualClock(new Date());
    const h = await apiHarness({ authCacheTtlMs: 5_000 }, clock);
    try {
      const key = await createKey(h.ctx, { tenantId: 'acme_corp', description: 'expires soon', expiresInMs: 3_000 });
      assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey })).statusCode, 200);
      clock.advance(4_000);
      const res = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey });
      assert.equal(res.statusCode, 401, res.body);
      assert.equal(errorOf(res).message, INVALID);
    } finally {
      await h.close();
    }
  });

  it('keep answering a hot key while it is re-checked, and stop once the re-check sees it revoked', async () => {
    const clock = manualClock(new Date());
    const h = await apiHarness({ authCacheTtlMs: 5_000 }, clock);
    try {
      const key = await createKey(h.ctx, { tenantId: 'acme_corp', description: 'revoked elsewhere' });
      const get = () => h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.apiKey });
      assert.equal((await get()).statusCode, 200);
      await revokeKey(h.ctx, key.apiKeyId); // as another process would: the server's cache is not told
      assert.equal((await get()).statusCode, 200, 'fresh cached answer');
      clock.advance(6_000);
      assert.equal((await get()).statusCode, 200, 'stale answer while the re-check runs');
      await waitFor(async () => (await get()).statusCode === 401, 'the re-check to see the revocation', 10_000);
    } finally {
      await h.close();
    }
  });
});
