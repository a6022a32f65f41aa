/**
 * pipeline backfill --remote: each date is one Cloud Run Jobs execution of the pushed config,
 * started and followed as `pipeline run --remote --wait` does, its run date handed over as the
 * execution's env override; the run history is read from BigQuery (the fake, with its referee).
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cloudRunTask, JobLogger } from '../../src/job/logger.ts';
import { resolveJobInput, runPipelineTask } from '../../src/job/tasks.ts';
import { planBackfill, runBackfill, type BackfillInput, type BackfillResult } from '../../src/services/pipelines/backfill.ts';
import { listRuns } from '../../src/services/runs/store.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { CLOUD_JOB as JOB, cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import type { CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';

const TENANT = 'acme_corp';
let demo: CloudDemo;
let fakes: CloudFakes;
let root: string;
const calls: RunJobCall[] = [];
/** Run dates whose execution fails before its container starts (an image that cannot be pulled). */
const brokenDates = new Set<string>();

before(async () => {
  demo = await cloudDemoWorkspace('backfill-remote');
  ({ fakes, root } = demo);
  fakes.run.setExecutionPolls(2);
  fakes.run.onRunJob(playContainer);
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

/** The Run job's container: `convergence job run-pipeline` in process with the execution's env overrides. */
async function playContainer(call: RunJobCall): Promise<RunJobOutcome> {
  calls.push(call);
  if (brokenDates.has(call.env['CONVERGENCE_RUN_DATE'] ?? '')) {
    return { failedBeforeAnyTask: true, message: 'The execution failed: the container image could not be pulled.' };
  }
  const exitCode = await withContext(
    root,
    async (ctx) => {
      const task = cloudRunTask({ CLOUD_RUN_JOB: JOB, CLOUD_RUN_EXECUTION: call.execution.split('/').at(-1) });
      const log = new JobLogger({ task, write: () => undefined });
      const rt = { ctx, log, task, signal: new AbortController().signal };
      return runPipelineTask(rt, resolveJobInput({}, call.env), call.env).then(
        (summary) => summary.exitCode,
        (err: unknown) => (err as { exitCode?: number }).exitCode ?? 1,
      );
    },
    { env: call.env['CONVERGENCE_ENV']! },
  );
  return exitCode === 0 ? { succeeded: 1 } : { failed: 1, message: `exit ${exitCode}` };
}

const backfill = (input: Partial<BackfillInput> = {}): Promise<BackfillResult> =>
  withContext(
    root,
    async (ctx) => {
      const full = {
        tenantId: TENANT,
        pipelineId: demo.pipelineId,
        from: '2025-01-01',
        to: '2025-01-03',
        remote: true,
        remotePollMs: 10,
        ...input,
      };
      return runBackfill(ctx, full, await planBackfill(ctx, full));
    },
    { env: 'cloud' },
  );

describe('pipeline backfill --remote', () => {
  it('starts one execution per date, oldest first, each with its run date; a second call starts none', async () => {
    const first = calls.length;
    const result = await backfill();
    assert.equal(result.exitCode, 0, JSON.stringify(result.dates.map((d) => d.error)));
    assert.equal(result.mode, 'remote');
    assert.deepEqual(
      result.dates.map((d) => `${d.runDate} ${d.status}`),
      ['2025-01-01 COMPLETE', '2025-01-02 COMPLETE', '2025-01-03 COMPLETE'],
    );
    const started = calls.slice(first);
    assert.deepEqual(
      started.map((c) => c.env['CONVERGENCE_RUN_DATE']),
      ['2025-01-01', '2025-01-02', '2025-01-03'],
    );
    assert.deepEqual(
      started.map((c) => c.env['CONVERGENCE_RUN_ID']),
      result.dates.map((d) => d.runId),
    );
    const runs = await withContext(root, (ctx) => listRuns(ctx, { tenantId: TENANT, pipelineId: demo.pipelineId }), { env: 'cloud' });
    assert.ok(runs.every((r) => r.trigger === 'remote' && r.status === 'COMPLETE'));

    const again = await backfill();
    assert.deepEqual(again.counts, { complete: 0, failed: 0, skipped: 3, notRun: 0 });
    assert.equal(calls.length, first + 3, 'no execution started');
  });

  it('a date whose execution fails is FAILED with its exit code while the other dates run; a second call runs only it', async () => {
    brokenDates.add('2025-01-05');
    try {
      const result = await backfill({ from: '2025-01-04', to: '2025-01-06' });
      assert.deepEqual(
        result.dates.map((d) => `${d.runDate} ${d.status}`),
        ['2025-01-04 COMPLETE', '2025-01-05 FAILED', '2025-01-06 COMPLETE'],
      );
      assert.equal(result.exitCode, 3);
      assert.match(result.dates[1]!.error ?? '', /container image could not be pulled/);
    } finally {
      brokenDates.clear();
    }
    const resumed = await backfill({ from: '2025-01-04', to: '2025-01-06' });
    assert.deepEqual(
      resumed.dates.map((d) => `${d.runDate} ${d.status}`),
      ['2025-01-04 SKIPPED', '2025-01-05 COMPLETE', '2025-01-06 SKIPPED'],
    );
  });

  it('refuses --concurrency above 1 and a local environment (exit 2)', async () => {
    await rejectsWith(backfill({ concurrency: 3 }), 2, /--concurrency 3/);
    await rejectsWith(
      withContext(root, (ctx) =>
        planBackfill(ctx, { tenantId: TENANT, pipelineId: demo.pipelineId, from: '2025-01-01', to: '2025-01-02', remote: true }),
      ),
      2,
      /"local" is a local environment/,
    );
  });
});
