/**
 * deploy against the Cloud Run fakes: canary to 100%, automatic rollback, etag retry, first
 * deploy, dry run. The service is private: its health endpoints sit behind the Run fake's HTTP
 * front, which lets a probe through only with an ID token for the service's URL (minted from a
 * service-account key of the OAuth fake).
 */
import '../fakes/env-guard.ts';
import { JobsClient, ServicesClient } from '@google-cloud/run';
import assert from 'node:assert/strict';
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { cloudEnv } from '../../src/backends/factory.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { planDeploy, runDeploy, type DeployEvent, type DeployRequest } from '../../src/services/deploy/deploy.ts';
import { followWithJob } from '../../src/services/deploy/job.ts';
import { ProbeIdentity } from '../../src/services/deploy/probe-auth.ts';
import { probeOnce } from '../../src/services/deploy/probe.ts';
import { listRevisions, rollback } from '../../src/services/deploy/rollback.ts';
import { CLOUD_PROJECT, CLOUD_SERVICE, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { startRunFront, type RunFront } from '../fakes/grpc/run-front.ts';
import { OAuthFake } from '../fakes/oauth.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { fakeClientOptions } from '../fakes/grpc/client-options.ts';

const LOCATION = `projects/${CLOUD_PROJECT}/locations/us-central1`;
const SERVICE_NAME = `${LOCATION}/services/${CLOUD_SERVICE}`;
const JOB_NAME = `${LOCATION}/jobs/convergence-pipelines`;
const DEPLOYER = `deployer@${CLOUD_PROJECT}.iam.gserviceaccount.com`;
const RUNTIME = `convergence-api@${CLOUD_PROJECT}.iam.gserviceaccount.com`;
const IMAGE = 'us-docker.pkg.dev/demo-project/convergence/convergence';

let fakes: CloudFakes;
let root: string;
let oauth: OAuthFake;
/** The deployer's service-account key, issued by the OAuth fake: what probes mint ID tokens from. */
let deployerKey: string;
/** The services' URLs: the Run fake's HTTP front, in front of the revisions' /health. */
let front: RunFront;
/** Who each probe that got through called as (the ID token's email). */
const callers: Array<string | undefined> = [];
/** Revisions whose health endpoint answers 500, and when the first such answer went out. */
const failing = new Set<string>();
let firstFailureAt: number | undefined;
const probed: string[] = [];
const saved: Record<string, string | undefined> = {};

function setEnv(name: string, value: string | undefined) {
  if (!(name in saved)) saved[name] = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

before(async () => {
  fakes = await startCloudFakes();
  for (const [k, v] of Object.entries(fakes.vars)) setEnv(k, v);
  oauth = await OAuthFake.start();
  front = await startRunFront({
    run: fakes.run,
    location: LOCATION,
    verifyIdToken: (token, audience) => oauth.verifyIdToken(token, audience),
    app: ({ revision, path: rest, caller }) => {
      probed.push(`${revision} ${rest}`);
      callers.push(caller);
      if (rest !== '/health') return { status: 404 };
      if (revision && failing.has(revision)) {
        firstFailureAt ??= Date.now();
        return { status: 500, body: 'boom' };
      }
      return { body: { ok: true } };
    },
  });
  setEnv('CONVERGENCE_PROBE_URL', `${front.base}/{service}/{revision}`);
  root = await newWorkspace('deploy');
  deployerKey = await oauth.writeKeyFile(root, DEPLOYER);
  setEnv('GOOGLE_APPLICATION_CREDENTIALS', deployerKey);
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
  await appendFile(
    path.join(root, 'convergence.yaml'),
    [
      '    job: convergence-pipelines',
      `    service_account: ${RUNTIME}`,
      '    cpu: "2"',
      '    memory: 1Gi',
      '    min_instances: 0',
      '    max_instances: 5',
      '    concurrency: 40',
      '    timeout: 120s',
      '    ingress: internal-and-cloud-load-balancing',
      '    task_timeout: 2h',
      '    max_retries: 1',
      '    notifications: [{ type: pubsub, topic: deploy-events, events: [deploy_rolled_back] }]',
      '  public:',
      `    project: ${CLOUD_PROJECT}`,
      '    region: us-central1',
      '    service: convergence-api-public',
      '    public: true',
      '',
    ].join('\n'),
  );
  await appendFile(
    path.join(root, 'convergence.yaml'),
    [
      '  longname:',
      `    project: ${CLOUD_PROJECT}`,
      '    region: us-central1',
      '    service: convergence-api-with-a-rather-long-name',
      '',
    ].join('\n'),
  );
  fakes.pubsub.createTopic(CLOUD_PROJECT, 'deploy-events');
  await withContext(root, (ctx) => bootstrap(ctx), { env: 'cloud' });
});
after(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await front.close();
  await oauth.stop();
  await fakes.stop();
  await cleanupAll();
});
beforeEach(() => {
  failing.clear();
  firstFailureAt = undefined;
});

const request = (extra: Partial<DeployRequest> = {}): DeployRequest => ({
  canary: true,
  image: `${IMAGE}:${Math.random().toString(36).slice(2, 8)}`,
  steps: [25, 50, 100],
  interval: '300ms',
  dryRun: false,
  ...extra,
});

async function deploy(extra: Partial<DeployRequest> = {}, onEvent?: (e: DeployEvent) => void, env = 'cloud') {
  return withContext(
    root,
    async (ctx) => {
      const plan = planDeploy(ctx, request(extra));
      return { plan, result: await runDeploy(ctx, plan, onEvent ? { onEvent } : {}), warnings: ctx.warnings };
    },
    { env },
  );
}

const serviceTraffic = () =>
  ((fakes.run.service(SERVICE_NAME)?.traffic as Array<Record<string, unknown>>) ?? []).map((t) => ({
    revision: String(t.revision),
    percent: Number(t.percent),
    ...(t.tag ? { tag: String(t.tag) } : {}),
  }));

/** Args and literal env of a revision's container, as Run stores them. */
function containerOf(revision: string | undefined) {
  const found = fakes.run.revisions(SERVICE_NAME).find((r) => String(r.name).endsWith(`/revisions/${revision}`));
  assert.ok(found, `revision ${revision} exists`);
  const [container] = found.containers as Array<{ args?: string[]; env?: Array<{ name: string; value?: string }> }>;
  return { args: container?.args ?? [], env: Object.fromEntries((container?.env ?? []).map((v) => [v.name, v.value])) };
}

/** Changes the service's container as an operator would outside deploy (gcloud run services update). */
async function editServiceContainer(edit: (container: Record<string, unknown>) => void) {
  const client = new ServicesClient(fakeClientOptions(fakes.grpc.port));
  try {
    const [service] = await client.getService({ name: SERVICE_NAME });
    const template = { ...(service.template as Record<string, unknown>) };
    delete template.revision;
    const containers = (template.containers as Array<Record<string, unknown>>).map((c) => ({ ...c }));
    edit(containers[0]!);
    template.containers = containers;
    const [operation] = await client.updateService({
      service: { name: SERVICE_NAME, etag: service.etag, template } as never,
      updateMask: { paths: ['template'] },
    });
    await operation.promise();
  } finally {
    await client.close();
  }
}

/** Sets the service's traffic as another operator would (gcloud run services update-traffic). */
async function setTrafficElsewhere(traffic: Array<{ revision: string; percent: number }>) {
  const client = new ServicesClient(fakeClientOptions(fakes.grpc.port));
  try {
    const [service] = await client.getService({ name: SERVICE_NAME });
    const [operation] = await client.updateService({
      service: {
        name: SERVICE_NAME,
        etag: service.etag,
        traffic: traffic.map((t) => ({ type: 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION', ...t })),
      } as never,
      updateMask: { paths: ['traffic'] },
    });
    await operation.promise();
  } finally {
    await client.close();
  }
}

/** The revision template fields deploy sets, as Run stores them. */
interface ServiceTemplate {
  serviceAccount: string;
  containers: Array<{ resources: { limits: Record<string, string> } }>;
  scaling: { maxInstanceCount: number };
  maxInstanceRequestConcurrency: number;
  timeout: { seconds: string };
}

/** The pipeline job's task template as Run stores it. */
function jobTask() {
  const job = fakes.run.job(JOB_NAME) as { template?: { template?: Record<string, unknown> } } | undefined;
  const task = job?.template?.template as
    | {
        containers: Array<{ image: string; resources?: { limits?: Record<string, string> } }>;
        serviceAccount: string;
        maxRetries: number;
        timeout: { seconds: string };
      }
    | undefined;
  return (
    task && {
      image: task.containers[0]?.image,
      limits: task.containers[0]?.resources?.limits,
      serviceAccount: task.serviceAccount,
      maxRetries: task.maxRetries,
      timeoutSeconds: Number(task.timeout.seconds),
    }
  );
}

async function history() {
  return withContext(
    root,
    async (ctx) => {
      const warehouse = await ctx.backends.warehouse();
      return warehouse.select('tenants', 'deployment_history', { orderBy: [['started_at', 'asc']] });
    },
    { env: 'cloud' },
  );
}

describe('deploy --canary', () => {
  it('refuses a tag too long for the service before any call', async () => {
    const before = fakes.run.requests().length;
    await assert.rejects(
      () => deploy({ tag: 'canary-with-a-long-tag' }, undefined, 'longname'),
      (err: ConvergenceError) => err.code === 'USAGE' && /at most 46 characters/.test(err.message),
    );
    assert.equal(fakes.run.requests().length, before, 'no Cloud Run call was made');
  });

  it('dry run on a missing service validates and creates nothing', async () => {
    const { result } = await deploy({ dryRun: true });
    assert.equal(result.dryRun, true);
    assert.equal(result.firstDeploy, true);
    assert.equal(fakes.run.service(SERVICE_NAME), undefined);
    const creates = fakes.run.requests('CreateService');
    assert.ok(creates.length >= 1 && creates.every((r) => r.request.validateOnly === true));
    // The settings diff covers the service and the job, neither of which exists yet.
    const changed = Object.fromEntries(result.serviceChanges.map((c) => [c.setting, c]));
    assert.deepEqual(changed.cpu, { setting: 'cpu', current: undefined, wanted: '2' });
    assert.deepEqual(changed.ingress, { setting: 'ingress', current: undefined, wanted: 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER' });
    assert.equal(result.job?.existed, false);
    assert.deepEqual(
      result.job?.changes.find((c) => c.setting === 'image'),
      { setting: 'image', current: undefined, wanted: result.image },
    );
    assert.equal(fakes.run.job(JOB_NAME), undefined, 'the job was validated, not created');
    assert.ok(fakes.run.requests('CreateJob').every((r) => r.request.validateOnly === true));
  });

  it('first deploy goes straight to 100% with a health check', async () => {
    callers.length = 0;
    const { result } = await deploy();
    assert.equal(result.firstDeploy, true);
    assert.deepEqual(serviceTraffic(), [{ revision: result.revision, percent: 100 }]);
    // The image's CMD is the job task: the service's revision must be told to serve, on this environment.
    assert.deepEqual(containerOf(result.revision), { args: ['serve'], env: { CONVERGENCE_ENV: 'cloud' } });
    assert.ok(
      probed.some((p) => p === `${result.revision} /health`),
      'the new revision was health-checked',
    );
    assert.ok(callers.length > 0 && callers.every((c) => c === DEPLOYER), 'every probe carried the deployer ID token');
    // convergence.yaml's service settings are on the revision template and the service.
    const service = fakes.run.service(SERVICE_NAME) as { ingress: string; invokerIamDisabled: boolean; template: ServiceTemplate };
    const template = service.template;
    assert.equal(template.serviceAccount, RUNTIME);
    assert.deepEqual(template.containers[0]!.resources.limits, { cpu: '2', memory: '1Gi' });
    assert.equal(Number(template.scaling.maxInstanceCount), 5);
    assert.equal(template.maxInstanceRequestConcurrency, 40);
    assert.equal(Number(template.timeout.seconds), 120);
    assert.equal(service.ingress, 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER');
    assert.equal(service.invokerIamDisabled, false, 'private unless public: true');
    // The pipeline job was created on the same image, account and resources.
    assert.deepEqual(jobTask(), {
      image: result.image,
      limits: { cpu: '2', memory: '1Gi' },
      serviceAccount: RUNTIME,
      maxRetries: 1,
      timeoutSeconds: 7200,
    });
    assert.equal(result.job?.existed, false);
    const rows = await history();
    assert.equal(rows.at(-1)?.kind, 'FIRST_DEPLOY');
    assert.equal(rows.at(-1)?.status, 'SUCCEEDED');
  });

  it('dry run on an existing service changes nothing', async () => {
    const service = fakes.run.service(SERVICE_NAME);
    const revisions = fakes.run.revisions(SERVICE_NAME).length;
    const { result } = await deploy({ dryRun: true });
    assert.equal(result.dryRun, true);
    assert.equal(result.firstDeploy, false);
    assert.equal(fakes.run.service(SERVICE_NAME)?.etag, service?.etag);
    assert.equal(fakes.run.revisions(SERVICE_NAME).length, revisions);
    assert.equal(fakes.run.requests('UpdateService').at(-1)?.request.validateOnly, true);
  });

  it('a healthy canary reaches 100% step by step and is recorded', async () => {
    const weights: number[] = [];
    let jobImageAtFirstStep: string | undefined;
    const image = `${IMAGE}:canary-ok`;
    const { result } = await deploy({ image }, (e) => {
      if (e.type !== 'step') return;
      weights.push(e.weight);
      jobImageAtFirstStep ??= jobTask()?.image;
    });
    assert.deepEqual(weights, [25, 50, 100]);
    assert.equal(jobImageAtFirstStep, image, 'the job ran the new image before any traffic moved');
    assert.deepEqual(
      result.job?.changes.map((c) => [c.setting, c.wanted]),
      [['image', image]],
      'only the image of the job changed',
    );
    assert.deepEqual(serviceTraffic(), [{ revision: result.revision, percent: 100 }]);
    assert.deepEqual(containerOf(result.revision), { args: ['serve'], env: { CONVERGENCE_ENV: 'cloud' } });
    assert.deepEqual(
      result.steps.map((s) => s.analysis?.verdict),
      ['passed', 'passed', undefined],
    );
    // Every step pinned the old revision by name: no LATEST target was ever sent during the canary.
    const updates = fakes.run.requests('UpdateService').filter((r) => !r.request.validateOnly);
    for (const update of updates) {
      for (const target of (update.request.service as { traffic?: Array<{ type: unknown }> }).traffic ?? []) {
        assert.notEqual(target.type, 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST');
        assert.notEqual(target.type, 1);
      }
    }
    const rows = await history();
    assert.equal(rows.at(-1)?.status, 'SUCCEEDED');
    assert.equal(rows.at(-1)?.revision, result.revision);
  });

  it('rolls back to the saved traffic (exit 9) when the canary starts failing at 50%', async () => {
    const savedTraffic = serviceTraffic();
    let restoredAt: number | undefined;
    const err = await deploy({ interval: '1s' }, (e) => {
      if (e.type === 'step' && e.weight === 50) failing.add(e.revision);
      if (e.type === 'restored') restoredAt = Date.now();
    }).then(
      () => assert.fail('the deploy should have been rolled back'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConvergenceError);
    assert.equal(err.code, 'DEPLOY_ROLLED_BACK');
    assert.equal(err.exitCode, 9);
    assert.match(err.message, /analysis failed at 50%/);
    assert.deepEqual(serviceTraffic(), savedTraffic, 'the exact traffic list saved before the deploy is back');
    assert.ok(firstFailureAt && restoredAt);
    const ms = restoredAt - firstFailureAt;
    process.stderr.write(`# first failing probe -> traffic restored: ${ms} ms\n`);
    const rows = await history();
    assert.equal(rows.at(-1)?.status, 'ROLLED_BACK');
    // The environment's topic heard of it, with attributes a subscription filters on.
    const [published] = fakes.pubsub.published(`projects/${CLOUD_PROJECT}/topics/deploy-events`).slice(-1);
    assert.deepEqual(published?.attributes, { event: 'deploy_rolled_back', env: 'cloud', status: 'ROLLED_BACK' });
    assert.match(JSON.parse(published!.data.toString('utf8')).error, /analysis failed at 50%/);
  });

  it('retries a traffic update that meets a concurrent writer from a fresh GET', async () => {
    const gets = fakes.run.requests('GetService').length;
    const updates = fakes.run.requests('UpdateService').length;
    let armed = false;
    const { result } = await deploy({ steps: [50, 100] }, (e) => {
      if (e.type === 'analysis' && e.weight === 50 && !armed) {
        armed = true;
        fakes.run.setEtagConflict(1);
      }
    });
    assert.deepEqual(serviceTraffic(), [{ revision: result.revision, percent: 100 }]);
    assert.ok(fakes.run.requests('GetService').length > gets);
    // deploy, 50%, 100% (refused as stale, then re-applied with the etag of a fresh GET)
    const sent = fakes.run.requests('UpdateService').slice(updates);
    assert.equal(sent.length, 4);
    const [refused, retried] = [sent[2]!.request.service as { etag: string }, sent[3]!.request.service as { etag: string }];
    assert.deepEqual(retried, { ...refused, etag: retried.etag }, 'the same whole list is re-applied');
    assert.notEqual(retried.etag, refused.etag);
  });

  it('a traffic change someone else makes during the canary is never overwritten: the next step stops (exit 2)', async () => {
    const [serving] = serviceTraffic().filter((t) => t.percent > 0);
    let elsewhere: Promise<void> | undefined;
    const err = await deploy({ steps: [25, 50, 100], interval: '2s' }, (e) => {
      // While the canary analyses 25%, an operator sends everything back to the old revision.
      if (e.type === 'step' && e.weight === 25) elsewhere = setTrafficElsewhere([{ revision: serving!.revision, percent: 100 }]);
    }).then(
      () => assert.fail('the canary should have stopped'),
      (e: unknown) => e,
    );
    await elsewhere;
    assert.ok(err instanceof ConvergenceError);
    assert.equal(err.code, 'CONFLICT');
    assert.equal(err.exitCode, 2);
    assert.match(err.message, new RegExp(`changed by someone else during this deploy \\(it serves ${serving!.revision} 100%\\)`));
    assert.deepEqual(serviceTraffic(), [{ revision: serving!.revision, percent: 100 }], "the other writer's traffic stands");
  });

  it('--source builds with gcloud builds submit (a recording stand-in on PATH) and deploys the pushed image', async () => {
    const bin = path.join(root, 'fake-bin');
    await mkdir(bin, { recursive: true });
    const record = path.join(bin, 'calls.log');
    await writeFile(path.join(bin, 'gcloud'), `#!/bin/sh\necho "$@" >> '${record}'\nexit 0\n`);
    await chmod(path.join(bin, 'gcloud'), 0o755);
    setEnv('PATH', `${bin}${path.delimiter}${process.env.PATH}`);
    try {
      const { result } = await deploy({ image: undefined, source: root, canary: false });
      const calls = (await readFile(record, 'utf8')).trim().split('\n');
      assert.equal(calls.length, 1);
      assert.match(calls[0]!, new RegExp(`^builds submit ${root} --tag \\S+ --project ${CLOUD_PROJECT} --quiet$`));
      const image = calls[0]!.split(' ')[4];
      assert.equal(result.image, image);
      const revision = fakes.run.revisions(SERVICE_NAME)[0] as { containers: Array<{ image: string }> };
      assert.equal(revision.containers[0]!.image, image);
    } finally {
      setEnv('PATH', saved.PATH);
    }
  });

  it('rolls back when the new revision never turns ready', async () => {
    const savedTraffic = serviceTraffic();
    fakes.run.failNextRevision();
    await assert.rejects(
      () => deploy(),
      (err: ConvergenceError) => err.exitCode === 9,
    );
    assert.deepEqual(serviceTraffic(), savedTraffic);
  });
});

describe('rollback', () => {
  it('lists revisions with their traffic', async () => {
    const rows = await withContext(root, (ctx) => listRevisions(ctx), { env: 'cloud' });
    assert.ok(rows.length >= 3);
    assert.equal(
      rows.reduce((sum, r) => sum + r.percent, 0),
      100,
    );
  });

  it('dry run validates and changes nothing', async () => {
    const etag = fakes.run.service(SERVICE_NAME)?.etag;
    const result = await withContext(root, (ctx) => rollback(ctx, { dryRun: true }), { env: 'cloud' });
    assert.equal(result.dryRun, true);
    assert.equal(fakes.run.service(SERVICE_NAME)?.etag, etag);
  });

  it('rolls back to a named revision, health-checks it and records it', async () => {
    const ready = (await withContext(root, (ctx) => listRevisions(ctx), { env: 'cloud' })).filter((r) => r.ready);
    const target = ready.at(-1)!.revision; // the first revision ever deployed
    probed.length = 0;
    const result = await withContext(root, (ctx) => rollback(ctx, { to: target, dryRun: false }), { env: 'cloud' });
    assert.equal(result.to, target);
    assert.equal(result.healthy, true);
    assert.deepEqual(serviceTraffic(), [{ revision: target, percent: 100 }]);
    assert.ok(probed.includes(`${target} /health`));
    assert.equal(jobTask()?.image, ready.at(-1)!.image, 'the job is back on the restored revision’s image');
    assert.equal(result.job?.changes[0]?.setting, 'image');
    const rows = await history();
    assert.equal(rows.at(-1)?.kind, 'ROLLBACK');
    assert.equal(rows.at(-1)?.revision, target);
    const [published] = fakes.pubsub.published(`projects/${CLOUD_PROJECT}/topics/deploy-events`).slice(-1);
    assert.deepEqual(published?.attributes, { event: 'deploy_rolled_back', env: 'cloud', status: 'ROLLED_BACK' });
    assert.match(JSON.parse(published!.data.toString('utf8')).summary, new RegExp(`rolled back by an operator from .* to ${target}`));
  });

  it('without --to goes to the ready revision created before the serving one', async () => {
    const { result: deployed } = await deploy({ canary: false });
    const revisions = await withContext(root, (ctx) => listRevisions(ctx), { env: 'cloud' });
    const expected = revisions.filter((r) => r.ready && r.revision !== deployed.revision)[0]!.revision;
    const result = await withContext(root, (ctx) => rollback(ctx, { dryRun: false }), { env: 'cloud' });
    assert.equal(result.from, deployed.revision);
    assert.equal(result.to, expected);
  });
});

describe('service revisions run the API', () => {
  it("keeps an operator's serve flags and other variables, and replaces args that do not serve", async () => {
    await editServiceContainer((container) => {
      container.args = ['serve', '--rate-limit', '500'];
      container.env = [...((container.env as unknown[]) ?? []), { name: 'TEAM', value: 'data' }];
    });
    const { result: kept } = await deploy({ canary: false });
    assert.deepEqual(containerOf(kept.revision), {
      args: ['serve', '--rate-limit', '500'],
      env: { CONVERGENCE_ENV: 'cloud', TEAM: 'data' },
    });

    await editServiceContainer((container) => {
      container.args = ['job', 'run-pipeline'];
      container.env = [
        { name: 'CONVERGENCE_ENV', value: 'local' },
        { name: 'TEAM', value: 'data' },
      ];
    });
    const { result: fixed } = await deploy({ canary: false });
    assert.deepEqual(containerOf(fixed.revision), { args: ['serve'], env: { TEAM: 'data', CONVERGENCE_ENV: 'cloud' } });
  });
});

describe('private and public services', () => {
  const serving = () => serviceTraffic().find((t) => t.percent > 0)!.revision;
  const healthOf = (service: string, revision: string) => `${front.base}/${service}/${revision}/health`;
  const serviceUri = () => String(fakes.run.service(SERVICE_NAME)?.uri);

  it('Run answers a probe without an ID token 403, one for another audience 401, one for the service URL 200', async () => {
    const url = healthOf(CLOUD_SERVICE, serving());
    assert.equal((await probeOnce(url, 5000)).status, 403);
    const identity = new ProbeIdentity(false);
    assert.equal((await probeOnce(url, 5000, identity.headersFor('https://another-service-abc.a.run.app'))).status, 401);
    assert.equal((await probeOnce(url, 5000, identity.headersFor(serviceUri()))).status, 200);
  });

  it('a canary whose probes are refused (403: the deployer may not invoke) rolls back (exit 9)', async () => {
    const savedTraffic = serviceTraffic();
    front.invokers = new Set(['someone-else@demo-project.iam.gserviceaccount.com']);
    try {
      await assert.rejects(
        () => deploy(),
        (err: ConvergenceError) => err.code === 'DEPLOY_ROLLED_BACK' && err.exitCode === 9 && /HTTP 403/.test(err.message),
      );
    } finally {
      front.invokers = undefined;
    }
    assert.deepEqual(serviceTraffic(), savedTraffic);
  });

  it('a canary whose pipeline job cannot be updated rolls back before any traffic moves (exit 9)', async () => {
    const savedTraffic = serviceTraffic();
    const jobImage = jobTask()?.image;
    const weights: number[] = [];
    fakes.run.granted.delete('run.jobs.update');
    try {
      await assert.rejects(
        () => deploy({}, (e) => e.type === 'step' && weights.push(e.weight)),
        (err: ConvergenceError) =>
          err.code === 'DEPLOY_ROLLED_BACK' &&
          /pipeline job could not be updated/.test(err.message) &&
          /run\.jobs\.update/.test(err.message),
      );
    } finally {
      fakes.run.granted.add('run.jobs.update');
    }
    assert.deepEqual(weights, [], 'no traffic step was taken');
    assert.deepEqual(serviceTraffic(), savedTraffic);
    assert.equal(jobTask()?.image, jobImage);
  });

  it('without credentials that mint ID tokens a canary stops before changing anything (exit 7)', async () => {
    const revisions = fakes.run.revisions(SERVICE_NAME).length;
    const etag = fakes.run.service(SERVICE_NAME)?.etag;
    oauth.refuse('invalid_grant');
    try {
      await assert.rejects(
        () => deploy(),
        (err: ConvergenceError) =>
          err.code === 'AUTH' &&
          err.exitCode === 7 &&
          /cannot mint an ID token/.test(err.message) &&
          /public: true/.test(err.suggestion ?? ''),
      );
    } finally {
      oauth.refuse(null);
    }
    assert.equal(fakes.run.revisions(SERVICE_NAME).length, revisions, 'no revision was created');
    assert.equal(fakes.run.service(SERVICE_NAME)?.etag, etag);
  });

  it('without credentials that mint ID tokens a first deploy creates nothing (exit 7)', async () => {
    const creates = fakes.run.requests('CreateService').length;
    oauth.refuse('invalid_grant');
    try {
      await assert.rejects(
        () => deploy({ canary: false, tag: 'c1' }, undefined, 'longname'),
        (err: ConvergenceError) => err.exitCode === 7 && /cannot mint an ID token/.test(err.message),
      );
    } finally {
      oauth.refuse(null);
    }
    assert.equal(fakes.run.requests('CreateService').length, creates, 'no service was created');
  });

  it('a rollback without credentials that mint ID tokens changes nothing (exit 7)', async () => {
    const savedTraffic = serviceTraffic();
    oauth.refuse('invalid_grant');
    try {
      await assert.rejects(
        () => withContext(root, (ctx) => rollback(ctx, { dryRun: false }), { env: 'cloud' }),
        (err: ConvergenceError) => err.exitCode === 7,
      );
    } finally {
      oauth.refuse(null);
    }
    assert.deepEqual(serviceTraffic(), savedTraffic);
  });

  it('public: true opens the service to anyone (invokerIamDisabled) and probes it with no credentials', async () => {
    setEnv('GOOGLE_APPLICATION_CREDENTIALS', undefined);
    callers.length = 0;
    try {
      const { result } = await deploy({ canary: false }, undefined, 'public');
      assert.equal(result.firstDeploy, true);
    } finally {
      setEnv('GOOGLE_APPLICATION_CREDENTIALS', deployerKey);
    }
    assert.equal(fakes.run.service(`${LOCATION}/services/convergence-api-public`)?.invokerIamDisabled, true);
    assert.ok(callers.length > 0 && callers.every((c) => c === undefined), 'the probes went through without a token');
  });
});

describe('a CPU limit Run holds in another spelling', () => {
  /** Changes the job's first container as an operator would outside deploy (gcloud run jobs update). */
  async function editJobContainer(edit: (container: Record<string, unknown>) => void) {
    const jobs = new JobsClient(fakeClientOptions(fakes.grpc.port));
    try {
      const [job] = await jobs.getJob({ name: JOB_NAME });
      edit(job.template!.template!.containers![0] as Record<string, unknown>);
      const [operation] = await jobs.updateJob({ job });
      await operation.promise();
    } finally {
      await jobs.close();
    }
  }
  const withCpu = (cpu: string) => (container: Record<string, unknown>) => {
    const resources = (container.resources ?? {}) as { limits?: Record<string, string> };
    container.resources = { ...resources, limits: { ...resources.limits, cpu } };
  };

  it('is no change: the dry run shows none and a job already on the image is not updated', async () => {
    // convergence.yaml says cpu: "2"; Run holds 2000m, as `gcloud run ... update --cpu 2000m` leaves it.
    await editServiceContainer(withCpu('2000m'));
    await editJobContainer(withCpu('2000m'));
    const { result } = await deploy({ dryRun: true });
    assert.deepEqual(
      result.serviceChanges.filter((c) => c.setting === 'cpu'),
      [],
    );
    assert.deepEqual(
      result.job?.changes.map((c) => c.setting),
      ['image'],
    );

    const updates = fakes.run.requests('UpdateJob').length;
    const job = await withContext(
      root,
      async (ctx) => {
        const platform = await ctx.backends.runPlatform!();
        try {
          return await followWithJob(platform, cloudEnv(ctx.env)!.settings, jobTask()!.image!);
        } finally {
          await platform.close();
        }
      },
      { env: 'cloud' },
    );
    assert.deepEqual(job?.changes, []);
    assert.equal(fakes.run.requests('UpdateJob').length, updates, 'no update was sent');
    assert.equal(jobTask()?.limits?.cpu, '2000m');
  });
});
