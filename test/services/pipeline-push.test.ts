import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { listPipelines } from '../../src/services/pipelines/catalog.ts';
import { loadActiveBundle, pushPipelines } from '../../src/services/pipelines/push.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);
const TENANT = 'acme_corp';

async function demo() {
  const root = await newBootstrappedWorkspace('push');
  await installExample(root);
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
  return root;
}

describe('pipeline push', () => {
  it('pushes each pipeline with its files once, replaces a changed one and lists versions', async () => {
    const root = await demo();
    const first = await withContext(root, (ctx) => pushPipelines(ctx, { tenantId: TENANT }));
    assert.deepEqual(
      first.map((p) => [p.pipelineId, p.changed, p.previousVersion]),
      [
        ['p_usage_api', true, null],
        ['p_usage_daily', true, null],
      ],
    );
    assert.deepEqual(first[1]!.files, [
      'pipelines/p_usage_daily.yml',
      'schemas/raw_usage.json',
      'sources/usage_files.yml',
      'sql/fct_usage_daily.sql',
    ]);
    const again = await withContext(root, (ctx) => pushPipelines(ctx, { tenantId: TENANT }));
    assert.deepEqual(
      again.map((p) => p.changed),
      [false, false],
    );

    await appendFile(path.join(root, 'configs', TENANT, 'sql', 'fct_usage_daily.sql'), '-- tuned\n');
    const listed = await withContext(root, (ctx) => listPipelines(ctx, TENANT));
    const daily = listed.find((p) => p.pipelineId === 'p_usage_daily')!;
    assert.equal(daily.pushedVersion, first[1]!.version);
    assert.notEqual(daily.localVersion, daily.pushedVersion, 'the workspace is ahead of what was pushed');

    const third = await withContext(root, (ctx) => pushPipelines(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily' }));
    assert.deepEqual([third[0]!.changed, third[0]!.previousVersion], [true, first[1]!.version]);
    const rows = await withWarehouse(root, (w) =>
      w.select(METADATA_DATASET, T.pipelineConfigs, { where: { pipeline_id: 'p_usage_daily' } }),
    );
    assert.deepEqual(rows.map((r) => r['is_active']).sort(), [false, true]);
  });

  it('runs exactly the pushed files, whatever the workspace holds now', async () => {
    const root = await demo();
    const [, pushed] = await withContext(root, (ctx) => pushPipelines(ctx, { tenantId: TENANT }));
    await writeFile(path.join(root, 'configs', TENANT, 'sql', 'fct_usage_daily.sql'), 'SELECT broken sql');
    const summary = await withContext(root, async (ctx) => {
      const bundle = await loadActiveBundle(ctx, TENANT, 'p_usage_daily');
      assert.equal(bundle.version, pushed!.version);
      return runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', bundle, trigger: 'remote' });
    });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(summary.configVersion, pushed!.version);
  });

  it('writes nothing when one pipeline is invalid, and names it', async () => {
    const root = await demo();
    await writeFile(path.join(root, 'configs', TENANT, 'pipelines', 'p_bad.yml'), 'pipeline_id: p_bad\nsteps: []\n');
    await rejectsWith(
      withContext(root, (ctx) => pushPipelines(ctx, { tenantId: TENANT })),
      2,
      /p_bad\.yml/,
    );
    assert.equal(await withWarehouse(root, (w) => w.count(METADATA_DATASET, T.pipelineConfigs)), 0);
    await rejectsWith(
      withContext(root, (ctx) => loadActiveBundle(ctx, TENANT, 'p_usage_daily')),
      8,
      /no pushed pipeline "p_usage_daily"/,
    );
  });
});
