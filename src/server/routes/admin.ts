import type { FastifyPluginAsync } from 'fastify';
import { PLAN_NAMES } from '../../domain/plans.ts';
import type { ServerParts } from '../types.ts';

const TENANT_ID = { type: 'string', pattern: '^[a-z][a-z0-9_]{2,49}$' } as const;
const DAY_MS = 86_400_000;

interface TenantBody {
  tenant_id: string;
  company_name?: string;
  name?: string;
  description?: string;
  plan?: string;
  contact_email?: string;
}

interface KeyBody {
  tenant_id: string;
  description?: string;
  expires_in_days?: number;
}

/**
 * The admin API (X-Admin-Key, the key `convergence keys admin create` put in the SecretStore) and
 * the scheduler hooks of seed 000. Each route is one service call, exactly what the CLI command of
 * the same name does.
 */
export const adminRoutes =
  (parts: ServerParts): FastifyPluginAsync =>
  async (app) => {
    app.addHook('preHandler', parts.requireAdmin);

    app.post<{ Body: { force_recreate_dataset?: boolean; force_recreate_tables?: boolean } | undefined }>(
      '/admin/bootstrap',
      {
        schema: {
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { force_recreate_dataset: { type: 'boolean' }, force_recreate_tables: { type: 'boolean' } },
          },
        },
      },
      async (request) => {
        const { bootstrap } = await import('../../services/bootstrap.ts');
        const body = request.body ?? {};
        const result = await bootstrap(parts.ctx, {
          forceRecreateDataset: body.force_recreate_dataset === true,
          forceRecreateTables: body.force_recreate_tables === true,
        });
        await parts.auth.forgetAll();
        return {
          status: 'success',
          message: 'Bootstrap completed successfully',
          dataset: result.dataset,
          tables_created: result.tablesCreated.length,
          tables_present: result.tablesPresent.length,
          tables_recreated: result.tablesRecreated.length,
          migrations_applied: result.migrationsApplied,
          schema_version: result.schemaVersion,
        };
      },
    );

    app.post<{ Body: TenantBody }>(
      '/admin/tenants',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['tenant_id'],
            properties: {
              tenant_id: TENANT_ID,
              company_name: { type: 'string', minLength: 1, maxLength: 200 },
              name: { type: 'string', minLength: 1, maxLength: 200 },
              description: { type: 'string', maxLength: 200 },
              plan: { type: 'string', enum: PLAN_NAMES },
              contact_email: { type: 'string', maxLength: 320 },
            },
          },
        },
      },
      async (request, reply) => {
        const { createTenant } = await import('../../services/tenants.ts');
        const body = request.body;
        const created = await createTenant(
          { ...parts.ctx, actor: 'api:admin' },
          {
            tenantId: body.tenant_id,
            name: body.company_name ?? body.name ?? body.description ?? body.tenant_id,
            plan: body.plan ?? 'starter',
            ...(body.contact_email ? { contactEmail: body.contact_email } : {}),
          },
        );
        void reply.code(201).header('location', `/api/v1/admin/tenants/${created.tenantId}`);
        return {
          tenant_id: created.tenantId,
          company_name: created.name,
          status: created.status,
          plan: created.plan,
          dataset_id: created.datasetId,
          limits: created.limits,
          created_at: created.createdAt,
        };
      },
    );

    app.get<{ Params: { tenant_id: string } }>(
      '/admin/tenants/:tenant_id',
      { schema: { params: { type: 'object', properties: { tenant_id: TENANT_ID }, required: ['tenant_id'] } } },
      async (request) => {
        const { showTenant } = await import('../../services/tenants.ts');
        const t = await showTenant(parts.ctx, request.params.tenant_id);
        return {
          tenant_id: t.tenantId,
          company_name: t.name,
          status: t.status,
          status_reason: t.statusReason,
          plan: t.plan,
          dataset_id: t.datasetId,
          dataset_exists: t.datasetExists,
          contact_email: t.contactEmail,
          created_at: t.createdAt,
          subscription: t.subscription && {
            plan: t.subscription.plan,
            max_pipelines_per_day: t.subscription.maxPipelinesPerDay,
            max_concurrent_pipelines: t.subscription.maxConcurrentPipelines,
            max_api_keys: t.subscription.maxApiKeys,
            requests_per_minute: t.subscription.requestsPerMinute,
          },
          quota: t.quota && {
            usage_date: t.quota.usageDate,
            pipelines_run_today: t.quota.runsToday,
            daily_limit: t.quota.dailyLimit,
            concurrent_pipelines_running: t.quota.running,
            concurrent_limit: t.quota.concurrentLimit,
          },
          active_api_keys: t.activeKeys,
          pipelines: t.pipelines,
          credentials: t.credentials,
        };
      },
    );

    app.post<{ Body: KeyBody }>(
      '/admin/api-keys',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['tenant_id'],
            properties: {
              tenant_id: TENANT_ID,
              description: { type: 'string', maxLength: 200 },
              expires_in_days: { type: 'integer', minimum: 1, maximum: 3650 },
            },
          },
        },
      },
      async (request, reply) => {
        const { createKey } = await import('../../services/keys.ts');
        const body = request.body;
        const key = await createKey(parts.ctx, {
          tenantId: body.tenant_id,
          ...(body.description ? { description: body.description } : {}),
          ...(body.expires_in_days ? { expiresInMs: body.expires_in_days * DAY_MS } : {}),
        });
        // Accepted at once: the in-memory index of usable keys lists it now, not at its next reload.
        parts.auth.keyIssued(key.apiKey, key.tenantId);
        void reply.code(201);
        return {
          api_key: key.apiKey,
          api_key_id: key.apiKeyId,
          api_key_hash_prefix: key.hashPrefix,
          tenant_id: key.tenantId,
          description: key.description,
          created_at: key.createdAt,
          expires_at: key.expiresAt,
          message: 'store this key now: it is not shown again',
        };
      },
    );

    app.delete<{ Params: { hash: string } }>(
      '/admin/api-keys/:hash',
      {
        schema: {
          params: {
            type: 'object',
            properties: {
              hash: { type: 'string', pattern: '^([0-9a-f]{8,64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$' },
            },
            required: ['hash'],
          },
        },
      },
      async (request) => {
        const { revokeKey } = await import('../../services/keys.ts');
        const revoked = await revokeKey(parts.ctx, request.params.hash, 'revoked through the admin API');
        // Cached verifications of this key must not outlive the revocation.
        await parts.auth.forgetAll();
        return {
          api_key_id: revoked.apiKeyId,
          tenant_id: revoked.tenantId,
          api_key_hash_prefix: revoked.hashPrefix,
          status: revoked.status,
          revoked_at: revoked.revokedAt,
          changed: revoked.changed,
        };
      },
    );

    app.post('/scheduler/reset-daily-quotas', async () => {
      const { resetQuotas } = await import('../../services/quotas.ts');
      const result = await resetQuotas(parts.ctx);
      return { status: 'success', usage_date: result.usageDate, tenants_reset: result.count, tenants: result.tenants };
    });

    app.post('/scheduler/cleanup-orphaned-pipelines', async () => {
      const { cleanupOrphans } = await import('../../services/maintenance.ts');
      const result = await cleanupOrphans(parts.ctx);
      return {
        status: 'success',
        timed_out: result.timedOut.map((r) => ({
          pipeline_logging_id: r.runId,
          tenant_id: r.tenantId,
          pipeline_id: r.pipelineId,
          reason: r.reason,
        })),
        locks_released: result.locksReleased,
        counters_corrected: result.countersCorrected.map((c) => ({ tenant_id: c.tenantId, from: c.from, to: c.to })),
        staging_removed: result.stagingRemoved.length,
      };
    });
  };
