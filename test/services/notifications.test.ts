/**
 * Notifications in process: a run's end posts to a webhook receiver on 127.0.0.1 (signed, retried
 * on 500 and 429, bounded when the receiver hangs) without changing the run's outcome; events of
 * quota refusals and dispatches; every delivery recorded.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { TIMESTAMP_HEADER } from '../../src/backends/notify/webhook.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import { installExample } from '../../src/services/example.ts';
import { METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE, T } from '../../src/services/metadata/tables.ts';
import { runPipeline, type RunSummary } from '../../src/services/pipelines/run.ts';
import { reserveRun, settleRun } from '../../src/services/quotas.ts';
import { dispatchDueSchedules } from '../../src/services/schedules/dispatch.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { notifyPipeline, setEnvironmentNotifications } from '../helpers/notifications.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { signatureValid, startReceiver, type Receiver } from '../helpers/webhook-receiver.ts';

const TENANT = 'acme_corp';
const SIGNING_KEY = 'whsec-0123456789abcdef-signing';

after(cleanupAll);

let root: string;
let receiver: Receiver;
const pipelineFile = () => path.join(root, 'configs', TENANT, 'pipelines', 'p_notify.yml');

const run = () =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_notify', runDate: '2025-01-07', fullRefresh: true }));
const bodies = () => receiver.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
const deliveries = () =>
  withWarehouse(root, (w) => w.select(METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE, { orderBy: [['created_at', 'asc']] }));

before(async () => {
  receiver = await startReceiver();
  root = await newBootstrappedWorkspace('notify');
  await installExample(root);
  await withContext(root, async (ctx) => {
    await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
    await (await ctx.backends.secrets()).put(null, 'hook_key', SIGNING_KEY);
  });
  await setEnvironmentNotifications(root, [
    `{ type: webhook, url: "${receiver.url}", signing_secret: hook_key, events: [run_failed, dq_failed, run_recovered, quota_exhausted, dispatch_failed] }`,
  ]);
  await writeFile(pipelineFile(), notifyPipeline());
});

afterEach(async () => {
  receiver.reset();
  await withWarehouse(root, (w) => w.delete(METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE, {}));
});

after(() => receiver.close());

describe('notifications of a run', () => {
  it('a run failed by data quality posts one signed dq_failed document and keeps its exit code 4', async () => {
    const summary = await run();
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, ExitCode.dataQualityFailed);
    assert.equal(receiver.requests.length, 1, 'closing the context waited for the delivery');
    const [request] = receiver.requests;
    assert.equal(request!.headers['content-type'], 'application/json');
    assert.equal(request!.headers['x-convergence-event'], 'dq_failed');
    assert.ok(signatureValid(SIGNING_KEY, request!), 'HMAC-SHA256 of "<timestamp>.<body>" under the signing secret');
    const age = Date.now() / 1000 - Number(request!.headers[TIMESTAMP_HEADER]);
    assert.ok(age >= 0 && age < 60, 'the signed timestamp is now');
    assert.ok(
      !signatureValid(SIGNING_KEY, { ...request!, body: request!.body.replace('dq_failed', 'run_failed') }),
      'a changed body fails',
    );
    assert.ok(
      !signatureValid(SIGNING_KEY, { ...request!, headers: { ...request!.headers, [TIMESTAMP_HEADER]: '1' } }),
      'a changed timestamp fails',
    );

    const body = JSON.parse(request!.body) as Record<string, unknown>;
    assert.equal(body.event, 'dq_failed');
    assert.equal(body.env, 'local');
    assert.equal(body.tenant_id, TENANT);
    assert.equal(body.pipeline_id, 'p_notify');
    assert.equal(body.run_id, summary.runId);
    assert.equal(body.status, 'FAILED');
    assert.equal(body.exit_code, 4);
    assert.match(String(body.error), /provider/);
    assert.equal((body.counts as Record<string, number>).rows_processed, summary.rowsProcessed);
    assert.deepEqual(body.links, { logs: `convergence pipeline logs ${summary.runId}` });
    assert.ok(!request!.body.includes(SIGNING_KEY));

    const [row] = await deliveries();
    assert.equal(row?.event, 'dq_failed');
    assert.equal(row?.outcome, 'DELIVERED');
    assert.equal(Number(row?.attempts), 1);
    assert.equal(row?.pipeline_logging_id, summary.runId);
    assert.equal(row?.target, new URL(receiver.url).origin, 'the target is recorded without its path');
    assert.equal(row?.target_origin, 'environment');
    assert.equal(row?.detail, 'HTTP 200');
  });

  it('retries a 500 and a 429 (after its Retry-After) and delivers on the third attempt', async () => {
    receiver.script({ status: 500 }, { status: 429, headers: { 'retry-after': '1' } });
    await run();
    assert.equal(receiver.requests.length, 3);
    const gap = receiver.requests[2]!.at - receiver.requests[1]!.at;
    assert.ok(gap >= 900, `waited the 1 s Retry-After asked for (${gap} ms)`);
    const [row] = await deliveries();
    assert.equal(row?.outcome, 'DELIVERED');
    assert.equal(Number(row?.attempts), 3);
  });

  it('does not retry a 400, and the run keeps its own exit code', async () => {
    receiver.script({ status: 400 });
    const summary = await run();
    assert.equal(summary.exitCode, ExitCode.dataQualityFailed);
    assert.equal(receiver.requests.length, 1);
    const [row] = await deliveries();
    assert.equal(row?.outcome, 'FAILED');
    assert.match(String(row?.detail), /answered HTTP 400/);
  });

  it('a receiver that hangs holds the run back no longer than the delivery bound', async () => {
    receiver.script('hang', 'hang', 'hang');
    let summary: RunSummary | undefined;
    let ended = 0;
    const started = Date.now();
    await withContext(root, async (ctx) => {
      summary = await runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_notify', runDate: '2025-01-07', fullRefresh: true });
      ended = Date.now();
    });
    const waited = Date.now() - ended;
    assert.equal(summary?.exitCode, ExitCode.dataQualityFailed);
    assert.ok(waited < 12_000, `closing waited ${waited} ms for a hanging receiver (bound 10 s)`);
    assert.ok(ended - started < 60_000);
    const [row] = await deliveries();
    assert.equal(row?.outcome, 'FAILED');
    assert.ok(Number(row?.attempts) >= 2, 'a hung attempt is given up and tried again');
  });

  it('the first COMPLETE after a failure posts run_recovered; the next COMPLETE posts nothing', async () => {
    await run();
    await writeFile(pipelineFile(), notifyPipeline({ passing: true }));
    try {
      const recovered = await run();
      assert.equal(recovered.status, 'COMPLETE');
      const events = bodies().map((b) => b.event);
      assert.deepEqual(events, ['dq_failed', 'run_recovered']);
      assert.equal(bodies()[1]!.run_id, recovered.runId);
      await run();
      assert.equal(receiver.requests.length, 2, 'a second success is no recovery');
    } finally {
      await writeFile(pipelineFile(), notifyPipeline());
    }
  });

  it('a run refused for its quota posts quota_exhausted and still exits 6', async () => {
    const tenantId = 'quota_co';
    await withContext(root, async (ctx) => {
      await createTenant(ctx, { tenantId, name: 'Quota Co', plan: 'scale' });
      await (await ctx.backends.warehouse()).update(METADATA_DATASET, T.quotas, { daily_limit: 1 }, { tenant_id: tenantId });
      await reserveRun(ctx, tenantId, randomUUID());
      await settleRun(ctx, tenantId, 'succeeded');
    });
    const tenantDir = path.join(root, 'configs', tenantId);
    await import('node:fs/promises').then(({ cp }) => cp(path.join(root, 'configs', TENANT), tenantDir, { recursive: true }));
    await writeFile(path.join(tenantDir, 'pipelines', 'p_notify.yml'), notifyPipeline({ passing: true }));
    await rejectsWith(
      withContext(root, (ctx) => runPipeline(ctx, { tenantId, pipelineId: 'p_notify', runDate: '2025-01-07', fullRefresh: true })),
      ExitCode.quotaExceeded,
    );
    const [body] = bodies();
    assert.equal(body?.event, 'quota_exhausted');
    assert.equal(body?.tenant_id, tenantId);
    assert.equal(body?.status, 'REFUSED');
    assert.equal(body?.exit_code, ExitCode.quotaExceeded);
  });

  it("a pipeline's own notifications replace the environment's", async () => {
    await writeFile(
      pipelineFile(),
      notifyPipeline({ notifications: 'notifications: [{ type: webhook, url: "https://hooks.example.com/x", events: [run_timeout] }]' }),
    );
    try {
      const summary = await run();
      assert.equal(summary.exitCode, ExitCode.dataQualityFailed);
      assert.equal(receiver.requests.length, 0, 'the environment target is not used, and run_timeout did not happen');
      assert.deepEqual(await deliveries(), []);
    } finally {
      await writeFile(pipelineFile(), notifyPipeline());
    }
  });
});

describe('notifications of a dispatch', () => {
  it('a due schedule whose pipeline was never pushed posts dispatch_failed to the environment targets', async () => {
    const past = new Date(Date.now() - 60_000);
    await withWarehouse(root, (w) =>
      w.insert(METADATA_DATASET, T.schedules, [
        {
          schedule_id: 'sched-never-pushed',
          tenant_id: TENANT,
          pipeline_id: 'p_never_pushed',
          cron_expression: '0 6 * * *',
          timezone: 'UTC',
          is_active: true,
          next_run_at: past,
          created_at: past,
          updated_at: past,
        },
      ]),
    );
    const result = await withContext(root, (ctx) => dispatchDueSchedules(ctx, { taskIndex: 0, taskCount: 1 }));
    assert.equal(result.outcomes[0]?.status, 'NOT_STARTED');
    const [body] = bodies();
    assert.equal(body?.event, 'dispatch_failed');
    assert.equal(body?.pipeline_id, 'p_never_pushed');
    assert.equal(body?.run_id, result.outcomes[0]?.runId);
    assert.match(String(body?.summary), /Schedule sched-never-pushed of p_never_pushed \(tenant acme_corp\) could not start its run/);
  });
});
