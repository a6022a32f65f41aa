/**
 * `convergence serve` as an operator runs it: a workspace made with the CLI, a tenant and a key
 * minted with the CLI, a run triggered over HTTP on a real socket and polled to COMPLETE, and a
 * SIGTERM that ends the process cleanly, recording a run still in flight as CANCELLED.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, runJson, show, startServe } from '../helpers/cli.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';
import { heldPipeline, waitFor } from './helpers.ts';

after(cleanupAll);

async function cli(args: string[], cwd: string) {
  const r = await runJson(args, { cwd });
  assert.equal(r.exitCode, 0, `${args.join(' ')}\n${show(r)}`);
  return r.envelope.result as Record<string, unknown>;
}

describe('convergence serve end to end', () => {
  let ws: string;
  let apiKey: string;
  before(async () => {
    const base = await makeTempDir('serve');
    const init = await runCli(['init', 'ws', '--example'], { cwd: base });
    assert.equal(init.exitCode, 0, show(init));
    ws = path.join(base, 'ws');
    await cli(['bootstrap'], ws);
    await cli(['tenant', 'create', 'acme_corp', '--name', 'ACME Corp', '--plan', 'starter'], ws);
    apiKey = String((await cli(['keys', 'create', '--tenant', 'acme_corp'], ws)).apiKey);
  });

  it('triggers a run over HTTP with a CLI-minted key and polls it to COMPLETE', async () => {
    const server = await startServe(ws);
    try {
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { service: string }).service, 'convergence-data-pipeline');

      const started = await fetch(`${server.url}/api/v1/pipelines/run/p_usage_daily`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ trigger_by: 'e2e' }),
      });
      const body = (await started.json()) as { pipeline_logging_id: string; status: string };
      assert.equal(started.status, 202, JSON.stringify(body));

      let status = body.status;
      await waitFor(
        async () => {
          const res = await fetch(`${server.url}/api/v1/pipelines/runs/${body.pipeline_logging_id}`, { headers: { 'x-api-key': apiKey } });
          assert.equal(res.status, 200);
          status = ((await res.json()) as { status: string }).status;
          return status !== 'PENDING' && status !== 'RUNNING';
        },
        'the run to finish',
        120_000,
        // A client's pace: the starter plan allows 60 requests a minute.
        500,
      );
      assert.equal(status, 'COMPLETE');

      // The CLI sees the same run, triggered by the API.
      const cliStatus = await cli(['pipeline', 'status', body.pipeline_logging_id], ws);
      assert.equal((cliStatus.run as { trigger: string }).trigger, 'api');
      assert.equal((await fetch(`${server.url}/api/v1/pipelines/runs`, { headers: { 'x-api-key': 'acme_corp_api_nope' } })).status, 401);
    } finally {
      const stopped = await server.stop();
      assert.equal(stopped.exitCode, 0, show(stopped));
      assert.ok(!stopped.all.includes(apiKey), 'the key never reaches the output');
    }
  });

  it('on SIGTERM finishes in-flight work and records a running run CANCELLED, then exits 0', async () => {
    const held = await heldPipeline(ws);
    const server = await startServe(ws, ['--json']);
    try {
      const started = await fetch(`${server.url}/api/v1/pipelines/run/p_held`, { method: 'POST', headers: { 'x-api-key': apiKey } });
      const { pipeline_logging_id: runId } = (await started.json()) as { pipeline_logging_id: string };
      assert.equal(started.status, 202);
      await waitFor(() => held.api.requests.length > 0, 'the run to call its API');
      const stopped = await server.stop('SIGTERM');
      assert.equal(stopped.exitCode, 0, show(stopped));
      const envelope = JSON.parse(stopped.stdout) as { result: { runsStopped: number; runsUnfinished: number } };
      assert.deepEqual([envelope.result.runsStopped, envelope.result.runsUnfinished], [1, 0]);
      const run = await cli(['pipeline', 'status', runId], ws);
      assert.equal((run.run as { status: string }).status, 'CANCELLED');
      // The lock went with it: the pipeline can run again at once.
      held.release();
      const again = await runJson(['pipeline', 'run', 'p_held', '--tenant', 'acme_corp'], { cwd: ws });
      assert.equal(again.exitCode, 0, show(again));
    } finally {
      held.release();
      await held.api.close();
    }
  });
});
