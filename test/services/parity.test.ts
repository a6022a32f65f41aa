/**
 * The demo pipeline on the embedded default and on a cloud environment (BigQuery, Cloud KMS,
 * Secret Manager and Cloud Storage, all fakes behind the official clients) lands the same tables
 * with the same rows.
 *
 * The BigQuery fake translates BigQuery SQL and runs it on DuckDB, so both sides share one SQL
 * engine: this proves the BigQuery adapter and the wire format it speaks, not that BigQuery itself
 * evaluates the SQL the same way (its types, rounding, NULL ordering and functions are not tested
 * here).
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Row } from '../../src/backends/warehouse/port.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { planPipelineRun, runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';

const TENANT = 'acme_corp';
let fakes: CloudFakes;
let root: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('parity');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
  await installExample(root);
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

// Sums of doubles depend on the order rows are added in, which differs between engines: fractions
// are compared to 12 significant digits, everything else exactly.
const canonical = (value: unknown): unknown =>
  typeof value === 'number' && !Number.isInteger(value) ? Number(value.toPrecision(12)) : value;
const sortRows = (rows: Row[], key: (r: Row) => string) =>
  [...rows]
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    .map((r) =>
      JSON.stringify(
        Object.fromEntries(
          Object.keys(r)
            .sort()
            .map((k) => [k, canonical(r[k])]),
        ),
      ),
    );

interface Landed {
  status: string;
  raw: string[];
  fct: string[];
  quarantine: string[];
  dq: string[];
}

async function runDemo(env: string): Promise<Landed> {
  return withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
      const summary = await runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', runDate: '2025-01-31' });
      const w = await ctx.backends.warehouse();
      const quarantine = (await w.select(TENANT, 'raw_usage__quarantine')).map((r) => ({
        reason: r['_reason'],
        file: r['_source_file'],
        row: r['_source_row'],
        record: JSON.parse(String(r['record'])) as unknown,
      }));
      const dq = (await w.select(METADATA_DATASET, T.dqResults, { where: { pipeline_logging_id: summary.runId } })).map((r) => ({
        rule: r['rule_name'],
        passed: r['passed'],
        failing: r['failing_count'],
        total: r['total_count'],
      }));
      return {
        status: summary.status,
        raw: sortRows(await w.select(TENANT, 'raw_usage'), (r) => String(r['request_id'])),
        fct: sortRows(
          await w.select(TENANT, 'fct_usage_daily'),
          (r) => `${r['usage_date']}|${r['provider']}|${r['model']}|${r['user_email']}`,
        ),
        quarantine: sortRows(quarantine as Row[], (r) => `${r['file']}|${r['row']}`),
        dq: sortRows(dq as Row[], (r) => String(r['rule'])),
      };
    },
    { env },
  );
}

describe('parity between the embedded default and a cloud environment', () => {
  it('the demo pipeline produces the same tables and rows', async () => {
    const local = await runDemo('local');
    const cloud = await runDemo('cloud');
    assert.equal(local.status, 'COMPLETE');
    assert.equal(cloud.status, 'COMPLETE');
    assert.equal(local.raw.length, 7 * 300 + 1);
    assert.deepEqual(cloud.raw, local.raw);
    assert.ok(local.fct.length > 0);
    assert.deepEqual(cloud.fct, local.fct);
    assert.equal(local.quarantine.length, 2);
    assert.deepEqual(cloud.quarantine, local.quarantine);
    assert.equal(local.dq.length, 8);
    assert.deepEqual(cloud.dq, local.dq);
    assert.ok(
      fakes.bigquery.requests.some((r) => r.route === 'jobs.insert'),
      'the cloud run went through BigQuery',
    );
  });

  it("labels the run's BigQuery jobs and dry-runs its transforms for the bytes they would scan", async () => {
    const labelled = [...fakes.bigquery.jobs.values()].filter((j) => j.configuration.labels?.['tenant_id'] === TENANT);
    assert.ok(labelled.length > 0, 'jobs carry the tenant label');
    for (const job of labelled) {
      assert.equal(job.configuration.labels?.['pipeline_id'], 'p_usage_daily');
      assert.match(job.configuration.labels?.['run_id'] ?? '', /^[0-9a-f-]{36}$/);
    }
    const plan = await withContext(root, (ctx) => planPipelineRun(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily' }), {
      env: 'cloud',
    });
    const transform = plan.steps.find((s) => s.type === 'transform')!;
    assert.ok(Number(transform.detail['bytes']) > 0, JSON.stringify(transform.detail));
    assert.match(transform.summary, /would scan \d/);
    const local = await withContext(root, (ctx) => planPipelineRun(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily' }));
    assert.equal(local.steps.find((s) => s.type === 'transform')!.detail['bytes'], undefined, 'DuckDB has no dry run');
  });
});
