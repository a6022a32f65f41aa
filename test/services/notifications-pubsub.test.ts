/**
 * Pub/Sub notifications through the official @google-cloud/pubsub client against the Publisher
 * fake: the message as JSON data with the attributes subscriptions filter on, a missing topic and
 * a publisher without permission refused as Google refuses them, every delivery recorded in
 * BigQuery.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { deliver } from '../../src/services/notifications/deliver.ts';
import { eventMessage } from '../../src/services/notifications/messages.ts';
import { sendTestNotifications } from '../../src/services/notifications/test-send.ts';
import { targetsFor } from '../../src/services/notifications/targets.ts';
import { METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE } from '../../src/services/metadata/tables.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TOPIC = 'pipeline-events-cloud';
let fakes: CloudFakes;
let root: string;
let topicName: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  topicName = fakes.pubsub.createTopic(CLOUD_PROJECT, TOPIC);
  root = await newWorkspace('notify-pubsub');
  await appendFile(
    path.join(root, 'convergence.yaml'),
    `${fakes.yaml('cloud')}    notifications:\n      - { type: pubsub, topic: ${TOPIC}, events: [all] }\n      - { type: pubsub, topic: missing-topic, events: [run_failed] }\n`,
  );
  await withContext(root, (ctx) => bootstrap(ctx), { env: 'cloud' });
});

after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

beforeEach(() => {
  fakes.pubsub.granted = new Set(['pubsub.topics.publish', 'pubsub.topics.get']);
});

const recorded = () =>
  withContext(
    root,
    async (ctx) =>
      (await ctx.backends.warehouse()).select(METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE, { orderBy: [['created_at', 'asc']] }),
    { env: 'cloud' },
  );

describe('Pub/Sub notifications', () => {
  it('publishes the message as JSON data with event, env, tenant_id, pipeline_id and status attributes', async () => {
    const deliveries = await withContext(
      root,
      (ctx) => {
        const message = eventMessage(ctx, 'run_failed', {
          summary: 'Run r1 of p_usage_daily (tenant acme_corp) failed',
          tenant_id: 'acme_corp',
          pipeline_id: 'p_usage_daily',
          run_id: '00000000-0000-4000-8000-000000000001',
          status: 'FAILED',
          exit_code: 3,
          error: 'step build failed',
        });
        return deliver(ctx, message, targetsFor(ctx).slice(0, 1));
      },
      { env: 'cloud' },
    );
    assert.deepEqual(
      deliveries.map((d) => [d.outcome, d.attempts]),
      [['DELIVERED', 1]],
    );
    const [published] = fakes.pubsub.published(topicName);
    assert.deepEqual(published?.attributes, {
      event: 'run_failed',
      env: 'cloud',
      tenant_id: 'acme_corp',
      pipeline_id: 'p_usage_daily',
      status: 'FAILED',
    });
    const data = JSON.parse(published!.data.toString('utf8')) as Record<string, unknown>;
    assert.equal(data.event, 'run_failed');
    assert.equal(data.exit_code, 3);
    assert.equal(data.error, 'step build failed');
    assert.equal(deliveries[0]!.detail, `message ${published!.messageId}`);
  });

  it("notifications test reaches the topic, and a missing topic fails once with Google's NOT_FOUND", async () => {
    const before = fakes.pubsub.published(topicName).length;
    const report = await withContext(root, (ctx) => sendTestNotifications(ctx, {}), { env: 'cloud' });
    assert.equal(report.ok, false);
    const [good, missing] = report.deliveries;
    assert.equal(good?.outcome, 'DELIVERED');
    assert.equal(fakes.pubsub.published(topicName).length, before + 1);
    assert.equal(fakes.pubsub.published(topicName).at(-1)?.attributes.event, 'test');
    assert.equal(missing?.outcome, 'FAILED');
    assert.equal(missing?.attempts, 1, 'NOT_FOUND is not retried');
    assert.match(missing!.detail, /Resource not found \(resource=missing-topic\)/);
    const rows = await recorded();
    const tests = rows.filter((r) => r.event === 'test');
    assert.deepEqual(tests.map((r) => [r.event, r.target, r.outcome]).sort(), [
      ['test', 'topic missing-topic', 'FAILED'],
      ['test', `topic ${TOPIC}`, 'DELIVERED'],
    ]);
  });

  it('a caller without pubsub.topics.publish gets PERMISSION_DENIED, reported as an auth failure and not retried', async () => {
    fakes.pubsub.granted.delete('pubsub.topics.publish');
    const deliveries = await withContext(
      root,
      (ctx) => deliver(ctx, eventMessage(ctx, 'test', { summary: 'x' }), targetsFor(ctx).slice(0, 1)),
      { env: 'cloud' },
    );
    assert.equal(deliveries[0]?.outcome, 'FAILED');
    assert.equal(deliveries[0]?.auth, true);
    assert.equal(deliveries[0]?.attempts, 1);
    assert.match(deliveries[0]!.detail, /User not authorized to perform this action/);
  });

  it('an UNAVAILABLE publish is retried and lands', async () => {
    const before = fakes.pubsub.published(topicName).length;
    fakes.grpc.inject({ method: 'Publish', code: 14, message: 'The service was unable to fulfill your request.' });
    const deliveries = await withContext(
      root,
      (ctx) => deliver(ctx, eventMessage(ctx, 'test', { summary: 'x' }), targetsFor(ctx).slice(0, 1)),
      { env: 'cloud' },
    );
    assert.deepEqual([deliveries[0]?.outcome, deliveries[0]?.attempts], ['DELIVERED', 2]);
    assert.equal(fakes.pubsub.published(topicName).length, before + 1);
  });
});
