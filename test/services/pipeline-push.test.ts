import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { listPipelines } from '../../src/services/pipelines/catalog.ts';
import { activePushedConfigs, loadActiveBundle, pushPipelines } from '../../src/services/pipelines/push.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse, type TestContext } from '../helpers/context.ts';
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
      'sql/dim_models.sql',
      'sql/dim_providers.sql',
      'sql/dim_users.sql',
      'sql/fct_usage_daily.sql',
      'sql/v_cost_trend.sql',
      'sql/v_daily_cost_by_provider.sql',
      'sql/v_model_mix.sql',
      'sql/v_top_users_by_cost.sql',
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

describe('pipeline push to a Google Cloud environment', () => {
  let demo: CloudDemo;
  before(async () => {
    // The demo installed, its exports uploaded to gs:// and its gs:// variant pushed.
    demo = await cloudDemoWorkspace('push-cloud');
  });
  after(async () => {
    await demo?.fakes.stop();
  });
  const cloud = <R>(work: (ctx: TestContext) => Promise<R>) => withContext(demo.root, work, { env: 'cloud' });
  const pushCloud = (pipelineId?: string) =>
    cloud((ctx) => pushPipelines(ctx, { tenantId: TENANT, ...(pipelineId ? { pipelineId } : {}) }));
  /** Every pushed version there is, active or not. */
  const configIds = () =>
    cloud(async (ctx) =>
      (await (await ctx.backends.warehouse()).select(METADATA_DATASET, T.pipelineConfigs)).map((r) => String(r['config_id'])).sort(),
    );
  const tenantFile = (relative: string) => path.join(demo.root, 'configs', TENANT, relative);

  it('accepts the gs:// variant of the demo, whose runs read the exports from Cloud Storage', async () => {
    const active = await cloud((ctx) => activePushedConfigs(ctx, TENANT));
    assert.deepEqual([...active.keys()], ['p_usage_daily_gcs']);
    assert.match(
      active.get('p_usage_daily_gcs')!.files['sources/usage_files_gcs.yml']!,
      /^path: gs:\/\/demo-project-tenant-exports\/acme_corp\/usage\/usage_\*\.csv/m,
    );
    const [again] = await pushCloud('p_usage_daily_gcs');
    assert.equal(again!.changed, false);
  });

  it('refuses local paths (exit 2, each source once at file:line:col, upload to gs://) and pushes none of the pipelines', async () => {
    // One more pipeline reading the demo's local source, and one reading an absolute local path.
    await writeFile(
      tenantFile('pipelines/p_usage_copy.yml'),
      'pipeline_id: p_usage_copy\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/usage_files.yml, destination: { table: usage_copy } }\n',
    );
    await writeFile(
      tenantFile('sources/exports_abs.yml'),
      'source_id: exports_abs\ntype: file\npath: /srv/exports/usage.csv\nformat: csv\n',
    );
    await writeFile(
      tenantFile('pipelines/p_abs.yml'),
      'pipeline_id: p_abs\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/exports_abs.yml, destination: { table: abs } }\n',
    );
    try {
      const before = await configIds();
      const err = await rejectsWith(pushCloud(), 2, /^nothing pushed to cloud: 2 source paths are refused$/m);
      assert.equal(err.code, 'VALIDATION');
      const [, ...problems] = err.message.split('\n');
      assert.equal(problems.length, 2, err.message);
      assert.match(problems[0]!, /^configs\/acme_corp\/sources\/exports_abs\.yml:3:7: path: "\/srv\/exports\/usage\.csv" is a local path/);
      assert.match(problems[1]!, /^configs\/acme_corp\/sources\/usage_files\.yml:3:7: path: "usage_\*\.csv" is a local path/);
      for (const problem of problems) assert.match(problem, /upload the data to gs:\/\/<bucket>\/\.\.\./);
      assert.match(err.suggestion ?? '', /convergence pipeline validate --tenant acme_corp --env cloud/);
      assert.deepEqual(await configIds(), before, 'nothing written, not even p_usage_api or the unchanged gs:// pipeline');
      await rejectsWith(
        cloud((ctx) => loadActiveBundle(ctx, TENANT, 'p_usage_api')),
        8,
        /no pushed pipeline "p_usage_api"/,
      );

      const single = await rejectsWith(pushCloud('p_usage_daily'), 2, /^nothing pushed to cloud: a source path is refused$/m);
      assert.match(single.message, /\nconfigs\/acme_corp\/sources\/usage_files\.yml:3:7: path: /);
      assert.deepEqual(await configIds(), before);
    } finally {
      for (const file of ['pipelines/p_usage_copy.yml', 'pipelines/p_abs.yml', 'sources/exports_abs.yml']) await rm(tenantFile(file));
    }
  });

  it('writes the changed pipelines of one push in one transaction: when the write fails, none of them is pushed', async () => {
    // Only pipelines a cloud environment can run: the local-path demo pipeline set aside.
    const daily = tenantFile('pipelines/p_usage_daily.yml');
    await rename(daily, `${daily}.off`);
    await appendFile(demo.pipelineFile, '# tuned\n');
    try {
      const before = await configIds();
      // BigQuery refuses the job that writes p_usage_daily_gcs, the second of the two new versions.
      demo.fakes.bigquery.inject({
        route: 'jobs.query',
        when: (request) => /INSERT/i.test(JSON.stringify(request.body)) && JSON.stringify(request.body).includes('p_usage_daily_gcs'),
        reason: 'accessDenied',
        message: 'Access Denied: Table demo-project:convergence_metadata.tenant_pipeline_configs',
        times: 10,
      });
      const refusedBefore = demo.fakes.bigquery.requestsTo('jobs.query').filter((r) => r.status === 403).length;
      try {
        await assert.rejects(pushCloud());
        assert.ok(
          demo.fakes.bigquery.requestsTo('jobs.query').filter((r) => r.status === 403).length > refusedBefore,
          'the write was refused',
        );
      } finally {
        demo.fakes.bigquery.clearFaults();
      }
      assert.deepEqual(await configIds(), before, 'p_usage_api, written in the same transaction, is not pushed either');

      const pushed = await pushCloud();
      assert.deepEqual(
        pushed.map((p) => [p.pipelineId, p.changed]),
        [
          ['p_usage_api', true],
          ['p_usage_daily_gcs', true],
        ],
      );
      assert.equal((await configIds()).length, before.length + 2);
    } finally {
      await rename(`${daily}.off`, daily);
    }
  });
});
