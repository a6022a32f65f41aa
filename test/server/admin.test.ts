/** The admin API and scheduler hooks (X-Admin-Key), health and readiness. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildServer, DEFAULT_SERVER_OPTIONS } from '../../src/server/app.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { createRun, getRun } from '../../src/services/runs/store.ts';
import { newWorkspace, openContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { apiHarness, type ApiHarness } from './helpers.ts';

after(cleanupAll);

describe('admin API', () => {
  let h: ApiHarness;
  before(async () => {
    // A long verification cache: revocations through the API must still apply at once.
    h = await apiHarness({ authCacheTtlMs: 60_000 });
  });
  after(() => h.close());

  it('bootstraps idempotently', async () => {
    const res = await h.call({ method: 'POST', url: '/api/v1/admin/bootstrap', admin: h.keys.admin, payload: {} });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().status, 'success');
    assert.equal(res.json().dataset, 'tenants');
    assert.equal(res.json().tables_created, 0);
    assert.equal(res.json().tables_present, 12);
  });

  it('creates a tenant (201), refuses a duplicate (409) and shows it', async () => {
    const payload = { tenant_id: 'api_made_co', company_name: 'API Made', plan: 'professional', contact_email: 'ops@api-made.example' };
    const created = await h.call({ method: 'POST', url: '/api/v1/admin/tenants', admin: h.keys.admin, payload });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.headers.location, '/api/v1/admin/tenants/api_made_co');
    assert.equal(created.json().status, 'ACTIVE');
    assert.equal(created.json().limits.requests_per_minute, 300);

    const duplicate = await h.call({ method: 'POST', url: '/api/v1/admin/tenants', admin: h.keys.admin, payload });
    assert.equal(duplicate.statusCode, 409, duplicate.body);
    assert.match(duplicate.json().error.message, /already exists/);

    const shown = await h.call({ method: 'GET', url: '/api/v1/admin/tenants/api_made_co', admin: h.keys.admin });
    assert.equal(shown.statusCode, 200, shown.body);
    assert.equal(shown.json().company_name, 'API Made');
    assert.equal(shown.json().subscription.max_concurrent_pipelines, 5);
    assert.equal(shown.json().active_api_keys, 0);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/admin/tenants/no_such_co', admin: h.keys.admin })).statusCode, 404);
  });

  it('mints a key shown once, which works at once, and revokes it by hash so it stops at once', async () => {
    const minted = await h.call({
      method: 'POST',
      url: '/api/v1/admin/api-keys',
      admin: h.keys.admin,
      payload: { tenant_id: 'acme_corp', description: 'ci', expires_in_days: 30 },
    });
    assert.equal(minted.statusCode, 201, minted.body);
    const key = minted.json() as { api_key: string; api_key_hash_prefix: string; expires_at: string };
    assert.match(key.api_key, /^acme_corp_api_[0-9A-Za-z]{43}$/);
    assert.ok(Date.parse(key.expires_at) > Date.now() + 29 * 86_400_000);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.api_key })).statusCode, 200);

    const revoked = await h.call({ method: 'DELETE', url: `/api/v1/admin/api-keys/${key.api_key_hash_prefix}`, admin: h.keys.admin });
    assert.equal(revoked.statusCode, 200, revoked.body);
    assert.equal(revoked.json().status, 'REVOKED');
    assert.equal(revoked.json().changed, true);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: key.api_key })).statusCode, 401);
    // The tenant's other key is unaffected.
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.acme })).statusCode, 200);

    const unknown = await h.call({ method: 'DELETE', url: '/api/v1/admin/api-keys/ffffffffffffffff', admin: h.keys.admin });
    assert.equal(unknown.statusCode, 404, unknown.body);
  });

  it('refuses keys for a tenant at its plan limit with 429, and for unknown tenants with 404', async () => {
    const none = await h.call({ method: 'POST', url: '/api/v1/admin/api-keys', admin: h.keys.admin, payload: { tenant_id: 'no_such_co' } });
    assert.equal(none.statusCode, 404, none.body);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push(
        (await h.call({ method: 'POST', url: '/api/v1/admin/api-keys', admin: h.keys.admin, payload: { tenant_id: 'other_co' } }))
          .statusCode,
      );
    }
    // starter allows 5 active keys and other_co already has one.
    assert.deepEqual(codes, [201, 201, 201, 201, 429]);
  });

  it('runs the scheduler hooks, with the empty JSON body Cloud Scheduler sends', async () => {
    const warehouse = await h.ctx.backends.warehouse();
    await warehouse.update(METADATA_DATASET, T.quotas, { pipelines_run_today: 7 }, { tenant_id: 'acme_corp' });
    const reset = await h.call({
      method: 'POST',
      url: '/api/v1/scheduler/reset-daily-quotas',
      admin: h.keys.admin,
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    assert.equal(reset.statusCode, 200, reset.body);
    assert.ok(reset.json().tenants.includes('acme_corp'));
    const [quota] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: 'acme_corp' } });
    assert.equal(Number(quota!.pipelines_run_today), 0);

    const stuck = crypto.randomUUID();
    await createRun(h.ctx, {
      runId: stuck,
      tenantId: 'acme_corp',
      pipelineId: 'p_usage_daily',
      trigger: 'manual',
      runDate: '2025-01-31',
      parameters: {},
      timeoutAt: new Date(Date.now() - 1_000),
    });
    const cleanup = await h.call({ method: 'POST', url: '/api/v1/scheduler/cleanup-orphaned-pipelines', admin: h.keys.admin });
    assert.equal(cleanup.statusCode, 200, cleanup.body);
    assert.ok(
      cleanup.json().timed_out.some((r: { pipeline_logging_id: string }) => r.pipeline_logging_id === stuck),
      cleanup.body,
    );
    assert.equal((await getRun(h.ctx, stuck)).status, 'TIMEOUT');
  });
});

describe('health', () => {
  it('/health names service, version, environment and time; /health/ready checks the warehouse and bootstrap', async () => {
    const h = await apiHarness();
    try {
      const health = await h.call({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 200);
      const body = health.json();
      assert.deepEqual(
        { ...body, timestamp: undefined },
        {
          status: 'healthy',
          service: 'convergence-data-pipeline',
          version: '9.9.9-test',
          environment: 'local',
          timestamp: undefined,
        },
      );
      assert.ok(Math.abs(Date.parse(body.timestamp) - Date.now()) < 60_000);
      const ready = await h.call({ method: 'GET', url: '/health/ready' });
      assert.equal(ready.statusCode, 200, ready.body);
      assert.equal(ready.json().status, 'ready');
    } finally {
      await h.close();
    }
  });

  it('/health/ready answers 503 with the fix while the metadata is not bootstrapped', async () => {
    const root = await newWorkspace('unready');
    const ctx = await openContext(root);
    const { app } = await buildServer(ctx, { ...DEFAULT_SERVER_OPTIONS, version: 't', logLevel: 'silent', defaultMetrics: false });
    try {
      const res = await app.inject({ method: 'GET', url: '/health/ready' });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json().status, 'not_ready');
      assert.match(res.json().checks.bootstrap.detail, /`convergence bootstrap` on environment local/);
      assert.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    } finally {
      await app.close();
      await ctx.close();
    }
  });
});
