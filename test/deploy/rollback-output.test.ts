/**
 * `convergence rollback` as an operator reads it: besides the traffic, the pipeline job put back
 * on the restored revision's image, printed as deploy prints its job (current → wanted).
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { planDeploy, runDeploy } from '../../src/services/deploy/deploy.ts';
import { listRevisions, type RollbackResult } from '../../src/services/deploy/rollback.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const IMAGE = 'us-docker.pkg.dev/demo-project/convergence/convergence';
const JOB = 'convergence-pipelines';

let fakes: CloudFakes;
let health: FakeApi;
let root: string;
let previousProbeUrl: string | undefined;
/** What the CLI runs with: the fakes' endpoints and the health endpoint the probes go to. */
let cliEnv: Record<string, string>;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  health = await startFakeApi(() => ({ body: { ok: true } }));
  previousProbeUrl = process.env.CONVERGENCE_PROBE_URL;
  process.env.CONVERGENCE_PROBE_URL = health.base;
  cliEnv = { ...fakes.vars, CONVERGENCE_PROBE_URL: health.base };
  root = await newWorkspace('rollback-output');
  // public: the probes need no ID token, so no credentials are involved here.
  await appendFile(path.join(root, 'convergence.yaml'), `${fakes.yaml('cloud')}    job: ${JOB}\n    public: true\n`);
  await withContext(root, (ctx) => bootstrap(ctx), { env: 'cloud' });
  for (const tag of ['1', '2']) {
    await withContext(root, (ctx) => runDeploy(ctx, planDeploy(ctx, { canary: false, image: `${IMAGE}:${tag}`, dryRun: false })), {
      env: 'cloud',
    });
  }
});
after(async () => {
  if (previousProbeUrl === undefined) delete process.env.CONVERGENCE_PROBE_URL;
  else process.env.CONVERGENCE_PROBE_URL = previousProbeUrl;
  await health.close();
  await fakes.stop();
  await cleanupAll();
});

describe('rollback prints the job change', () => {
  it('a dry run shows the image the job would go back to', async () => {
    const r = await runCli(['rollback', '--env', 'cloud', '--dry-run'], { cwd: root, env: cliEnv });
    assert.equal(r.exitCode, 0, show(r));
    assert.doesNotMatch(r.stderr, /Warning/, show(r));
    assert.match(r.stdout, /^Would route 100% of \S+ to \S+ \(was \S+\)$/m, show(r));
    assert.match(r.stdout, new RegExp(`^Job ${JOB}:\\n {4}image: ${IMAGE}:2 → ${IMAGE}:1$`, 'm'), show(r));
  });

  it('a rollback shows the image the job went back to, and --json carries the same change', async () => {
    const r = await runCli(['rollback', '--env', 'cloud'], { cwd: root, env: cliEnv });
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, new RegExp(`^Job ${JOB}:\\n {4}image: ${IMAGE}:2 → ${IMAGE}:1$`, 'm'), show(r));

    // Back to the newer revision: the job follows again, and the envelope says so.
    const revisions = await withContext(root, (ctx) => listRevisions(ctx), { env: 'cloud' });
    const newer = revisions.find((revision) => revision.image === `${IMAGE}:2`)!.revision;
    const back = await runJson<RollbackResult>(['rollback', '--env', 'cloud', '--to', newer], { cwd: root, env: cliEnv });
    assert.equal(back.exitCode, 0, show(back));
    assert.deepEqual(back.envelope.result?.job, {
      job: JOB,
      existed: true,
      changes: [{ setting: 'image', current: `${IMAGE}:1`, wanted: `${IMAGE}:2` }],
    });
  });
});
