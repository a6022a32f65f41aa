/**
 * The demo's analytics model (seed 003's shape): p_usage_daily builds the dimensions (providers,
 * models, users) and fct_usage_daily, then four views for dashboards, on DuckDB and, through the
 * gs:// variant of the pipeline, on BigQuery (the REST fake); both give the same rows.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Row, Warehouse } from '../../src/backends/warehouse/port.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { EXAMPLE_TENANT, exampleGcsVariant, installExample } from '../../src/services/example.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { fakeClient } from '../fakes/bigquery/index.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { MODEL_VIEWS, modelSteps } from '../helpers/example-model.ts';
import { listFileRoots } from '../helpers/file-roots.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const RUN_DATE = '2025-01-07';
const BUCKET = 'acme-usage-exports';

type Model = Record<string, Row[]>;

/** Every table and view of the model, rows sorted so both warehouses can be compared. */
async function readModel(w: Warehouse): Promise<Model> {
  const model: Model = {};
  for (const name of ['dim_providers', 'dim_models', 'dim_users', ...MODEL_VIEWS]) {
    const rows = await w.select(EXAMPLE_TENANT, name);
    model[name] = rows.sort((a, b) => JSON.stringify(Object.values(a)).localeCompare(JSON.stringify(Object.values(b))));
  }
  return model;
}

const near = (a: unknown, b: number, what: string) => assert.ok(Math.abs(Number(a) - b) < 0.011, `${what}: ${String(a)} vs ${b}`);

/** What the model must say about a week of the demo's exports. */
function assertModel(model: Model): void {
  assert.deepEqual(
    model['dim_providers']!.map((r) => [r['provider'], r['models'], r['first_seen'], r['last_seen']]),
    [
      ['anthropic', 2, '2025-01-01', '2025-01-07'],
      ['cursor', 1, '2025-01-01', '2025-01-07'],
      ['openai', 2, '2025-01-01', '2025-01-07'],
    ],
  );
  assert.equal(model['dim_models']!.length, 5);
  assert.equal(model['dim_users']!.length, 12);

  const byProvider = model['v_daily_cost_by_provider']!;
  assert.equal(byProvider.length, 7 * 3, 'a row per day and provider');
  assert.equal(
    byProvider.reduce((n, r) => n + Number(r['requests']), 0),
    7 * 300 + 1,
    'every loaded request counted once',
  );

  const trend = model['v_cost_trend']!;
  assert.deepEqual(
    trend.map((r) => r['usage_date']),
    ['2025-01-01', '2025-01-02', '2025-01-03', '2025-01-04', '2025-01-05', '2025-01-06', '2025-01-07'],
  );
  const daily = trend.map((r) => Number(r['cost_usd']));
  near(trend[0]!['cost_usd_7d_avg'], daily[0]!, 'the first day averages itself');
  near(trend[6]!['cost_usd_7d_avg'], daily.reduce((a, b) => a + b, 0) / 7, 'the seventh day averages the week');
  for (const [i, r] of trend.entries()) {
    const perProvider = byProvider.filter((p) => p['usage_date'] === r['usage_date']).reduce((n, p) => n + Number(p['cost_usd']), 0);
    near(perProvider, daily[i]!, `cost of ${String(r['usage_date'])} by provider and in total`);
  }

  const mix = model['v_model_mix']!;
  for (const day of trend.map((r) => r['usage_date'])) {
    const shares = mix.filter((r) => r['usage_date'] === day).map((r) => Number(r['request_share']));
    assert.equal(shares.length, 5, `five models on ${String(day)}`);
    near(
      shares.reduce((a, b) => a + b, 0),
      1,
      `shares of ${String(day)}`,
    );
  }

  const top = [...model['v_top_users_by_cost']!].sort((a, b) => Number(a['cost_rank']) - Number(b['cost_rank']));
  assert.equal(top.length, 12);
  assert.equal(Number(top[0]!['cost_rank']), 1);
  assert.ok(
    top.every((r, i) => i === 0 || Number(r['cost_usd']) <= Number(top[i - 1]!['cost_usd'])),
    'ranked by cost',
  );
}

after(cleanupAll);

describe("the demo's analytics model", () => {
  let local: Model;

  before(async () => {
    const root = await newBootstrappedWorkspace('example-model');
    await installExample(root);
    local = await withContext(root, async (ctx) => {
      await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'ACME', plan: 'scale' });
      for (const attempt of ['first', 'again']) {
        const summary = await runPipeline(ctx, { tenantId: EXAMPLE_TENANT, pipelineId: 'p_usage_daily', runDate: RUN_DATE });
        assert.equal(summary.status, 'COMPLETE', `${attempt}: ${JSON.stringify(summary.error)}`);
        assert.deepEqual(
          summary.steps.slice(3).map((s) => `${s.name}:${s.status}`),
          modelSteps('COMPLETE'),
        );
      }
      return readModel(await ctx.backends.warehouse());
    });
  });

  it('builds the dimensions, the fact table and four views on DuckDB', () => {
    assertModel(local);
  });

  describe('on BigQuery', () => {
    let fakes: CloudFakes;
    after(() => fakes?.stop());

    it('builds the same model from the gs:// variant of the pipeline, its views stored as views', async () => {
      fakes = await startCloudFakes({ pointProcess: true });
      fakes.gcs.addBucket(BUCKET);
      const root = await newWorkspace('example-model-bq');
      await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
      await listFileRoots(root, [`gs://${BUCKET}/`], 'cloud');
      await installExample(root);
      const variant = await exampleGcsVariant(root, BUCKET);
      for (const [name, csv] of Object.entries(variant.objects)) fakes.gcs.putObject(BUCKET, name, csv, 'text/csv');
      const cloud = await withContext(
        root,
        async (ctx) => {
          await bootstrap(ctx);
          await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'ACME', plan: 'scale' });
          const summary = await runPipeline(ctx, { tenantId: EXAMPLE_TENANT, pipelineId: variant.pipelineId, runDate: RUN_DATE });
          assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
          return readModel(await ctx.backends.warehouse());
        },
        { env: 'cloud' },
      );
      assertModel(cloud);
      for (const name of Object.keys(local)) {
        assert.equal(cloud[name]!.length, local[name]!.length, name);
        for (const [i, row] of cloud[name]!.entries()) {
          for (const [column, value] of Object.entries(row)) {
            const expected = local[name]![i]![column];
            if (typeof value === 'number') near(value, Number(expected), `${name}.${column}`);
            else assert.deepEqual(value, expected, `${name}.${column}`);
          }
        }
      }
      const client = await fakeClient(fakes.bigquery);
      const [view] = await client.dataset(EXAMPLE_TENANT).table('v_cost_trend').getMetadata();
      assert.equal(view.type, 'VIEW');
      assert.match(view.view.query, /FROM `demo-project\.acme_corp\.fct_usage_daily`/);
    });
  });
});
