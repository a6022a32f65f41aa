/**
 * Attack: a tenant's pipeline file is untrusted input, and its `notifications:` names where
 * convergence sends requests and which secrets it reads. It must not read the operator's or
 * another tenant's secrets, reach loopback, private, link-local or metadata addresses (not even
 * through a name that resolves there), speak plain http, or publish to a topic the environment
 * does not name. `pipeline validate` reports each problem at file:line:col; delivery refuses the
 * same again. Secrets never reach a payload, a warning, an error or the recorded delivery.
 */
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { isPublicAddress } from '../../src/lib/net/address-guard.ts';
import { notificationTargetSchema, type NotificationTarget } from '../../src/domain/notifications.ts';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE } from '../../src/services/metadata/tables.ts';
import { deliver } from '../../src/services/notifications/deliver.ts';
import { eventMessage } from '../../src/services/notifications/messages.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';
import { notifyPipeline, setEnvironmentNotifications } from '../helpers/notifications.ts';

after(cleanupAll);

const TENANT = 'acme_corp';
const OTHER = 'globex_inc';
const LEAK = /SECRET\d{4}/;
const SYSTEM_HOOK = 'https://hooks.example.com/services/T0/B0/opsSECRET1111';
const OTHER_HOOK = 'https://hooks.example.com/services/T1/B1/globexSECRET2222';
const OWN_SIGNING = 'own-signing-SECRET3333';

let root: string;
let receiver: Receiver;
const pipelineFile = () => path.join(root, 'configs', TENANT, 'pipelines', 'p_notify.yml');

before(async () => {
  receiver = await startReceiver();
  root = await newBootstrappedWorkspace('notify-attack');
  await installExample(root);
  await withContext(root, async (ctx) => {
    await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
    await createTenant(ctx, { tenantId: OTHER, name: 'Globex', plan: 'scale' });
    const secrets = await ctx.backends.secrets();
    await secrets.put(null, 'ops_hook', SYSTEM_HOOK);
    await secrets.put(OTHER, 'globex_hook', OTHER_HOOK);
    await secrets.put(TENANT, 'own_signing', OWN_SIGNING);
  });
  await mkdir(path.join(root, 'configs', TENANT, 'secrets'), { recursive: true });
  await setEnvironmentNotifications(root, [
    `{ type: webhook, url: "${receiver.url}", events: [all] }`,
    '{ type: pubsub, topic: pipeline-events, events: [all] }',
  ]);
});

afterEach(() => receiver.reset());
after(() => receiver.close());

/** `pipeline validate` of p_notify with these `notifications:` lines: its errors. */
async function validateWith(lines: string[]): Promise<string[]> {
  await writeFile(pipelineFile(), notifyPipeline({ notifications: ['notifications:', ...lines.map((l) => `  - ${l}`)].join('\n') }));
  const report = await withContext(root, (ctx) => validateConfigs(ctx, { file: pipelineFile() }));
  return report.files.flatMap((f) => f.errors);
}

/** Delivers a run_failed message to one pipeline target of TENANT, as a run's end does. */
async function deliverPipelineTarget(target: NotificationTarget) {
  return withContext(root, async (ctx) => {
    const message = eventMessage(ctx, 'run_failed', {
      summary: 'Run failed',
      tenant_id: TENANT,
      pipeline_id: 'p_notify',
      status: 'FAILED',
    });
    const [delivery] = await deliver(ctx, message, [{ target, origin: 'pipeline' }], { tenantId: TENANT });
    return { delivery: delivery!, warnings: ctx.warnings };
  });
}

const webhook = (fields: Record<string, unknown>) => notificationTargetSchema.parse({ type: 'webhook', events: ['all'], ...fields });

describe("a pipeline's notifications (tenant input)", () => {
  it("may not name the operator's secret nor another tenant's: validate says where, delivery refuses, nothing leaks", async () => {
    const errors = await validateWith([
      '{ type: slack, url_secret: ops_hook, events: [all] }',
      '{ type: webhook, url_secret: globex_hook, events: [all] }',
    ]);
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(
      errors[0]!,
      /^configs\/acme_corp\/pipelines\/p_notify\.yml:4:\d+: notifications\.0\.url_secret: secret "ops_hook" not found in configs\/acme_corp\/secrets\/ops_hook\.txt/,
    );
    assert.match(
      errors[1]!,
      /^configs\/acme_corp\/pipelines\/p_notify\.yml:5:\d+: notifications\.1\.url_secret: secret "globex_hook" not found/,
    );

    for (const name of ['ops_hook', 'globex_hook']) {
      const { delivery, warnings } = await deliverPipelineTarget(webhook({ url_secret: name }));
      assert.equal(delivery.outcome, 'REFUSED');
      assert.match(delivery.detail, new RegExp(`not found in the secrets of tenant ${TENANT} \\(secret "${name}"\\)`));
      assert.doesNotMatch(JSON.stringify({ delivery, warnings }), LEAK);
    }
    const rows = await withWarehouse(root, (w) => w.select(METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE));
    assert.ok(rows.length >= 2);
    assert.doesNotMatch(JSON.stringify(rows), LEAK);
  });

  it('must use https and a public host: loopback, private, link-local, metadata and internal names are refused at file:line', async () => {
    const urls = [
      'http://hooks.example.com/x',
      'https://127.0.0.1/x',
      'https://10.1.2.3/x',
      'https://169.254.169.254/computeMetadata/v1/',
      'https://[::1]/x',
      'https://[::ffff:127.0.0.1]/x',
      'https://localhost:8443/x',
      'https://metadata.google.internal/x',
      'https://printer.local/x',
    ];
    const errors = await validateWith(urls.map((url) => `{ type: webhook, url: "${url}", events: [all] }`));
    assert.equal(errors.length, urls.length, errors.join('\n'));
    assert.match(errors[0]!, /p_notify\.yml:4:\d+: notifications\.0\.url: a pipeline's notification URL must be https, got http/);
    for (const [i, error] of errors.slice(1).entries()) {
      assert.match(
        error,
        new RegExp(`p_notify\\.yml:${i + 5}:\\d+: notifications\\.${i + 1}\\.url: .* loopback, private, link-local or internal address`),
      );
    }
    // A public https URL and the tenant's own signing secret pass.
    assert.deepEqual(
      await validateWith(['{ type: webhook, url: "https://hooks.example.com/x", signing_secret: own_signing, events: [all] }']),
      [],
    );
  });

  it('delivery refuses the same: plain http, an internal literal, and a name that resolves to loopback (the address connected to is checked)', async () => {
    const http = await deliverPipelineTarget(webhook({ url: receiver.url }));
    assert.equal(http.delivery.outcome, 'REFUSED');
    assert.match(http.delivery.detail, /must be https/);

    const literal = await deliverPipelineTarget(webhook({ url: 'https://169.254.169.254/computeMetadata/v1/' }));
    assert.equal(literal.delivery.outcome, 'REFUSED');
    assert.match(literal.delivery.detail, /loopback, private or link-local/);

    // The machine's own name passes a check of the name; its DNS answer (loopback, or the
    // container's private address) is refused when the connection looks it up.
    const port = new URL(receiver.url).port;
    const host = hostname().toLowerCase();
    const resolved = await lookup(host).catch(() => undefined);
    if (resolved && !/\.(local|internal|localdomain)$|^localhost$/.test(host)) {
      assert.equal(isPublicAddress(resolved.address), false, `${host} resolves to ${resolved.address}`);
      assert.deepEqual(await validateWith([`{ type: webhook, url: "https://${host}:${port}/x", events: [all] }`]), []);
      const rebound = await deliverPipelineTarget(webhook({ url: `https://${host}:${port}/x` }));
      assert.equal(rebound.delivery.outcome, 'REFUSED', rebound.delivery.detail);
      assert.match(rebound.delivery.detail, /resolves to a loopback, private or link-local address/);
      assert.equal(rebound.delivery.attempts, 1, 'a refused address is not retried');
    }
    assert.equal(receiver.requests.length, 0, 'nothing reached the receiver');
  });

  it('may publish only to a topic the environment names', async () => {
    const errors = await validateWith([
      '{ type: pubsub, topic: attacker-topic, events: [all] }',
      '{ type: pubsub, topic: pipeline-events, events: [all] }',
    ]);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(
      errors[0]!,
      /p_notify\.yml:4:\d+: notifications\.0\.topic: topic "attacker-topic" is not one of environment local's notification topics \(pipeline-events\)/,
    );
    const { delivery } = await deliverPipelineTarget({ type: 'pubsub', topic: 'attacker-topic', events: ['all'] });
    assert.equal(delivery.outcome, 'REFUSED');
    assert.match(delivery.detail, /topic attacker-topic is not one of environment local's notification topics/);
  });
});

describe('operator targets', () => {
  it("may use http on 127.0.0.1, and a failure shows the host, never the URL's path, query or a secret", async () => {
    receiver.script({ status: 302, headers: { location: 'http://169.254.169.254/' } });
    const target = { type: 'webhook' as const, url: `${receiver.url}?token=querySECRET4444`, events: ['all' as const] };
    const result = await withContext(root, async (ctx) => {
      const message = eventMessage(ctx, 'test', { summary: 'x' });
      return { deliveries: await deliver(ctx, message, [{ target, origin: 'environment' }]), warnings: ctx.warnings };
    });
    const [delivery] = result.deliveries;
    assert.equal(delivery?.outcome, 'FAILED');
    assert.equal(delivery?.attempts, 1, 'a redirect is neither followed nor retried');
    assert.match(delivery!.detail, /answered HTTP 302 \(a redirect, which is not followed\)/);
    assert.equal(receiver.requests.length, 1);
    assert.doesNotMatch(JSON.stringify(result), LEAK);
    const rows = await withWarehouse(root, (w) => w.select(METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE));
    assert.doesNotMatch(JSON.stringify(rows), LEAK);
  });

  it('a URL kept as a system secret is sent to, and shown by its secret name only', async () => {
    await withContext(root, async (ctx) => (await ctx.backends.secrets()).put(null, 'local_hook', `${receiver.url}/opsSECRET5555`));
    const target = { type: 'webhook' as const, url_secret: 'local_hook', events: ['all' as const] };
    const [delivery] = await withContext(root, (ctx) =>
      deliver(ctx, eventMessage(ctx, 'test', { summary: 'x' }), [{ target, origin: 'environment' }]),
    );
    assert.equal(delivery?.outcome, 'DELIVERED');
    assert.equal(delivery?.target, 'secret local_hook');
    assert.equal(receiver.requests[0]?.path, '/hook/opsSECRET5555');
    assert.doesNotMatch(receiver.requests[0]!.body, LEAK);
  });
});

describe('Pub/Sub on the local environment', () => {
  it('is refused by configuration: the local environment has no project to publish in', async () => {
    const [delivery] = await withContext(root, (ctx) =>
      deliver(ctx, eventMessage(ctx, 'test', { summary: 'x' }), [
        { target: { type: 'pubsub', topic: 'pipeline-events', events: ['all'] }, origin: 'environment' },
      ]),
    );
    assert.equal(delivery?.outcome, 'REFUSED');
    assert.match(delivery!.detail, /environment local is local/);
  });
});

describe('the address rule', () => {
  it('tells public addresses from internal ones, IPv4-mapped IPv6 included', () => {
    for (const address of ['8.8.8.8', '2606:4700:4700::1111', '1.1.1.1']) assert.equal(isPublicAddress(address), true, address);
    for (const address of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      '::ffff:7f00:1',
      '::127.0.0.1',
      'not-an-ip',
    ]) {
      assert.equal(isPublicAddress(address), false, address);
    }
  });
});

describe('secrets in messages', () => {
  it('a run error that carries a resolved secret reaches the receiver redacted', async () => {
    const { rememberSecret } = await import('../../src/lib/redaction.ts');
    rememberSecret('tokenSECRET6666');
    await withContext(root, (ctx) =>
      deliver(ctx, eventMessage(ctx, 'run_failed', { summary: 'x', error: 'GET https://api.example.com/?key=tokenSECRET6666 failed' }), [
        { target: { type: 'webhook', url: receiver.url, events: ['all'] }, origin: 'environment' },
      ]),
    );
    assert.equal(receiver.requests.length, 1);
    assert.doesNotMatch(receiver.requests[0]!.body, LEAK);
    assert.match(receiver.requests[0]!.body, /\[REDACTED\]/);
  });
});

// The pipeline file is restored for any later reader of the workspace.
after(async () => writeFile(pipelineFile(), notifyPipeline()).catch(() => undefined));
