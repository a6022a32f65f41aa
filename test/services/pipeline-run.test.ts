/** The pipeline engine end to end in process, on the demo tenant and variations of it. */
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { loadBundle } from '../../src/services/pipelines/bundle.ts';
import { planPipelineRun, runFailure, runPipeline, type RunSummary } from '../../src/services/pipelines/run.ts';
import { admitRun } from '../../src/services/runs/admission.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { MODEL_STEPS, modelSteps } from '../helpers/example-model.ts';

after(cleanupAll);

const TENANT = 'acme_corp';
const PIPELINES = (root: string) => path.join(root, 'configs', TENANT, 'pipelines');

async function demoWorkspace(): Promise<string> {
  const root = await newBootstrappedWorkspace('run');
  await installExample(root);
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
  return root;
}

const run = (root: string, pipelineId = 'p_usage_daily', extra: Partial<Parameters<typeof runPipeline>[1]> = {}) =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId, runDate: '2025-01-31', ...extra }));

const count = (root: string, table: string) => withWarehouse(root, (w) => w.count(TENANT, table));
const stepStatuses = (s: RunSummary) => s.steps.map((st) => `${st.name}:${st.status}`);

describe('pipeline run on the demo tenant', () => {
  it('ingests, quarantines, checks and transforms, then a rerun adds nothing', async () => {
    const root = await demoWorkspace();
    const first = await run(root);
    assert.equal(first.status, 'COMPLETE', JSON.stringify(first.error));
    assert.equal(first.exitCode, 0);
    assert.deepEqual(stepStatuses(first), [
      'ingest_usage:COMPLETE',
      'check_usage:COMPLETE',
      'build_fct_usage_daily:COMPLETE',
      ...modelSteps('COMPLETE'),
    ]);
    assert.equal(await count(root, 'raw_usage'), 7 * 300 + 1);
    assert.equal(await count(root, 'raw_usage__quarantine'), 2);
    const ingest = first.steps[0]!;
    assert.equal(ingest.rowsIn, 7 * 300 + 3);
    assert.equal(ingest.rowsOut, 7 * 300 + 1);
    assert.ok(ingest.notes.some((n) => /2 rows could not be typed/.test(n)));
    // The odd cost and the stale dates are warnings, not failures.
    assert.ok(first.steps[1]!.notes.some((n) => /range_cost_usd/.test(n)));

    const totals = await withWarehouse(root, (w) =>
      w.query(`SELECT sum(requests) AS r, count(*) AS n FROM ${w.qualify(TENANT, 'fct_usage_daily')}`),
    );
    assert.equal(Number(totals[0]!['r']), 7 * 300 + 1);

    await withWarehouse(root, async (w) => {
      const [runRow] = await w.select(METADATA_DATASET, T.runs, { where: { pipeline_logging_id: first.runId } });
      assert.equal(runRow?.['status'], 'COMPLETE');
      assert.equal(runRow?.['config_version'], first.configVersion);
      assert.equal(await w.count(METADATA_DATASET, T.stepLogs, { pipeline_logging_id: first.runId }), 3 + MODEL_STEPS.length);
      assert.equal(await w.count(METADATA_DATASET, T.dqResults, { pipeline_logging_id: first.runId }), 8);
      const [state] = await w.select(TENANT, '_convergence_state');
      assert.equal(state?.['cursor_value'], '2025-01-07');
    });

    const second = await run(root);
    assert.equal(second.status, 'COMPLETE');
    // Only the row whose cursor cannot be typed is read again: it has no cursor to compare.
    assert.equal(second.steps[0]!.rowsIn, 1);
    assert.equal(second.steps[0]!.rowsOut, 0);
    assert.equal(await count(root, 'raw_usage'), 7 * 300 + 1);

    // A new export after the cursor is picked up, and only it.
    await writeFile(
      path.join(root, 'data', TENANT, 'usage_2025-01-08.csv'),
      (await readFile(path.join(root, 'data', TENANT, 'usage_2025-01-07.csv'), 'utf8'))
        .replaceAll('2025-01-07', '2025-01-08')
        .replaceAll('20250107', '20250108'),
    );
    const third = await run(root);
    assert.equal(third.steps[0]!.rowsOut, 300);
    assert.equal(await count(root, 'raw_usage'), 8 * 300 + 1);

    const refreshed = await run(root, 'p_usage_daily', { fullRefresh: true });
    assert.equal(refreshed.steps[0]!.rowsOut, 8 * 300 + 1);
    assert.equal(await count(root, 'raw_usage'), 8 * 300 + 1, 'merge keys keep a full refresh from duplicating');
  });

  it('--dry-run plans every step and writes nothing', async () => {
    const root = await demoWorkspace();
    const plan = await withContext(root, (ctx) =>
      planPipelineRun(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', runDate: '2025-01-31' }),
    );
    assert.deepEqual(
      plan.steps.map((s) => s.type),
      ['ingest', 'dq', 'transform', ...MODEL_STEPS.map(() => 'transform')],
    );
    assert.match(plan.steps[0]!.summary, /usage_\*\.csv → raw_usage \(merge, cursor 2025-01-01\)/);
    assert.match(String(plan.steps[2]!.detail['sql']), /"acme_corp"\."raw_usage"/);
    assert.equal(await withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs)), 0);
    assert.equal(await withWarehouse(root, (w) => w.tableExists(TENANT, 'raw_usage')), false);
  });

  it('fails with exit 4 on an error-severity rule, records the results and skips what follows', async () => {
    const root = await demoWorkspace();
    const file = path.join(PIPELINES(root), 'p_usage_daily.yml');
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace(
        '{ check: range, column: cost_usd, min: 0, max: 100, severity: warn }',
        '{ check: range, column: cost_usd, min: 0, max: 100 }',
      ),
    );
    const summary = await run(root);
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 4);
    assert.equal(summary.error?.code, 'DATA_QUALITY_FAILED');
    assert.deepEqual(stepStatuses(summary), [
      'ingest_usage:COMPLETE',
      'check_usage:FAILED',
      'build_fct_usage_daily:SKIPPED',
      ...modelSteps('SKIPPED'),
    ]);
    const [failed] = await withWarehouse(root, (w) =>
      w.select(METADATA_DATASET, T.dqResults, { where: { pipeline_logging_id: summary.runId, passed: false, severity: 'error' } }),
    );
    assert.equal(failed?.['failing_count'], 1);
    assert.match(String(failed?.['sample_values']), /250/);
  });

  it('goes on past a failed step with on_failure: continue', async () => {
    const root = await demoWorkspace();
    const file = path.join(PIPELINES(root), 'p_usage_daily.yml');
    await writeFile(
      file,
      (await readFile(file, 'utf8'))
        .replace(
          '{ check: range, column: cost_usd, min: 0, max: 100, severity: warn }',
          '{ check: range, column: cost_usd, min: 0, max: 100 }',
        )
        .replace('  - name: build_fct_usage_daily', '    on_failure: continue\n  - name: build_fct_usage_daily'),
    );
    const summary = await run(root);
    assert.equal(summary.status, 'COMPLETE');
    assert.deepEqual(stepStatuses(summary), [
      'ingest_usage:COMPLETE',
      'check_usage:FAILED',
      'build_fct_usage_daily:COMPLETE',
      ...modelSteps('COMPLETE'),
    ]);
  });

  it('fails a transform with an unknown template variable naming the file and line, and keeps earlier steps', async () => {
    const root = await demoWorkspace();
    await appendFile(path.join(root, 'configs', TENANT, 'sql', 'fct_usage_daily.sql'), '  AND provider = {{ provder }}\n');
    const summary = await run(root);
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 3);
    assert.match(summary.error?.message ?? '', /fct_usage_daily\.sql:\d+: unknown template variable \{\{ provder \}\}/);
    assert.equal(await count(root, 'raw_usage'), 7 * 300 + 1);
  });

  it('adds a new column to the destination and refuses an incompatible type', async () => {
    const root = await demoWorkspace();
    await run(root);
    const schemaFile = path.join(root, 'configs', TENANT, 'schemas', 'raw_usage.json');
    const fields = JSON.parse(await readFile(schemaFile, 'utf8')) as Array<{ name: string; type: string }>;
    await writeFile(schemaFile, JSON.stringify([...fields, { name: 'region', type: 'STRING' }]));
    const day = path.join(root, 'data', TENANT, 'usage_2025-01-09.csv');
    await writeFile(
      day,
      'request_id,usage_date,provider,model,user_email,input_tokens,output_tokens,cost_usd,region\nr1,2025-01-09,openai,gpt-4.1,a@b.c,1,1,0.1,eu\n',
    );
    const evolved = await run(root);
    assert.equal(evolved.status, 'COMPLETE', JSON.stringify(evolved.error));
    assert.ok(evolved.steps[0]!.notes.some((n) => /added columns to raw_usage: region/.test(n)));

    await writeFile(schemaFile, JSON.stringify([...fields.map((f) => (f.name === 'input_tokens' ? { ...f, type: 'STRING' } : f))]));
    await writeFile(
      day.replace('09', '10'),
      'request_id,usage_date,provider,model,user_email,input_tokens,output_tokens,cost_usd\nr2,2025-01-10,openai,gpt-4.1,a@b.c,many,1,0.1\n',
    );
    const refused = await run(root);
    assert.equal(refused.status, 'FAILED');
    assert.equal(refused.error?.code, 'SCHEMA_INCOMPATIBLE');
    assert.equal(await withWarehouse(root, (w) => w.count(TENANT, 'raw_usage', { request_id: 'r2' })), 0);
  });

  it('refuses a second run of the same pipeline with exit 5 naming the holder', async () => {
    const root = await demoWorkspace();
    await withContext(root, async (ctx) => {
      const held = await admitRun(ctx, {
        tenantId: TENANT,
        pipelineId: 'p_usage_daily',
        runId: '11111111-1111-4111-8111-111111111111',
        timeoutMs: 60_000,
      });
      try {
        await rejectsWith(runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily' }), 5, /11111111-1111-4111-8111-111111111111/);
      } finally {
        await held.release('failed');
      }
    });
  });

  it('stops at the next checkpoint when interrupted and marks the run CANCELLED', async () => {
    const root = await demoWorkspace();
    const interrupt = new AbortController();
    const summary = await withContext(root, (ctx) =>
      runPipeline(
        ctx,
        { tenantId: TENANT, pipelineId: 'p_usage_daily', signal: interrupt.signal },
        { stepFinished: (i) => i === 0 && interrupt.abort() },
      ),
    );
    assert.equal(summary.status, 'CANCELLED');
    assert.deepEqual(stepStatuses(summary), [
      'ingest_usage:COMPLETE',
      'check_usage:SKIPPED',
      'build_fct_usage_daily:SKIPPED',
      ...modelSteps('SKIPPED'),
    ]);
    await withContext(root, async (ctx) => {
      const lock = await ctx.backends.lock();
      assert.equal(await lock.inspect(`run/${TENANT}/p_usage_daily`), undefined, 'the lock is released');
    });
    const again = await run(root);
    assert.equal(again.status, 'COMPLETE');
  });
});

describe('the run path reads its configuration once', () => {
  it('runs the bundle its caller already read, not the workspace files', async () => {
    const root = await demoWorkspace();
    const bundle = await loadBundle(root, TENANT, 'p_usage_daily');
    await writeFile(path.join(PIPELINES(root), 'p_usage_daily.yml'), 'not: [a pipeline');
    const summary = await run(root, 'p_usage_daily', { bundle });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(summary.configVersion, bundle.version);
  });
});

describe('runFailure', () => {
  const summary = (extra: Partial<RunSummary>): RunSummary => ({
    runId: 'r1',
    tenantId: TENANT,
    pipelineId: 'p_usage_daily',
    status: 'FAILED',
    exitCode: 4,
    runDate: '2025-01-31',
    configVersion: 'v1',
    durationMs: 1,
    rowsProcessed: 0,
    steps: [],
    ...extra,
  });

  it("ends a command or job with the run's exit code, error and advice, the summary attached", () => {
    const failed = summary({ error: { code: 'DATA_QUALITY_FAILED', message: '1 rule failed', suggestion: 'fix the data' } });
    const err = runFailure(failed);
    assert.deepEqual(
      [err.code, err.exitCode, err.message, err.suggestion],
      ['DATA_QUALITY_FAILED', 4, 'run r1 FAILED: 1 rule failed', 'fix the data'],
    );
    assert.deepEqual(err.data, { run: failed });
  });

  it('points at the run logs when the run gave no advice, and names a run that ended without an error', () => {
    const err = runFailure(summary({ status: 'CANCELLED', exitCode: 3 }));
    assert.deepEqual(
      [err.code, err.exitCode, err.message, err.suggestion],
      ['RUN_FAILED', 3, 'run r1 CANCELLED: run r1 ended CANCELLED', 'see `convergence pipeline logs r1`'],
    );
  });
});
