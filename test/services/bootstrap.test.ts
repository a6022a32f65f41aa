import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { createKey } from '../../src/services/keys.ts';
import { METADATA_DATASET, METADATA_TABLES, T } from '../../src/services/metadata/tables.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

/** The binding table names of DESIGN.md: the 11 tables of seed 000 plus schema_migrations. */
const DESIGN_TABLES = [
  'tenant_profiles',
  'tenant_api_keys',
  'tenant_subscriptions',
  'tenant_usage_quotas',
  'tenant_cloud_credentials',
  'tenant_pipeline_configs',
  'tenant_scheduled_pipeline_runs',
  'tenant_pipeline_execution_queue',
  'tenant_pipeline_runs',
  'tenant_step_logs',
  'tenant_dq_results',
  'schema_migrations',
].sort();

let root: string;
let ctx: TestContext;

before(async () => {
  root = await newWorkspace('bootstrap');
  ctx = await openContext(root);
});
after(async () => {
  await ctx?.close();
  await cleanupAll();
});

const counts = async () => {
  const w = await ctx.backends.warehouse();
  const out: Record<string, number> = {};
  for (const name of await w.listTables(METADATA_DATASET)) out[name] = await w.count(METADATA_DATASET, name);
  return out;
};

describe('bootstrap', () => {
  it('first run creates the dataset, the 12 tables and records migrations 1, 2 and 3', async () => {
    const progress: string[] = [];
    const result = await bootstrap(ctx, { onProgress: (m) => progress.push(m) });
    assert.equal(result.datasetCreated, true);
    assert.deepEqual([...result.tablesCreated].sort(), DESIGN_TABLES);
    assert.deepEqual(result.tablesPresent, []);
    assert.deepEqual(result.migrationsApplied, [1, 2, 3]);
    assert.equal(result.schemaVersion, 3);
    assert.equal(progress.length, 12);

    const w = await ctx.backends.warehouse();
    // Migrations 2 and 3 add deployment_history and notification_deliveries next to the tables of seed 000.
    assert.deepEqual(await w.listTables(METADATA_DATASET), [...DESIGN_TABLES, 'deployment_history', 'notification_deliveries'].sort());
    for (const spec of METADATA_TABLES) {
      const fields = await w.getTableFields(METADATA_DATASET, spec.name);
      assert.deepEqual(
        fields?.map((f) => f.name),
        spec.fields.map((f) => f.name),
        spec.name,
      );
      assert.equal(result.tables.find((t) => t.name === spec.name)?.columns, fields?.length);
    }
    const [migration] = await w.select(METADATA_DATASET, T.migrations, { orderBy: [['version', 'asc']] });
    assert.equal(migration?.version, 1);
    assert.equal(migration?.applied_by, 'test:runner');
  });

  it('second run creates nothing and applies no migration', async () => {
    const result = await bootstrap(ctx);
    assert.equal(result.datasetCreated, false);
    assert.deepEqual(result.tablesCreated, []);
    assert.deepEqual([...result.tablesPresent].sort(), DESIGN_TABLES);
    assert.deepEqual(result.migrationsApplied, []);
    assert.equal(result.schemaVersion, 3);
    assert.equal((await counts())[T.migrations], 3);
  });

  it('force-recreate-tables empties every metadata table but keeps tenant datasets', async () => {
    await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' });
    await createKey(ctx, { tenantId: 'acme_corp' });
    const before = await counts();
    assert.equal(before[T.profiles], 1);
    assert.equal(before[T.apiKeys], 1);
    assert.equal(before[T.subscriptions], 1);

    const result = await bootstrap(ctx, { forceRecreateTables: true });
    assert.deepEqual([...result.tablesRecreated].sort(), DESIGN_TABLES);
    assert.deepEqual(result.tablesCreated, []);
    assert.deepEqual(result.migrationsApplied, [1, 2, 3], 'the emptied schema_migrations is filled again');
    const after = await counts();
    for (const name of DESIGN_TABLES) assert.equal(after[name], name === T.migrations ? 3 : 0, name);
    assert.equal(await (await ctx.backends.warehouse()).datasetExists('acme_corp'), true);
  });

  it('force-recreate-dataset drops everything in "tenants" and creates it again', async () => {
    await createTenant(ctx, { tenantId: 'globex', name: 'Globex', plan: 'starter' });
    const result = await bootstrap(ctx, { forceRecreateDataset: true });
    assert.equal(result.datasetCreated, true);
    assert.deepEqual([...result.tablesCreated].sort(), DESIGN_TABLES);
    assert.equal((await counts())[T.profiles], 0);
  });
});
