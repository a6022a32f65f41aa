/**
 * The docs site's model of a tenant: after two runs of the demo's p_usage_daily, the lineage
 * reads usage files → raw_usage → its checks → fct_usage_daily → the dimensions and views, the
 * table pages hold the warehouse's columns and each rule's last result, the pipeline pages the
 * runs and DQ pass rates per day. An invalid pipeline file, a pushed-only pipeline and another
 * tenant with a pipeline of the same id are in the workspace too. The same demo on the BigQuery
 * fake makes the same lineage. Collection only reads: a warehouse that fails every write says so.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Warehouse } from '../../src/backends/warehouse/port.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { collectSiteModel } from '../../src/services/docs/collect.ts';
import { MAX_CHARTED_RUNS, type SiteModel } from '../../src/services/docs/model.ts';
import { installExample } from '../../src/services/example.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { MODEL_TABLES, MODEL_VIEWS } from '../helpers/example-model.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const OTHER = 'other_co';
const WRITES = ['insert', 'update', 'delete', 'atomic', 'load', 'createView', 'createTable', 'createDataset', 'dropTable', 'dropDataset'];

/** The warehouse, failing the test on any write: methods that change something, and query SQL that is not a SELECT. */
function readOnly(warehouse: Warehouse, refused: string[]): Warehouse {
  return new Proxy(warehouse, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property === 'string' && WRITES.includes(property)) {
        return () => {
          refused.push(property);
          throw new Error(`the docs collector called warehouse.${property}`);
        };
      }
      if (property === 'query') {
        return (sql: string, params?: Parameters<Warehouse['query']>[1]) => {
          if (!/^\s*(SELECT|WITH)\b/i.test(sql)) {
            refused.push(sql);
            throw new Error(`the docs collector ran a statement that is not a SELECT: ${sql.slice(0, 80)}`);
          }
          return target.query(sql, params);
        };
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Collects the model through a read-only warehouse; any write attempt fails the test. */
async function collectReadOnly(ctx: ServiceContext, tenantId: string): Promise<SiteModel> {
  const refused: string[] = [];
  const guarded = await ctx.backends.warehouse().then((w) => readOnly(w, refused));
  const backends = Object.create(ctx.backends) as ServiceContext['backends'];
  Object.defineProperty(backends, 'warehouse', { value: async () => guarded });
  const model = await collectSiteModel({ ...ctx, backends }, tenantId);
  assert.deepEqual(refused, [], 'the collector only reads');
  return model;
}

/** Another tenant with a pipeline of the same id, its own tables and a rule of its own. */
async function writeOtherTenant(root: string): Promise<void> {
  const dir = path.join(root, 'configs', OTHER);
  await writeFile(path.join(dir, 'sources', 'other_files.yml'), 'source_id: other_files\ntype: file\npath: other_*.csv\nformat: csv\n');
  await writeFile(
    path.join(dir, 'pipelines', 'p_usage_daily.yml'),
    `pipeline_id: p_usage_daily
steps:
  - { name: ingest_other, type: ingest, source_config: sources/other_files.yml, destination: { table: other_raw } }
  - { name: check_other, type: dq, table: other_raw, rules: [{ name: other_rule, check: row_count, min: 1 }] }
  - { name: build_other, type: transform, sql: sql/other_only.sql, destination: { table: other_only, write_mode: replace } }
`,
  );
  await writeFile(path.join(dir, 'sql', 'other_only.sql'), "SELECT id FROM {{ ref('other_raw') }}\n");
  await mkdir(path.join(root, 'data', OTHER), { recursive: true });
  await writeFile(path.join(root, 'data', OTHER, 'other_1.csv'), 'id\n1\n2\n');
}

/** Sets the demo up in `env`: two tenants, two demo runs, one run of the other tenant, p_usage_api pushed. */
async function setUpDemo(root: string, env: string): Promise<void> {
  await withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      await createTenant(ctx, { tenantId: TENANT, name: 'ACME Corp', plan: 'scale' });
      await createTenant(ctx, { tenantId: OTHER, name: 'Other', plan: 'scale' });
      if (env === 'local') await writeOtherTenant(root);
      for (let i = 0; i < 2; i++) {
        const run = await runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', runDate: '2025-01-31' });
        assert.equal(run.status, 'COMPLETE');
      }
      const other = await runPipeline(ctx, { tenantId: OTHER, pipelineId: 'p_usage_daily', runDate: '2025-01-31' });
      assert.equal(other.status, 'COMPLETE');
      await pushPipelines(ctx, { tenantId: TENANT, pipelineId: 'p_usage_api' });
    },
    { env },
  );
}

const nodeIds = (model: SiteModel) => model.lineage.nodes.map((n) => n.id);
const hasEdge = (model: SiteModel, from: string, to: string) => model.lineage.edges.some((e) => e.from === from && e.to === to);

let fakes: CloudFakes;
let root: string;
let local: SiteModel;
let cloud: SiteModel;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('docs-collect');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
  await installExample(root);
  await setUpDemo(root, 'local');
  await setUpDemo(root, 'cloud');
  // p_usage_api now exists only as pushed; p_broken is a file that does not validate.
  await rm(path.join(root, 'configs', TENANT, 'pipelines', 'p_usage_api.yml'));
  await writeFile(
    path.join(root, 'configs', TENANT, 'pipelines', 'p_broken.yml'),
    'pipeline_id: p_broken\nsteps:\n  - { name: x, type: ingest, source_config: sources/usage_files.yml, destination: { tabel: t } }\n',
  );
  // p_extra reads a table no pipeline writes, and the demo's fact table outside the demo's checks.
  await writeFile(
    path.join(root, 'configs', TENANT, 'pipelines', 'p_extra.yml'),
    'pipeline_id: p_extra\nsteps:\n  - { name: build_extra, type: transform, sql: sql/extra.sql, destination: { table: extra_out } }\n',
  );
  await writeFile(
    path.join(root, 'configs', TENANT, 'sql', 'extra.sql'),
    "SELECT f.usage_date FROM {{ ref('fct_usage_daily') }} AS f JOIN {{ ref('external_feed') }} AS e ON e.d = f.usage_date\n",
  );
  local = await withContext(root, (ctx) => collectReadOnly(ctx, TENANT));
  cloud = await withContext(root, (ctx) => collectReadOnly(ctx, TENANT), { env: 'cloud' });
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

describe('docs site model of the demo tenant', () => {
  it('names the tenant, the environment and the warehouse', () => {
    assert.equal(local.tenantId, TENANT);
    assert.equal(local.tenantName, 'ACME Corp');
    assert.equal(local.env, 'local');
    assert.equal(local.warehouse, 'duckdb');
    assert.equal(cloud.warehouse, 'bigquery');
    assert.ok(!Number.isNaN(Date.parse(local.generatedAt)));
  });

  it('draws usage files → raw_usage → check_usage → fct_usage_daily, then the dimensions and views', () => {
    const ids = nodeIds(local);
    assert.deepEqual(ids, [...ids].sort(), 'nodes sorted by id');
    const source = local.lineage.nodes.find((n) => n.id === 'source:usage_files');
    assert.deepEqual(source, {
      id: 'source:usage_files',
      kind: 'source',
      label: 'usage_files',
      detail: 'file csv usage_*.csv',
      href: null,
    });
    const check = local.lineage.nodes.find((n) => n.id === 'check:p_usage_daily/check_usage');
    assert.equal(check?.kind, 'check');
    assert.equal(check?.detail, '8 rules');
    assert.ok(hasEdge(local, 'source:usage_files', 'table:raw_usage'));
    assert.ok(hasEdge(local, 'table:raw_usage', 'check:p_usage_daily/check_usage'));
    assert.ok(hasEdge(local, 'check:p_usage_daily/check_usage', 'table:fct_usage_daily'));
    assert.ok(!hasEdge(local, 'table:raw_usage', 'table:fct_usage_daily'), 'the checked read comes through its check');
    assert.equal(local.lineage.edges.find((e) => e.to === 'table:fct_usage_daily')?.via, 'p_usage_daily/build_fct_usage_daily');
    for (const view of MODEL_VIEWS) {
      const node = local.lineage.nodes.find((n) => n.id === `table:${view}`);
      assert.equal(node?.kind, 'view', view);
      assert.equal(node?.detail, 'view');
      assert.equal(local.tables.find((t) => t.name === view)?.kind, 'view');
    }
    for (const table of MODEL_TABLES) assert.equal(local.lineage.nodes.find((n) => n.id === `table:${table}`)?.kind, 'table');
    const keys = local.lineage.edges.map((e) => `${e.from}>${e.to}`);
    assert.equal(new Set(keys).size, keys.length, 'no duplicate edges');
    // The pushed-only REST pipeline is drawn from its pushed files.
    assert.ok(hasEdge(local, 'source:usage_api', 'table:raw_usage_api'));
    assert.equal(local.lineage.nodes.find((n) => n.id === 'source:usage_api')?.detail, 'GET http://127.0.0.1:8787/v1/usage');
  });

  it('table pages: columns as the warehouse has them, writers, rules with their last result, neighbours', () => {
    const names = local.tables.map((t) => t.name);
    assert.deepEqual(names, [...names].sort());
    assert.ok(names.includes('raw_usage') && names.includes('fct_usage_daily'));
    const raw = local.tables.find((t) => t.name === 'raw_usage')!;
    assert.equal(raw.href, 'tables/raw_usage.html');
    assert.ok(raw.columns?.some((c) => c.name === 'request_id' && c.type === 'STRING'));
    assert.ok(raw.columns?.some((c) => c.name === 'cost_usd'));
    const ingest = raw.writers.find((w) => w.step === 'ingest_usage')!;
    assert.deepEqual(ingest, {
      pipelineId: 'p_usage_daily',
      step: 'ingest_usage',
      stepType: 'ingest',
      writeMode: 'merge',
      mergeKeys: ['request_id'],
      partitionBy: 'usage_date',
      clusterBy: ['provider', 'model'],
      from: 'usage_files',
    });
    assert.equal(raw.rules.length, 8);
    const notNull = raw.rules.find((r) => r.rule === 'not_null_request_id_usage_date_provider_model')!;
    assert.deepEqual(notNull.columns, ['request_id', 'usage_date', 'provider', 'model']);
    assert.equal(notNull.last?.passed, true);
    assert.equal(notNull.last?.failingCount, 0);
    assert.ok(notNull.last!.totalCount > 0);
    const newestRun = local.pipelines.find((p) => p.pipelineId === 'p_usage_daily')!.summary.lastRun!.runId;
    assert.ok(
      raw.rules.every((r) => r.last?.runId === newestRun),
      'every rule was last checked by the newest run',
    );
    assert.ok(raw.downstream.includes('check:p_usage_daily/check_usage'));
    assert.ok(raw.upstream.includes('source:usage_files'));
    const fct = local.tables.find((t) => t.name === 'fct_usage_daily')!;
    assert.deepEqual(fct.upstream, ['check:p_usage_daily/check_usage']);
    assert.ok(fct.columns?.some((c) => c.name === 'requests'));
    const view = local.tables.find((t) => t.name === MODEL_VIEWS[0])!;
    assert.equal(view.writers[0]?.writeMode, 'view');
    assert.ok(view.columns && view.columns.length > 0, 'a view has columns too');
  });

  it('pipeline pages: the demo with 2 runs, its steps and a DQ series per rule', () => {
    const ids = local.pipelines.map((p) => p.pipelineId);
    assert.deepEqual(ids, ['p_broken', 'p_extra', 'p_usage_api', 'p_usage_daily']);
    const daily = local.pipelines.find((p) => p.pipelineId === 'p_usage_daily')!;
    assert.equal(daily.href, 'pipelines/p_usage_daily.html');
    assert.equal(daily.file, 'configs/acme_corp/pipelines/p_usage_daily.yml');
    assert.equal(daily.configFrom, 'workspace');
    assert.deepEqual(daily.schedule, { cron: '0 6 * * *', timezone: 'America/Los_Angeles' });
    assert.ok(daily.yaml?.includes('pipeline_id: p_usage_daily'));
    assert.equal(daily.error, null);
    assert.equal(daily.summary.runs, 2);
    assert.equal(daily.summary.succeeded, 2);
    assert.equal(daily.summary.failed, 0);
    assert.equal(daily.summary.successRate, 1);
    assert.ok(daily.summary.p50DurationMs !== null);
    assert.equal(daily.runs.length, 2);
    assert.ok(daily.runs[0]!.at <= daily.runs[1]!.at, 'oldest first');
    assert.deepEqual(daily.summary.lastRun, daily.runs[1]);
    assert.equal(daily.runs[0]!.status, 'COMPLETE');
    const [ingest, check, fct] = daily.steps;
    assert.deepEqual(ingest, {
      name: 'ingest_usage',
      type: 'ingest',
      reads: ['source:usage_files'],
      writes: 'table:raw_usage',
      summary: 'merge into raw_usage from usage_files',
      onFailure: 'stop',
    });
    assert.equal(check?.summary, '8 rules on raw_usage');
    assert.equal(check?.writes, 'check:p_usage_daily/check_usage');
    assert.deepEqual(fct?.reads, ['table:raw_usage']);
    const viewStep = daily.steps.find((s) => s.name === 'view_cost_trend')!;
    assert.match(viewStep.summary, /^view v_cost_trend from sql\/v_cost_trend\.sql$/);
    assert.equal(daily.dq.length, 8, 'one series per rule');
    for (const series of daily.dq) {
      assert.equal(series.step, 'check_usage');
      assert.equal(series.table, 'raw_usage');
      assert.equal(series.days.length, 1, 'both runs checked on one UTC day');
      assert.match(series.days[0]!.day, /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(series.days[0]!.checks, 2);
    }
    assert.ok(MAX_CHARTED_RUNS >= 2);
  });

  it('a table only read through ref() has a node and a page; a check of another pipeline gates nothing here', () => {
    assert.equal(local.lineage.nodes.find((n) => n.id === 'table:external_feed')?.kind, 'table');
    assert.ok(hasEdge(local, 'table:external_feed', 'table:extra_out'));
    assert.ok(hasEdge(local, 'table:fct_usage_daily', 'table:extra_out'));
    const feed = local.tables.find((t) => t.name === 'external_feed')!;
    assert.equal(feed.columns, null, 'not in the warehouse');
    assert.deepEqual(feed.writers, []);
    assert.deepEqual(feed.downstream, ['table:extra_out']);
    const extra = local.pipelines.find((p) => p.pipelineId === 'p_extra')!;
    assert.deepEqual(extra.steps[0]?.reads, ['table:fct_usage_daily', 'table:external_feed']);
    assert.equal(extra.summary.runs, 0);
    assert.equal(extra.summary.lastRun, null);
    assert.deepEqual(extra.runs, []);
  });

  it('an invalid pipeline file is a problem and a page with its error; a pushed-only pipeline has its page', () => {
    const broken = local.pipelines.find((p) => p.pipelineId === 'p_broken')!;
    assert.ok(broken.error, 'the page says why');
    assert.deepEqual(broken.steps, []);
    assert.equal(broken.file, 'configs/acme_corp/pipelines/p_broken.yml');
    assert.ok(broken.yaml?.includes('tabel'));
    assert.equal(broken.summary.runs, 0);
    assert.equal(local.problems.length, 1);
    assert.match(local.problems[0]!, /p_broken\.yml/);
    const api = local.pipelines.find((p) => p.pipelineId === 'p_usage_api')!;
    assert.equal(api.file, null);
    assert.match(api.configFrom, /^[0-9a-f]{16}$/);
    assert.equal(api.error, null);
    assert.ok(api.steps.length > 0);
    assert.ok(api.yaml?.includes('pipeline_id: p_usage_api'));
  });

  it("never shows another tenant's runs, tables or rules", () => {
    const daily = local.pipelines.find((p) => p.pipelineId === 'p_usage_daily')!;
    assert.equal(daily.summary.runs, 2, 'the other tenant ran a pipeline of the same id');
    assert.ok(!daily.dq.some((s) => s.rule === 'other_rule'));
    const text = JSON.stringify(local);
    for (const foreign of ['other_raw', 'other_only', 'other_files', 'other_rule', OTHER]) assert.ok(!text.includes(foreign), foreign);
  });

  it('the other tenant sees its own pipeline only', async () => {
    const other = await withContext(root, (ctx) => collectReadOnly(ctx, OTHER));
    assert.deepEqual(
      other.pipelines.map((p) => [p.pipelineId, p.summary.runs]),
      [['p_usage_daily', 1]],
    );
    assert.ok(hasEdge(other, 'check:p_usage_daily/check_other', 'table:other_only'));
    assert.ok(!JSON.stringify(other).includes('raw_usage'));
  });

  it('the same demo on the BigQuery fake: the same lineage and run counts', () => {
    assert.deepEqual(cloud.lineage, local.lineage);
    assert.deepEqual(
      cloud.pipelines.map((p) => [p.pipelineId, p.summary.runs, p.runs.length, p.dq.length]),
      local.pipelines.map((p) => [p.pipelineId, p.summary.runs, p.runs.length, p.dq.length]),
    );
    assert.deepEqual(
      cloud.tables.map((t) => [t.name, t.kind, t.columns?.map((c) => c.name), t.rules.map((r) => r.last?.passed)]),
      local.tables.map((t) => [t.name, t.kind, t.columns?.map((c) => c.name), t.rules.map((r) => r.last?.passed)]),
    );
  });
});
