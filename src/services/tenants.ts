import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Row, Warehouse, Where } from '../backends/warehouse/port.ts';
import { assertTenantId } from '../domain/ids.ts';
import { assertPlan, PLANS, type PlanName } from '../domain/plans.ts';
import type { TenantStatus } from '../domain/states.ts';
import { conflictError, notFoundError, validationError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';
import { withLease } from './leases.ts';
import { requireBootstrapped } from './metadata/guard.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';

export const TENANT_CONFIG_DIRS = ['secrets', 'schemas', 'sources', 'pipelines', 'sql'] as const;

export interface TenantSummary {
  tenantId: string;
  name: string;
  status: TenantStatus;
  plan: string;
  datasetId: string;
  createdAt: Date;
}

export interface CreateTenantInput {
  tenantId: string;
  name: string;
  plan: string;
  contactEmail?: string;
}

export interface CreateTenantResult extends TenantSummary {
  limits: (typeof PLANS)[PlanName];
  configDir: string;
  createdDirs: string[];
}

const toSummary = (row: Row): TenantSummary => ({
  tenantId: String(row.tenant_id),
  name: String(row.company_name),
  status: row.status as TenantStatus,
  plan: String(row.plan_name),
  datasetId: String(row.dataset_id),
  createdAt: row.created_at as Date,
});

async function metadataWarehouse(ctx: ServiceContext): Promise<Warehouse> {
  const warehouse = await ctx.backends.warehouse();
  await requireBootstrapped(warehouse, ctx.env.name);
  return warehouse;
}

async function findProfile(warehouse: Warehouse, tenantId: string): Promise<Row | undefined> {
  const rows = await warehouse.select(METADATA_DATASET, T.profiles, { where: { tenant_id: tenantId }, limit: 1 });
  return rows[0];
}

/** The tenant's profile; deleted tenants count as not found unless asked for. */
export async function requireTenant(ctx: ServiceContext, tenantId: string, options: { allowDeleted?: boolean } = {}): Promise<Row> {
  assertTenantId(tenantId);
  const warehouse = await metadataWarehouse(ctx);
  const row = await findProfile(warehouse, tenantId);
  if (!row || (row.status === 'DELETED' && !options.allowDeleted)) {
    throw notFoundError(`tenant "${tenantId}" not found${row ? ' (deleted)' : ''}`, {
      suggestion: 'list tenants with `convergence tenant list`',
    });
  }
  return row;
}

/**
 * Onboards a tenant: profile, subscription and quota rows in one transaction, the tenant's
 * dataset, and its config folders. A per-tenant lock stops two concurrent creates of the same id;
 * if the metadata write fails, a dataset this call created is dropped again.
 */
export async function createTenant(ctx: ServiceContext, input: CreateTenantInput): Promise<CreateTenantResult> {
  const tenantId = assertTenantId(input.tenantId);
  const plan = assertPlan(input.plan);
  const name = input.name.trim();
  if (!name || name.length > 200) throw validationError('--name must be 1-200 characters', { suggestion: '--name "ACME Corp"' });
  if (input.contactEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(input.contactEmail)) {
    throw validationError(`invalid contact email ${JSON.stringify(input.contactEmail)}`);
  }
  const warehouse = await metadataWarehouse(ctx);
  return withLease(ctx, `tenant/${tenantId}`, { waitMs: 0, what: `tenant "${tenantId}"` }, async () => {
    const existing = await findProfile(warehouse, tenantId);
    if (existing?.status === 'DELETED') {
      throw conflictError(`tenant "${tenantId}" was deleted on ${(existing.deleted_at as Date).toISOString()}; tenant ids are not reused`, {
        suggestion: 'choose another tenant id',
      });
    }
    if (existing)
      throw conflictError(`tenant "${tenantId}" already exists`, { suggestion: `inspect it with \`convergence tenant show ${tenantId}\`` });

    if ((await warehouse.datasetExists(tenantId)) && (await warehouse.listTables(tenantId)).length > 0) {
      throw conflictError(`dataset "${tenantId}" already exists with tables but has no tenant profile`, {
        suggestion: 'choose another tenant id, or drop the stray dataset first',
      });
    }
    const datasetCreated = await warehouse.createDataset(tenantId);
    const now = ctx.now();
    const limits = PLANS[plan];
    try {
      await warehouse.atomic([
        {
          kind: 'insert',
          dataset: METADATA_DATASET,
          table: T.profiles,
          rows: [
            {
              tenant_id: tenantId,
              company_name: name,
              contact_email: input.contactEmail ?? null,
              status: 'ACTIVE',
              plan_name: plan,
              dataset_id: tenantId,
              created_by: ctx.actor,
              created_at: now,
              updated_at: now,
            },
          ],
        },
        {
          kind: 'insert',
          dataset: METADATA_DATASET,
          table: T.subscriptions,
          rows: [
            {
              subscription_id: randomUUID(),
              tenant_id: tenantId,
              plan_name: plan,
              status: 'ACTIVE',
              ...limits,
              starts_at: now,
              created_at: now,
              updated_at: now,
            },
          ],
        },
        {
          kind: 'insert',
          dataset: METADATA_DATASET,
          table: T.quotas,
          rows: [
            {
              tenant_id: tenantId,
              usage_date: now.toISOString().slice(0, 10),
              pipelines_run_today: 0,
              pipelines_succeeded_today: 0,
              pipelines_failed_today: 0,
              concurrent_pipelines_running: 0,
              daily_limit: limits.max_pipelines_per_day,
              concurrent_limit: limits.max_concurrent_pipelines,
              last_reset_at: now,
              created_at: now,
              updated_at: now,
            },
          ],
        },
      ]);
    } catch (err) {
      if (datasetCreated) await warehouse.dropDataset(tenantId).catch(() => {});
      throw err;
    }
    const configDir = path.join(ctx.workspace.root, 'configs', tenantId);
    const createdDirs: string[] = [];
    for (const dir of TENANT_CONFIG_DIRS) {
      const full = path.join(configDir, dir);
      const made = await mkdir(full, { recursive: true, mode: dir === 'secrets' ? 0o700 : 0o755 });
      if (made) createdDirs.push(path.relative(ctx.workspace.root, full));
    }
    return {
      tenantId,
      name,
      status: 'ACTIVE',
      plan,
      datasetId: tenantId,
      createdAt: now,
      limits,
      configDir: path.relative(ctx.workspace.root, configDir),
      createdDirs,
    };
  });
}

export async function listTenants(
  ctx: ServiceContext,
  options: { includeDeleted?: boolean; status?: TenantStatus } = {},
): Promise<TenantSummary[]> {
  const warehouse = await metadataWarehouse(ctx);
  const where: Where = options.status
    ? { status: options.status }
    : options.includeDeleted
      ? {}
      : { status: { op: '!=', value: 'DELETED' } };
  const rows = await warehouse.select(METADATA_DATASET, T.profiles, { where, orderBy: [['tenant_id', 'asc']] });
  return rows.map(toSummary);
}

export interface TenantDetails extends TenantSummary {
  contactEmail: string | null;
  statusReason: string | null;
  subscription: {
    plan: string;
    maxPipelinesPerDay: number;
    maxConcurrentPipelines: number;
    maxApiKeys: number;
    requestsPerMinute: number;
  } | null;
  quota: { usageDate: string; runsToday: number; dailyLimit: number; running: number; concurrentLimit: number } | null;
  activeKeys: number;
  datasetExists: boolean;
  pipelines: string[];
  credentials: string[];
}

export async function showTenant(ctx: ServiceContext, tenantId: string): Promise<TenantDetails> {
  const profile = await requireTenant(ctx, tenantId, { allowDeleted: true });
  const warehouse = await ctx.backends.warehouse();
  const [subscription] = await warehouse.select(METADATA_DATASET, T.subscriptions, {
    where: { tenant_id: tenantId, status: 'ACTIVE' },
    limit: 1,
  });
  const [quota] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: tenantId }, limit: 1 });
  const activeKeys = await warehouse.count(METADATA_DATASET, T.apiKeys, {
    tenant_id: tenantId,
    status: 'ACTIVE',
  });
  const credentials = await warehouse.select(METADATA_DATASET, T.credentials, {
    where: { tenant_id: tenantId, status: 'ACTIVE' },
    columns: ['credential_name'],
    orderBy: [['credential_name', 'asc']],
  });
  return {
    ...toSummary(profile),
    contactEmail: (profile.contact_email as string | null) ?? null,
    statusReason: (profile.status_reason as string | null) ?? null,
    subscription: subscription
      ? {
          plan: String(subscription.plan_name),
          maxPipelinesPerDay: Number(subscription.max_pipelines_per_day),
          maxConcurrentPipelines: Number(subscription.max_concurrent_pipelines),
          maxApiKeys: Number(subscription.max_api_keys),
          requestsPerMinute: Number(subscription.requests_per_minute),
        }
      : null,
    quota: quota
      ? {
          usageDate: String(quota.usage_date),
          runsToday: Number(quota.pipelines_run_today),
          dailyLimit: Number(quota.daily_limit),
          running: Number(quota.concurrent_pipelines_running),
          concurrentLimit: Number(quota.concurrent_limit),
        }
      : null,
    activeKeys,
    datasetExists: await warehouse.datasetExists(tenantId),
    pipelines: await pipelineFiles(ctx.workspace.root, tenantId),
    credentials: credentials.map((c) => String(c.credential_name)),
  };
}

async function pipelineFiles(root: string, tenantId: string): Promise<string[]> {
  try {
    const entries = await readdir(path.join(root, 'configs', tenantId, 'pipelines'));
    return entries
      .filter((e) => /\.ya?ml$/.test(e))
      .map((e) => e.replace(/\.ya?ml$/, ''))
      .sort();
  } catch {
    return [];
  }
}

export async function setTenantStatus(
  ctx: ServiceContext,
  tenantId: string,
  to: 'ACTIVE' | 'SUSPENDED',
  reason?: string,
): Promise<{ tenantId: string; previous: TenantStatus; status: TenantStatus; changed: boolean }> {
  const profile = await requireTenant(ctx, tenantId);
  const previous = profile.status as TenantStatus;
  if (previous === to) return { tenantId, previous, status: to, changed: false };
  const warehouse = await ctx.backends.warehouse();
  const now = ctx.now();
  await warehouse.update(
    METADATA_DATASET,
    T.profiles,
    { status: to, status_reason: reason ?? null, suspended_at: to === 'SUSPENDED' ? now : null, updated_at: now },
    { tenant_id: tenantId, status: previous },
  );
  return { tenantId, previous, status: to, changed: true };
}
