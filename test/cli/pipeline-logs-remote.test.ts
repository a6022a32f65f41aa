/**
 * `pipeline logs <run_id> --env cloud` and `pipeline run --remote --wait` against the cloud fakes:
 * the Run fake plays the job's container in this process and forwards every line it writes to
 * the Logging fake, as Cloud Run does, while another execution of the job logs for another run.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { RunLogsView } from '../../src/services/runs/remote-logs.ts';
import { startRemoteRun } from '../../src/services/pipelines/remote.ts';
import { cloudRunTask, JobLogger } from '../../src/job/logger.ts';
import { resolveJobInput, runPipelineTask } from '../../src/job/tasks.ts';
import { runCli, runJson, show, spawnCli } from '../helpers/cli.ts';
import { CLOUD_JOB as JOB, cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_PROJECT } from '../fakes/cloud.ts';
import type { RunJobCall, RunJobOutcome } from '../fakes/grpc/run-jobs.ts';

const OTHER_RUN = randomUUID();
let demo: CloudDemo;
/** Set by a test to hold the container after its first line until the test lets it go on. */
let gate: { started(runId: string): void; proceed: Promise<void> } | undefined;

before(async () => {
  demo = await cloudDemoWorkspace('logs-remote');
  demo.fakes.run.setExecutionPolls(2);
  demo.fakes.run.onRunJob(playContainer);
});
after(async () => {
  await demo?.fakes.stop();
  await cleanupAll();
});

/** The job's container, `job run-pipeline` in process; its lines go to Run's log forwarding, beside another run's. */
async function playContainer(call: RunJobCall): Promise<RunJobOutcome> {
  const task = cloudRunTask({ CLOUD_RUN_JOB: JOB, CLOUD_RUN_EXECUTION: call.execution.split('/').at(-1) });
  const write = (line: string) => {
    call.output(line);
    const other = { severity: 'ERROR', message: 'a line of the other run', 'logging.googleapis.com/labels': { run_id: OTHER_RUN } };
    const source = { project: CLOUD_PROJECT, location: 'us-central1', job: JOB, execution: `${JOB}-other`, taskIndex: 0 };
    demo.fakes.logging.containerLine(JSON.stringify(other), { ...source, stream: 'stdout' });
  };
  if (gate) {
    new JobLogger({ task, write, labels: { run_id: call.env['CONVERGENCE_RUN_ID']! } }).info('container up');
    gate.started(call.env['CONVERGENCE_RUN_ID']!);
    await gate.proceed;
  }
  const exitCode = await withContext(
    demo.root,
    async (ctx) => {
      const rt = { ctx, log: new JobLogger({ task, write }), task, signal: new AbortController().signal };
      return runPipelineTask(rt, resolveJobInput({}, call.env), call.env).then(
        (summary) => summary.exitCode,
        (err: unknown) => (err as { exitCode?: number }).exitCode ?? 1,
      );
    },
    { env: 'cloud' },
  );
  return exitCode === 0 ? { succeeded: 1 } : { failed: 1, message: `exit ${exitCode}` };
}

const cli = (args: string[]) => runCli([...args, '--env', 'cloud'], { cwd: demo.root, env: demo.fakes.vars });
const json = <R>(args: string[]) => runJson<R>([...args, '--env', 'cloud'], { cwd: demo.root, env: demo.fakes.vars });
const LINE = (severity: string, text: string) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${severity} +${text}`, 'm');

describe('pipeline run --remote --wait, then pipeline logs --env cloud', () => {
  let runId: string;

  it("streams the execution's lines on stderr while it waits; stdout keeps to the result", async () => {
    const r = await cli(['pipeline', 'run', demo.pipelineId, '--tenant', demo.tenantId, '--remote', '--wait']);
    assert.equal(r.exitCode, 0, show(r));
    runId = /^Run (\S+): execution/m.exec(r.stdout)![1]!;
    assert.match(r.stderr, LINE('INFO', `starting run ${runId}`), show(r));
    assert.match(r.stderr, LINE('INFO', `run ${runId} COMPLETE`), show(r));
    assert.ok(!r.all.includes('a line of the other run'), show(r));
    assert.ok(!r.stdout.includes('starting run'), 'log lines stay off stdout');
  });

  it('--json: one envelope on stdout, the lines on stderr', async () => {
    const r = await json<{ runId: string; exitCode: number }>([
      'pipeline',
      'run',
      demo.pipelineId,
      '--tenant',
      demo.tenantId,
      '--remote',
      '--wait',
    ]);
    assert.equal(r.exitCode, 0, show(r));
    assert.equal(r.envelope.result?.exitCode, 0);
    assert.match(r.stderr, LINE('INFO', `starting run ${r.envelope.result?.runId}`), show(r));
  });

  it('pipeline logs shows the step table, then the Cloud Logging lines of that run only', async () => {
    const r = await cli(['pipeline', 'logs', runId]);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, new RegExp(`^Run ${runId} \\(${demo.tenantId}/${demo.pipelineId}\\): COMPLETE`, 'm'), show(r));
    const table = r.stdout.indexOf('ROWS IN');
    const logs = r.stdout.indexOf('Cloud Logging (');
    assert.ok(table > 0 && logs > table, show(r));
    assert.match(r.stdout, LINE('INFO', `starting run ${runId}`));
    assert.match(r.stdout, LINE('WARNING', 'check_usage: data quality warning'));
    assert.ok(!r.all.includes('a line of the other run'), show(r));
  });

  it('--json carries the entries, --severity and --limit narrow them', async () => {
    const all = await json<RunLogsView>(['pipeline', 'logs', runId]);
    assert.equal(all.exitCode, 0, show(all));
    const entries = all.envelope.result!.entries!;
    assert.ok(entries.length > 5);
    assert.equal(all.envelope.result!.run.runId, runId);
    const warnings = await json<RunLogsView>(['pipeline', 'logs', runId, '--severity', 'warning', '--limit', '1']);
    assert.equal(warnings.exitCode, 0, show(warnings));
    assert.equal(warnings.envelope.result!.entries!.length, 1);
    assert.equal(warnings.envelope.result!.entries![0]!.severity, 'WARNING');
    assert.equal(warnings.envelope.result!.truncated, true);
  });

  it("shows a line's terminal escape sequences (tenant data in a message) as text, never sends them to the terminal", async () => {
    const { envelope } = await json<RunLogsView>(['pipeline', 'logs', runId]);
    const execution = envelope.result!.run.executionName!;
    const message = 'bad value \u001b[2J\u001b]0;owned\u0007 in row 7\r';
    demo.fakes.logging.containerLine(JSON.stringify({ severity: 'ERROR', message }), {
      project: CLOUD_PROJECT,
      location: 'us-central1',
      job: JOB,
      execution,
      taskIndex: 0,
      stream: 'stdout',
    });
    const r = await cli(['pipeline', 'logs', runId]);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, LINE('ERROR', 'bad value \\?\\[2J\\?\\]0;owned\\? in row 7\\?'));
    // eslint-disable-next-line no-control-regex -- control characters are what must not be printed
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(r.stdout), 'no control character reaches the terminal');
    // --json carries the message as logged: JSON escapes it.
    const again = await json<RunLogsView>(['pipeline', 'logs', runId]);
    assert.ok(again.envelope.result!.entries!.some((entry) => entry.message === message));
  });

  it('refuses a run id that is not a uuid, an unknown severity and --limit with --follow (exit 2) before any request', async () => {
    const calls = demo.fakes.grpc.calls().length;
    const badId = await cli(['pipeline', 'logs', 'x" OR labels.run_id!="y']);
    assert.equal(badId.exitCode, 2, show(badId));
    assert.match(badId.stderr, /invalid run id/);
    const badSeverity = await cli(['pipeline', 'logs', runId, '--severity', 'loud']);
    assert.equal(badSeverity.exitCode, 2, show(badSeverity));
    assert.match(badSeverity.stderr, /unknown severity "loud"/);
    const followLimit = await cli(['pipeline', 'logs', runId, '--follow', '--limit', '5']);
    assert.equal(followLimit.exitCode, 2, show(followLimit));
    assert.match(followLimit.stderr, /cannot also be provided when using --limit/);
    assert.equal(demo.fakes.grpc.calls().length, calls, 'no Google call was made');
  });

  it('without roles/logging.viewer: exit 7 with the grant to ask for', async () => {
    demo.fakes.logging.granted.delete('logging.logEntries.list');
    try {
      const r = await cli(['pipeline', 'logs', runId]);
      assert.equal(r.exitCode, 7, show(r));
      assert.match(r.stderr, /permission denied on the Cloud Logging entries of project demo-project/);
      assert.match(r.stderr, /roles\/logging\.viewer/);
    } finally {
      demo.fakes.logging.granted.add('logging.logEntries.list');
    }
  });
});

describe('pipeline logs --follow --env cloud', () => {
  it('prints the lines as they arrive and exits when the run ends', async () => {
    let started!: (runId: string) => void;
    const startedRun = new Promise<string>((resolve) => (started = resolve));
    let proceed!: () => void;
    gate = { started, proceed: new Promise<void>((resolve) => (proceed = resolve)) };
    try {
      const running = withContext(
        demo.root,
        (ctx) => startRemoteRun(ctx, { tenantId: demo.tenantId, pipelineId: demo.pipelineId, wait: false }),
        { env: 'cloud' },
      );
      const runId = await startedRun;
      const child = spawnCli(['pipeline', 'logs', runId, '--follow', '--env', 'cloud'], { cwd: demo.root, env: demo.fakes.vars });
      let stdout = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('container up')) resolve();
        });
        void child.then((r) => reject(new Error(`follow ended before the run did\n${String(r.stdout)}\n${String(r.stderr)}`)));
      });
      assert.equal(child.exitCode, null, 'still following while the run is pending');
      proceed();
      await running;
      const r = await child;
      assert.equal(r.exitCode, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
      const out = String(r.stdout);
      assert.match(out, LINE('INFO', `run ${runId} COMPLETE`));
      // The lines first, as they came; the step table of the ended run after them.
      assert.ok(out.indexOf('container up') < out.indexOf(`Run ${runId} (`), out);
      assert.match(out, new RegExp(`^Run ${runId} \\(\\S+\\): COMPLETE`, 'm'));
      assert.equal(out.split('\n').filter((line) => line.includes(`run ${runId} COMPLETE`)).length, 1, 'each line once');
    } finally {
      gate = undefined;
    }
  });
});
