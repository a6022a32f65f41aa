/**
 * A remote run's log lines read back from Cloud Logging: the fake Run job plays the container
 * (`job run-pipeline` in process) and forwards each line it writes to the Logging fake as Cloud
 * Run does, while another execution of the same job logs for another run at the same time.
 * `pipeline logs` shows only the run asked for, `--follow` ends when the run does, and
 * `pipeline run --remote --wait` streams the lines while it waits.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { RunLogEntry } from '../../src/backends/logs/port.ts';
import { cloudRunTask, JobLogger } from '../../src/job/logger.ts';
import { resolveJobInput, runPipelineTask } from '../../src/job/tasks.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { startRemoteRun } from '../../src/services/pipelines/remote.ts';
import { followRunLogs, readRunLogs } from '../../src/services/runs/remote-logs.ts';
import { createRun } from '../../src/services/runs/store.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { CLOUD_JOB as JOB, cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { withContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_PROJECT, type CloudFakes } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';

let demo: CloudDemo;
let fakes: CloudFakes;
let root: string;
/** The run id another execution of the job logs for while ours runs. */
const OTHER_RUN = randomUUID();
/** Set by a test to hold the container after its first line until the test lets it go on. */
let gate: { started(runId: string): void; proceed: Promise<void> } | undefined;

before(async () => {
  demo = await cloudDemoWorkspace('remote-logs');
  ({ fakes, root } = demo);
  fakes.run.setExecutionPolls(2);
  fakes.run.onRunJob(playContainer);
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

/** A line of the other execution, as its container would write it. */
function otherRunLine(message: string): void {
  const line = JSON.stringify({
    severity: 'ERROR',
    message,
    'logging.googleapis.com/labels': { run_id: OTHER_RUN, tenant_id: 'other_corp' },
  });
  fakes.logging.containerLine(line, {
    project: CLOUD_PROJECT,
    location: 'us-central1',
    job: JOB,
    execution: `${JOB}-other`,
    taskIndex: 0,
    stream: 'stdout',
  });
}

/** The Run job's container: `convergence job run-pipeline` in process; every line it writes goes to Run's log forwarding. */
async function playContainer(call: RunJobCall): Promise<RunJobOutcome> {
  const execution = call.execution.split('/').at(-1)!;
  const task = cloudRunTask({ CLOUD_RUN_JOB: JOB, CLOUD_RUN_EXECUTION: execution });
  const write = (line: string) => {
    call.output(line);
    otherRunLine(`other run, line beside: ${JSON.parse(line).message}`);
  };
  if (gate) {
    new JobLogger({ task, write, labels: { run_id: call.env['CONVERGENCE_RUN_ID']! } }).info('container up');
    gate.started(call.env['CONVERGENCE_RUN_ID']!);
    await gate.proceed;
  }
  // A line the container prints outside the job's logger, with what looks like a credential in it.
  call.output('a plain line on stderr, token=tok_3f9a8b7c6d', 'stderr');
  const exitCode = await withContext(
    root,
    async (ctx) => {
      const log = new JobLogger({ task, write });
      const rt = { ctx, log, task, signal: new AbortController().signal };
      return runPipelineTask(rt, resolveJobInput({}, call.env), call.env).then(
        (summary) => summary.exitCode,
        (err: unknown) => (err as { exitCode?: number }).exitCode ?? 1,
      );
    },
    { env: 'cloud' },
  );
  return exitCode === 0 ? { succeeded: 1 } : { failed: 1, message: `exit ${exitCode}` };
}

const cloud = <R>(work: (ctx: TestContext) => Promise<R>) => withContext(root, work, { env: 'cloud' });
const remoteRun = (onLog?: (entry: RunLogEntry) => void) =>
  cloud((ctx) =>
    startRemoteRun(ctx, { tenantId: demo.tenantId, pipelineId: demo.pipelineId, wait: true, pollMs: 10, ...(onLog ? { onLog } : {}) }),
  );
const messages = (entries: RunLogEntry[] | null) => (entries ?? []).map((entry) => entry.message);

describe('pipeline logs on a cloud environment', () => {
  let runId: string;
  before(async () => {
    const result = await remoteRun();
    assert.equal(result.exitCode, 0, result.run?.errorMessage ?? '');
    runId = result.runId;
  });

  it("shows the step table and the entries of that run's execution only, oldest first, plain-text lines included", async () => {
    const view = await cloud((ctx) => readRunLogs(ctx, runId));
    assert.equal(view.run.status, 'COMPLETE');
    assert.ok(view.steps.length > 0);
    const texts = messages(view.entries);
    assert.equal(texts[0], 'a plain line on stderr, token=[REDACTED]', texts.join('\n'));
    assert.ok(texts[1]?.startsWith(`starting run ${runId}`), texts.join('\n'));
    assert.ok(texts.at(-1)?.startsWith(`run ${runId} COMPLETE`), texts.join('\n'));
    assert.ok(!texts.some((text) => text.includes('other run')), 'the other run stays out');
    assert.ok(
      fakes.logging.entries().some((entry) => entry.labels['run_id'] === OTHER_RUN),
      'the other run did log meanwhile',
    );
    for (const entry of view.entries!) assert.ok([runId, undefined].includes(entry.labels['run_id']), entry.message);
    const times = view.entries!.map((entry) => entry.timestamp.getTime());
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
    assert.equal(view.truncated, false);
    // The labels Run adds name the execution the run row recorded.
    assert.equal(view.entries![0]!.labels['run.googleapis.com/execution_name'], view.run.executionName);
  });

  it('keeps the newest --limit entries and those at or above --severity', async () => {
    const all = (await cloud((ctx) => readRunLogs(ctx, runId))).entries!;
    const last2 = await cloud((ctx) => readRunLogs(ctx, runId, { limit: 2 }));
    assert.deepEqual(messages(last2.entries), messages(all.slice(-2)));
    assert.equal(last2.truncated, true);
    const warnings = await cloud((ctx) => readRunLogs(ctx, runId, { severity: 'warning' }));
    assert.ok(warnings.entries!.length < all.length);
    for (const entry of warnings.entries!) assert.ok(['WARNING', 'ERROR'].includes(entry.severity), entry.severity);
  });

  it('pages through more entries than one page holds', async () => {
    const many = randomUUID();
    for (let i = 0; i < 1_205; i += 1) {
      const line = JSON.stringify({ severity: 'INFO', message: `line ${i}`, 'logging.googleapis.com/labels': { run_id: many } });
      fakes.logging.containerLine(line, {
        project: CLOUD_PROJECT,
        location: 'us-central1',
        job: JOB,
        execution: `${JOB}-many`,
        taskIndex: 0,
        stream: 'stdout',
      });
    }
    await cloud((ctx) =>
      createRun(ctx, {
        runId: many,
        tenantId: demo.tenantId,
        pipelineId: demo.pipelineId,
        trigger: 'remote',
        runDate: '2025-01-31',
        parameters: {},
        timeoutAt: new Date(Date.now() + 3_600_000),
      }),
    );
    const calls = fakes.grpc.calls('ListLogEntries').length;
    const view = await cloud((ctx) => readRunLogs(ctx, many, { limit: 1_100 }));
    assert.equal(view.entries!.length, 1_100);
    assert.equal(view.entries!.at(-1)!.message, 'line 1204');
    assert.equal(view.entries![0]!.message, 'line 105');
    assert.equal(view.truncated, true);
    assert.equal(fakes.grpc.calls('ListLogEntries').length - calls, 2, 'two pages');
  });

  it('needs logging.logEntries.list: exit 7 naming roles/logging.viewer', async () => {
    fakes.logging.granted.delete('logging.logEntries.list');
    try {
      const err = await rejectsWith(
        cloud((ctx) => readRunLogs(ctx, runId)),
        7,
        /permission denied on the Cloud Logging entries of project demo-project/,
      );
      assert.match(err.suggestion ?? '', /roles\/logging\.viewer/);
    } finally {
      fakes.logging.granted.add('logging.logEntries.list');
    }
  });

  it('refuses a run id that is not a uuid, a severity it does not know and a limit out of range (exit 2) before any request', async () => {
    const calls = fakes.grpc.calls().length;
    const requests = fakes.bigquery.requests.length;
    await rejectsWith(
      cloud((ctx) => readRunLogs(ctx, `${runId}" OR labels.run_id!="`)),
      2,
      /invalid run id/,
    );
    await rejectsWith(
      cloud((ctx) => followRunLogs(ctx, 'latest', { onEntry: () => undefined })),
      2,
      /invalid run id/,
    );
    await rejectsWith(
      cloud((ctx) => readRunLogs(ctx, runId, { severity: 'LOUD' })),
      2,
      /unknown severity "LOUD"/,
    );
    await rejectsWith(
      cloud((ctx) => readRunLogs(ctx, runId, { limit: 0 })),
      2,
      /--limit must be/,
    );
    assert.equal(fakes.grpc.calls().length, calls, 'no Google call was made');
    assert.equal(fakes.bigquery.requests.length, requests, 'no BigQuery request either');
  });
});

describe('pipeline logs --follow', () => {
  it('prints the lines as they arrive and ends when the run ends, after a last look', async () => {
    let started!: (runId: string) => void;
    const startedRun = new Promise<string>((resolve) => (started = resolve));
    let proceed!: () => void;
    gate = { started, proceed: new Promise<void>((resolve) => (proceed = resolve)) };
    try {
      const running = cloud((ctx) => startRemoteRun(ctx, { tenantId: demo.tenantId, pipelineId: demo.pipelineId, wait: false }));
      const runId = await startedRun;
      const seen: RunLogEntry[] = [];
      let ended = false;
      const following = cloud((ctx) =>
        followRunLogs(ctx, runId, { pollMs: 20, lastLinesMs: 300, onEntry: (entry) => seen.push(entry) }),
      ).finally(() => (ended = true));
      for (let waited = 0; !seen.some((entry) => entry.message === 'container up'); waited += 20) {
        assert.ok(waited < 20_000, 'the first line arrives while the run is pending');
        await sleep(20);
      }
      await sleep(100);
      assert.equal(ended, false, 'the follow goes on while the run has not ended');
      proceed();
      await running;
      const view = await following;
      assert.equal(view.run.status, 'COMPLETE');
      const texts = messages(seen);
      assert.equal(texts[0], 'container up');
      assert.ok(texts.at(-1)?.startsWith(`run ${runId} COMPLETE`), texts.join('\n'));
      assert.equal(new Set(seen.map((entry) => entry.insertId)).size, seen.length, 'each entry once');
      assert.deepEqual(messages(view.entries), texts);
      assert.ok(!texts.some((text) => text.includes('other run')));
    } finally {
      gate = undefined;
    }
  });

  it('on the local environment there is nothing to follow: the run as recorded, with a warning', async () => {
    const runId = randomUUID();
    const view = await withContext(
      root,
      async (ctx) => {
        await bootstrap(ctx);
        await createRun(ctx, {
          runId,
          tenantId: demo.tenantId,
          pipelineId: demo.pipelineId,
          trigger: 'manual',
          runDate: '2025-01-31',
          parameters: {},
          timeoutAt: new Date(Date.now() + 3_600_000),
        });
        const followed = await followRunLogs(ctx, runId, { onEntry: () => assert.fail('no entries on local') });
        assert.match(ctx.warnings.join('\n'), /has no Cloud Logging to follow/);
        return followed;
      },
      { env: 'local' },
    );
    assert.equal(view.entries, null);
    assert.equal(view.run.runId, runId);
  });
});

describe('pipeline run --remote --wait', () => {
  it("streams the execution's lines while it waits, each once and only its own", async () => {
    const streamed: RunLogEntry[] = [];
    const result = await remoteRun((entry) => streamed.push(entry));
    assert.equal(result.exitCode, 0);
    const texts = messages(streamed);
    assert.ok(texts[1]?.startsWith(`starting run ${result.runId}`), texts.join('\n'));
    assert.equal(texts[0], 'a plain line on stderr, token=[REDACTED]');
    assert.ok(texts.at(-1)?.startsWith(`run ${result.runId} COMPLETE`), texts.join('\n'));
    assert.equal(new Set(streamed.map((entry) => entry.insertId)).size, streamed.length);
    assert.ok(!texts.some((text) => text.includes('other run')));
  });

  it('goes on waiting without the lines when they cannot be read, with one warning', async () => {
    fakes.logging.granted.delete('logging.logEntries.list');
    try {
      const warnings: string[] = [];
      const result = await cloud(async (ctx) => {
        const outcome = await startRemoteRun(ctx, {
          tenantId: demo.tenantId,
          pipelineId: demo.pipelineId,
          wait: true,
          pollMs: 10,
          onLog: () => assert.fail('no entry can be read'),
        });
        warnings.push(...ctx.warnings);
        return outcome;
      });
      assert.equal(result.exitCode, 0);
      assert.equal(result.run?.status, 'COMPLETE');
      const about = warnings.filter((warning) => warning.includes("could not read the run's Cloud Logging entries"));
      assert.equal(about.length, 1, warnings.join('\n'));
      assert.match(about[0]!, /roles\/logging\.viewer/);
    } finally {
      fakes.logging.granted.add('logging.logEntries.list');
    }
  });
});
