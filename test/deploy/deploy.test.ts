/** deploy against the Cloud Run fakes: canary to 100%, automatic rollback, etag retry, first deploy, dry run. */
import '../fakes/env-guard.ts';
import { ServicesClient } from '@google-cloud/run';
import * as grpc from '@grpc/grpc-js';
import { PassThroughClient } from 'google-auth-library';
import assert from 'node:assert/strict';
import { appendFile, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ConvergenceError } from '../../src/lib/errors.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { planDeploy, runDeploy, type DeployEvent, type DeployRequest } from '../../src/services/deploy/deploy.ts';
import { listRevisions, rollback } from '../../src/services/deploy/rollback.ts';
import { CLOUD_PROJECT, CLOUD_SERVICE, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const SERVICE_NAME = `projects/${CLOUD_PROJECT}/locations/us-central1/services/${CLOUD_SERVICE}`;
const IMAGE = 'us-docker.pkg.dev/demo-project/convergence/convergence';

let fakes: CloudFakes;
let root: string;
/** The revisions' health endpoints the deploy probes: /<revision>/health. */
let healthEndpoints: FakeApi;
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
  healthEndpoints = await startFakeApi((req) => {
    const [, revision, rest] = /^\/([^/]+)(\/.*)$/.exec(req.path) ?? [];
    probed.push(`${revision} ${rest}`);
    if (rest !== '/health') return { status: 404 };
    if (revision && failing.has(revision)) {
      firstFailureAt ??= Date.now();
      return { status: 500, body: 'boom' };
    }
    return { body: { ok: true } };
  });
  setEnv('CONVERGENCE_PROBE_URL', `${healthEndpoints.base}/{revision}`);
  root = await newWorkspace('deploy');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
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
  await withContext(root, (ctx) => bootstrap(ctx), { env: 'cloud' });
});
after(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await healthEndpoints.close();
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
  const client = new ServicesClient({
    apiEndpoint: '127.0.0.1',
    port: fakes.grpc.port,
    sslCreds: grpc.credentials.createInsecure(),
    authClient: new PassThroughClient(),
  });
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
  });

  it('first deploy goes straight to 100% with a health check', async () => {
    const { result } = await deploy();
    assert.equal(result.firstDeploy, true);
    assert.deepEqual(serviceTraffic(), [{ revision: result.revision, percent: 100 }]);
    // The image's CMD is the job task: the service's revision must be told to serve, on this environment.
    assert.deepEqual(containerOf(result.revision), { args: ['serve'], env: { CONVERGENCE_ENV: 'cloud' } });
    assert.ok(
      probed.some((p) => p === `${result.revision} /health`),
      'the new revision was health-checked',
    );
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
    const { result } = await deploy({}, (e) => e.type === 'step' && weights.push(e.weight));
    assert.deepEqual(weights, [25, 50, 100]);
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
    const rows = await history();
    assert.equal(rows.at(-1)?.kind, 'ROLLBACK');
    assert.equal(rows.at(-1)?.revision, target);
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
