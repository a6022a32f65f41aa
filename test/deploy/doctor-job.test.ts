/** doctor --env <cloud> compares the pipeline job's image with the serving revision's. */
import '../fakes/env-guard.ts';
import { JobsClient } from '@google-cloud/run';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { planDeploy, runDeploy } from '../../src/services/deploy/deploy.ts';
import { runDoctor } from '../../src/services/doctor/index.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { fakeClientOptions } from '../fakes/grpc/client-options.ts';

const JOB_NAME = `projects/${CLOUD_PROJECT}/locations/us-central1/jobs/convergence-pipelines`;
const IMAGE = 'us-docker.pkg.dev/demo-project/convergence/convergence';

let fakes: CloudFakes;
let health: FakeApi;
let root: string;
let previousProbeUrl: string | undefined;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  health = await startFakeApi(() => ({ body: { ok: true } }));
  previousProbeUrl = process.env.CONVERGENCE_PROBE_URL;
  process.env.CONVERGENCE_PROBE_URL = health.base;
  root = await newWorkspace('doctor-job');
  // public: the probes need no ID token, so no credentials are involved here.
  await appendFile(path.join(root, 'convergence.yaml'), `${fakes.yaml('cloud')}    job: convergence-pipelines\n    public: true\n`);
});
after(async () => {
  if (previousProbeUrl === undefined) delete process.env.CONVERGENCE_PROBE_URL;
  else process.env.CONVERGENCE_PROBE_URL = previousProbeUrl;
  await health.close();
  await fakes.stop();
  await cleanupAll();
});

const jobCheck = async () => (await runDoctor(root, 'cloud')).checks.find((c) => c.name === 'cloud run job');

/** Puts the job on another image behind deploy's back, as `gcloud run jobs update --image` would. */
async function setJobImage(image: string) {
  const jobs = new JobsClient(fakeClientOptions(fakes.grpc.port));
  try {
    const [job] = await jobs.getJob({ name: JOB_NAME });
    job.template!.template!.containers![0]!.image = image;
    const [operation] = await jobs.updateJob({ job });
    await operation.promise();
  } finally {
    await jobs.close();
  }
}

describe('doctor: the pipeline job follows the service', () => {
  it('warns while the job does not exist', async () => {
    const check = await jobCheck();
    assert.equal(check?.status, 'warn');
    assert.match(check!.detail, /does not exist/);
  });

  it('passes after a deploy, and warns with the fix once the job runs another image', async () => {
    const image = `${IMAGE}:7`;
    await withContext(root, (ctx) => runDeploy(ctx, planDeploy(ctx, { canary: false, image, dryRun: false })), { env: 'cloud' });
    const passing = await jobCheck();
    assert.equal(passing?.status, 'pass', passing?.detail);
    assert.match(passing!.detail, /:7/);

    await setJobImage(`${IMAGE}:6`);
    const drifted = await jobCheck();
    assert.equal(drifted?.status, 'warn');
    assert.match(drifted!.detail, /runs .*:6, but the serving revision .* runs .*:7/);
    assert.match(drifted!.fix ?? '', /convergence deploy --env cloud/);
  });
});
