/**
 * Notifications through the built CLI: a failing demo run posts to a local webhook receiver
 * before the command exits, and exits with the run's own code; `notifications test` reaches every
 * target of the environment (a webhook, and a Pub/Sub topic of the cloud fakes through the
 * official client) and says which did not.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { installExample } from '../../src/services/example.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext } from '../helpers/context.ts';
import { notifyPipeline, setEnvironmentNotifications } from '../helpers/notifications.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { signatureValid, startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';

const TENANT = 'acme_corp';
const SIGNING_KEY = 'cli-signing-key-0123456789';
const TOPIC = 'pipeline-events-cloud';

interface TestReport {
  scope: string;
  ok: boolean;
  deliveries: Array<{ targetType: string; target: string; outcome: string; attempts: number; detail: string }>;
}

let root: string;
let receiver: Receiver;
let fakes: CloudFakes;

before(async () => {
  receiver = await startReceiver();
  fakes = await startCloudFakes({ pointProcess: true });
  fakes.pubsub.createTopic(CLOUD_PROJECT, TOPIC);
  root = await newBootstrappedWorkspace('cli-notify');
  await installExample(root);
  await withContext(root, async (ctx) => {
    await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
    await (await ctx.backends.secrets()).put(null, 'hook_key', SIGNING_KEY);
  });
  await setEnvironmentNotifications(root, [
    `{ type: webhook, url: "${receiver.url}", signing_secret: hook_key, events: [run_failed, dq_failed] }`,
  ]);
  await appendFile(
    path.join(root, 'convergence.yaml'),
    `${fakes.yaml('cloud')}    notifications:\n      - { type: webhook, url: "${receiver.url}", events: [all] }\n      - { type: pubsub, topic: ${TOPIC}, events: [all] }\n`,
  );
  await withContext(root, (ctx) => bootstrap(ctx), { env: 'cloud' });
  await writeFile(path.join(root, 'configs', TENANT, 'pipelines', 'p_notify.yml'), notifyPipeline());
});

afterEach(() => receiver.reset());

after(async () => {
  await receiver.close();
  await fakes.stop();
  await cleanupAll();
});

describe('convergence pipeline run with notifications', () => {
  it('a failing demo run posts to the local webhook before it exits, and exits 4 as the run did', async () => {
    const started = Date.now();
    const r = await runCli(['pipeline', 'run', 'p_notify', '--tenant', TENANT, '--full-refresh'], { cwd: root });
    const exited = Date.now();
    assert.equal(r.exitCode, 4, show(r));
    assert.equal(receiver.requests.length, 1, show(r));
    const [request] = receiver.requests;
    assert.ok(request!.at <= exited, 'delivered before the command exited');
    assert.ok(request!.at - started < 30_000, `posted ${request!.at - started} ms after the command started`);
    assert.ok(signatureValid(SIGNING_KEY, request!));
    const body = JSON.parse(request!.body) as Record<string, unknown>;
    assert.equal(body.event, 'dq_failed');
    assert.equal(body.exit_code, 4);
    assert.doesNotMatch(r.all, new RegExp(SIGNING_KEY));
  });

  it('a receiver that is down changes nothing about the run: exit 4 and a warning', async () => {
    receiver.script({ status: 503 }, { status: 503 }, { status: 503 });
    const r = await runJson(['pipeline', 'run', 'p_notify', '--tenant', TENANT, '--full-refresh'], { cwd: root });
    assert.equal(r.exitCode, 4, show(r));
    assert.equal(r.envelope.error?.exitCode, 4);
    assert.equal(receiver.requests.length, 3);
    assert.ok(
      r.envelope.warnings.some((w) => /notification dq_failed to webhook http:\/\/127\.0\.0\.1:\d+ failed: .*answered HTTP 503/.test(w)),
      r.envelope.warnings.join('\n'),
    );
  });
});

describe('convergence notifications test', () => {
  it('reaches the local webhook and prints a table', async () => {
    const r = await runCli(['notifications', 'test'], { cwd: root });
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /Test notification to the targets of environment local/);
    assert.match(r.stdout, /webhook +http:\/\/127\.0\.0\.1:\d+ +environment +DELIVERED +1 +HTTP 200/);
    assert.equal(JSON.parse(receiver.requests[0]!.body).event, 'test');
  });

  it('--env cloud reaches the webhook and the Pub/Sub topic through the official client', async () => {
    const before = fakes.pubsub.published(`projects/${CLOUD_PROJECT}/topics/${TOPIC}`).length;
    const r = await runJson<TestReport>(['notifications', 'test', '--env', 'cloud'], { cwd: root, env: fakes.vars });
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual(
      r.envelope.result?.deliveries.map((d) => [d.targetType, d.outcome]),
      [
        ['webhook', 'DELIVERED'],
        ['pubsub', 'DELIVERED'],
      ],
    );
    const published = fakes.pubsub.published(`projects/${CLOUD_PROJECT}/topics/${TOPIC}`);
    assert.equal(published.length, before + 1);
    assert.deepEqual(published.at(-1)?.attributes, { event: 'test', env: 'cloud', status: 'TEST' });
    assert.equal(receiver.requests.length, 1);
  });

  it('exits 1 when a target keeps failing, 7 when it refuses the credentials, 2 when a target is refused by its configuration', async () => {
    receiver.script({ status: 500 }, { status: 500 }, { status: 500 });
    const down = await runJson(['notifications', 'test'], { cwd: root });
    assert.equal(down.exitCode, 1, show(down));
    assert.equal(down.envelope.error?.code, 'NOTIFICATION_FAILED');

    receiver.script({ status: 401 });
    const auth = await runJson(['notifications', 'test'], { cwd: root });
    assert.equal(auth.exitCode, 7, show(auth));
    assert.equal(auth.envelope.error?.code, 'NOTIFICATION_AUTH');

    fakes.pubsub.granted.delete('pubsub.topics.publish');
    try {
      const denied = await runJson(['notifications', 'test', '--env', 'cloud'], { cwd: root, env: fakes.vars });
      assert.equal(denied.exitCode, 7, show(denied));
      assert.match(denied.envelope.error?.message ?? '', /pubsub topic pipeline-events-cloud/);
    } finally {
      fakes.pubsub.granted.add('pubsub.topics.publish');
    }

    await writeFile(
      path.join(root, 'configs', TENANT, 'pipelines', 'p_notify.yml'),
      notifyPipeline({ notifications: 'notifications: [{ type: slack, url_secret: hook_key, events: [all] }]' }),
    );
    try {
      const refused = await runJson(['notifications', 'test', '--tenant', TENANT, '--pipeline', 'p_notify'], { cwd: root });
      assert.equal(refused.exitCode, 2, show(refused));
      assert.equal(refused.envelope.error?.code, 'NOTIFICATION_REFUSED');
      assert.match(refused.all, /not found in the secrets of tenant acme_corp \(secret \\?"hook_key\\?"\)/);
      assert.doesNotMatch(refused.all, new RegExp(SIGNING_KEY));
    } finally {
      await writeFile(path.join(root, 'configs', TENANT, 'pipelines', 'p_notify.yml'), notifyPipeline());
    }
  });

  it('--tenant without --pipeline is a usage error (exit 2)', async () => {
    const r = await runCli(['notifications', 'test', '--tenant', TENANT], { cwd: root });
    assert.equal(r.exitCode, 2, show(r));
  });

  it('an environment without targets is a usage error (exit 2) that says where to add them', async () => {
    await appendFile(path.join(root, 'convergence.yaml'), '  quiet:\n    backend: local\n');
    const r = await runJson(['notifications', 'test', '--env', 'quiet'], { cwd: root });
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error?.message ?? '', /environment quiet has no notification targets/);
    assert.match(r.envelope.error?.suggestion ?? '', /environments\.quiet/);
  });
});
