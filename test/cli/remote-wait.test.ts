/**
 * `pipeline run --remote --wait` when Cloud Run fails the execution before its container begins
 * the run (an image that cannot be pulled): the operator reads Cloud Run's reason, not only FAILED.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RemoteRunResult } from '../../src/services/pipelines/remote.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { cloudDemoWorkspace, type CloudDemo } from '../helpers/cloud-workspace.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const REASON = 'The execution failed: the container image could not be pulled.';
let demo: CloudDemo;

before(async () => {
  demo = await cloudDemoWorkspace('remote-wait');
  // Run marks the Completed condition failed with its reason; no task is counted failed.
  demo.fakes.run.onRunJob(() => ({ failedBeforeAnyTask: true, message: REASON, polls: 1 }));
});
after(async () => {
  await demo?.fakes.stop();
  await cleanupAll();
});

const args = () => ['pipeline', 'run', demo.pipelineId, '--tenant', demo.tenantId, '--env', 'cloud', '--remote', '--wait'];

describe('pipeline run --remote --wait on a failed execution', () => {
  it("prints Cloud Run's reason and ends with it (exit 3)", async () => {
    const r = await runCli(args(), { cwd: demo.root, env: demo.fakes.vars });
    assert.equal(r.exitCode, 3, show(r));
    assert.match(r.stdout, /^Run \S+: execution \S+ of job \S+ FAILED \(config \w+\)\.$/m, show(r));
    assert.ok(r.stdout.includes(`Cloud Run: ${REASON}\n`), show(r));
    assert.ok(r.stderr.includes(`ended FAILED: its Cloud Run execution ended (FAILED: ${REASON}) before the run began`), show(r));
  });

  it('--json carries the reason on the remote result and in the error', async () => {
    const r = await runJson<never>(args(), { cwd: demo.root, env: demo.fakes.vars });
    assert.equal(r.exitCode, 3, show(r));
    assert.equal(r.envelope.status, 3);
    assert.ok(r.envelope.error?.message.includes(REASON), show(r));
    const remote = (r.envelope.error?.data as { remote: RemoteRunResult }).remote;
    assert.equal(remote.state, 'FAILED');
    assert.equal(remote.message, REASON);
    assert.equal(remote.run?.status, 'FAILED');
  });
});
