/** monitoring setup|list against the Cloud Logging metrics and Cloud Monitoring fakes, through the official clients. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AlertPolicyServiceClient } from '@google-cloud/monitoring';
import { isConvergenceError, usageError } from '../../src/lib/errors.ts';
import { listMonitoring, setupMonitoring, type MonitoringSetupResult } from '../../src/services/monitoring/setup.ts';
import { CLOUD_PROJECT, CLOUD_SERVICE, createRunService, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { fakeClientOptions } from '../fakes/grpc/client-options.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const HOOK_SECRET_VALUE = 'https://hooks.example.net/services/T000/B000/zq8VfL2mXc3pWn7rTy5u';
const INLINE_TOKEN = 'inlineTokenValue9f8e7d6c';
const WRITE = /^(Create|Update|Delete)/;

let fakes: CloudFakes;
let root: string;
let envCounter = 0;

interface EnvOptions {
  production?: boolean;
  notifications?: string[];
  /** The Cloud Run service of the environment; false leaves the setting out. */
  service?: string | false;
}

const DEFAULT_TARGETS = [
  `{ type: webhook, url: "https://alerts.example.com/convergence?token=${INLINE_TOKEN}", events: [run_failed, dq_failed] }`,
  '{ type: webhook, url_secret: ops_hook_url, events: [all] }',
  '{ type: pubsub, topic: pipeline-events, events: [all] }',
  '{ type: slack, url_secret: slack_ops_webhook, events: [run_failed] }',
  '{ type: webhook, url: "https://deploys.example.com/hook", events: [deploy_rolled_back] }',
];

/** A fresh cloud environment per test, so the channels and policies of one test never meet another's. */
async function addEnv(options: EnvOptions = {}): Promise<string> {
  const name = `mon${++envCounter}`;
  let lines = fakes.yaml(name).trimEnd().split('\n');
  if (options.service !== undefined) {
    lines = lines.filter((l) => !l.startsWith('    service:'));
    if (options.service) lines.push(`    service: ${options.service}`);
  }
  if (options.production) lines.push('    production: true');
  const targets = options.notifications ?? DEFAULT_TARGETS;
  if (targets.length) lines.push('    notifications:', ...targets.map((t) => `      - ${t}`));
  await appendFile(path.join(root, 'convergence.yaml'), `${lines.join('\n')}\n`);
  return name;
}

const writeCount = () => fakes.grpc.calls().filter((c) => WRITE.test(c.method)).length;

const setup = (env: string, options: Parameters<typeof setupMonitoring>[1] = {}) =>
  withContext(root, (ctx) => setupMonitoring(ctx, options), { env });

async function expectExit(promise: Promise<unknown>, exitCode: number): Promise<Error & { suggestion?: string; code?: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    assert.equal(err.exitCode, exitCode, err.message);
    return err as Error & { suggestion?: string };
  }
  assert.fail(`expected exit ${exitCode}, it succeeded`);
}

const actions = (result: MonitoringSetupResult, kind: string) =>
  result.resources.filter((r) => r.kind === kind).map((r) => `${r.id}:${r.action}`);

const ownedPolicies = (env: string) =>
  fakes.monitoring.policies().filter((p) => (p.userLabels as Record<string, string>)['convergence_env'] === env);

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('monitoring');
  await createRunService(fakes);
  await addEnv();
  await withContext(root, async (ctx) => (await ctx.backends.secrets()).put(null, 'ops_hook_url', HOOK_SECRET_VALUE), { env: 'mon1' });
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

describe('monitoring setup', () => {
  it('creates the log-based metrics, channels, uptime check and alert policies, wired together', async () => {
    const warnings: string[] = [];
    const result = await withContext(
      root,
      async (ctx) => {
        const r = await setupMonitoring(ctx);
        warnings.push(...ctx.warnings);
        return r;
      },
      { env: 'mon1' },
    );
    assert.deepEqual(actions(result, 'log_metric'), ['convergence/runs_failed:create', 'convergence/dq_failed:create']);
    const channels = result.resources.filter((r) => r.kind === 'notification_channel');
    assert.deepEqual(
      channels.map((c) => c.action),
      ['create', 'create', 'create', 'skipped', 'skipped'],
    );
    assert.match(channels[3]!.reason!, /Slack app/);
    assert.match(channels[4]!.reason!, /no alerting event/);
    assert.ok(
      warnings.some((w) => /notifications\[3\].*Slack app/.test(w)),
      warnings.join('\n'),
    );
    assert.deepEqual(actions(result, 'uptime_check'), ['health:create']);
    assert.deepEqual(actions(result, 'alert_policy'), [
      'error-rate:create',
      'availability:create',
      'latency-p50:create',
      'latency-p95:create',
      'latency-p99:create',
      'runs-failed:create',
      'dq-failed:create',
      'uptime:create',
    ]);
    assert.equal(result.created, 2 + 3 + 1 + 8);

    // The metrics count the run's labelled end line, by tenant and pipeline.
    const metric = fakes.logMetrics.metric(CLOUD_PROJECT, 'convergence/runs_failed')!;
    assert.match(String(metric.filter), /jsonPayload\.status=\("FAILED" OR "TIMEOUT"\)/);
    assert.deepEqual(metric.labelExtractors, { tenant_id: 'EXTRACT(labels.tenant_id)', pipeline_id: 'EXTRACT(labels.pipeline_id)' });

    // Channels: the secret URL reached Monitoring, and nothing else.
    const stored = fakes.monitoring.channels();
    const hook = stored.find((c) => (c.labels as Record<string, string>).url === HOOK_SECRET_VALUE);
    assert.ok(hook, 'the url_secret webhook channel carries the secret URL');
    const topic = stored.find((c) => c.type === 'pubsub')!;
    assert.equal((topic.labels as Record<string, string>).topic, `projects/${CLOUD_PROJECT}/topics/pipeline-events`);
    const shown = JSON.stringify(result) + warnings.join('\n');
    assert.ok(!shown.includes(HOOK_SECRET_VALUE) && !shown.includes('zq8VfL2mXc3pWn7rTy5u'), 'the secret URL is never in the result');
    assert.ok(!shown.includes(INLINE_TOKEN), 'a token in an inline URL is not shown');
    assert.ok(shown.includes('(secret ops_hook_url)'));

    // Policies: the uptime policy names the check that was made; audiences pick their channels.
    const policies = ownedPolicies('mon1');
    const byId = (id: string) => policies.find((p) => (p.userLabels as Record<string, string>)['convergence_id'] === id)!;
    const check = fakes.monitoring.uptimeChecks()[0]!;
    assert.match(String((check.monitoredResource as { labels: Record<string, string> }).labels['host']), /\.a\.run\.app$/);
    assert.equal((check.httpCheck as Record<string, unknown>).path, '/health');
    assert.deepEqual((check.httpCheck as { serviceAgentAuthentication: unknown }).serviceAgentAuthentication, { type: 'OIDC_TOKEN' });
    const checkId = String(check.name).split('/').at(-1);
    const uptimeCondition = (byId('uptime').conditions as Array<{ conditionThreshold: { filter: string } }>)[0]!;
    assert.match(uptimeCondition.conditionThreshold.filter, new RegExp(`check_id="${checkId}"`));
    const inlineHook = stored.find((c) => String((c.labels as Record<string, string>).url).includes(INLINE_TOKEN))!;
    assert.equal((byId('error-rate').notificationChannels as string[]).length, 3);
    assert.deepEqual([...(byId('dq-failed').notificationChannels as string[])].sort(), [inlineHook.name, hook.name, topic.name].sort());
    assert.equal((byId('runs-failed').notificationChannels as string[]).length, 3);
    const errorRate = (byId('error-rate').conditions as Array<{ conditionThreshold: Record<string, unknown> }>)[0]!.conditionThreshold;
    assert.match(String(errorRate.filter), /response_code_class="5xx"/);
    assert.match(String(errorRate.denominatorFilter), new RegExp(`service_name="${CLOUD_SERVICE}"`));
    assert.equal(errorRate.thresholdValue, 0.001);
  });

  it('changes nothing when run again: no changes and not one write call', async () => {
    const before = writeCount();
    const result = await setup('mon1');
    assert.equal(writeCount(), before, 'no create, update or delete call');
    assert.equal(result.created + result.updated + result.replaced + result.deleted, 0);
    assert.equal(result.unchanged, 2 + 3 + 1 + 8);
  });

  it('puts back a field changed by hand with one update whose mask names only that field', async () => {
    const policy = ownedPolicies('mon1').find((p) => (p.userLabels as Record<string, string>)['convergence_id'] === 'latency-p95')!;
    const client = new AlertPolicyServiceClient(fakeClientOptions(fakes.grpc.port));
    try {
      await client.updateAlertPolicy({
        alertPolicy: { name: String(policy.name), displayName: 'renamed in the console' },
        updateMask: { paths: ['display_name'] },
      });
    } finally {
      await client.close();
    }
    const start = fakes.grpc.calls().length;
    const result = await setup('mon1');
    const made = fakes.grpc
      .calls()
      .slice(start)
      .filter((c) => WRITE.test(c.method));
    assert.deepEqual(
      made.map((c) => c.method),
      ['UpdateAlertPolicy'],
    );
    assert.deepEqual((made[0]!.request.updateMask as { paths: string[] }).paths, ['display_name']);
    const updated = result.resources.find((r) => r.id === 'latency-p95')!;
    assert.equal(updated.action, 'update');
    assert.deepEqual(updated.changes, [
      { field: 'display_name', from: 'renamed in the console', to: 'convergence mon1: API latency P95 > 500 ms' },
    ]);
  });

  it('follows a changed health path in convergence.yaml with one uptime check update masked to what changed', async () => {
    const env = await addEnv({ notifications: [] });
    await setup(env);
    await appendFile(path.join(root, 'convergence.yaml'), '    canary: { health_path: /ready }\n');
    const start = fakes.grpc.calls().length;
    const result = await setup(env);
    const made = fakes.grpc
      .calls()
      .slice(start)
      .filter((c) => WRITE.test(c.method));
    assert.deepEqual(
      made.map((c) => c.method),
      ['UpdateUptimeCheckConfig'],
    );
    assert.deepEqual((made[0]!.request.updateMask as { paths: string[] }).paths, ['display_name', 'http_check']);
    assert.deepEqual(result.resources.find((r) => r.kind === 'uptime_check')!.updateMask, ['display_name', 'http_check']);
    const check = fakes.monitoring.uptimeChecks().find((c) => (c.userLabels as Record<string, string>)['convergence_env'] === env)!;
    assert.equal((check.httpCheck as Record<string, unknown>).path, '/ready');
  });

  it('replaces an uptime check whose period was changed by hand (period cannot be updated) and points its policy at the new one', async () => {
    const env = await addEnv({ notifications: [] });
    await setup(env);
    const mine = () => fakes.monitoring.uptimeChecks().filter((c) => (c.userLabels as Record<string, string>)['convergence_env'] === env);
    const old = mine()[0]!;
    old.period = { seconds: '300', nanos: 0 };
    const start = fakes.grpc.calls().length;
    const result = await setup(env);
    const made = fakes.grpc
      .calls()
      .slice(start)
      .filter((c) => WRITE.test(c.method));
    assert.deepEqual(
      made.map((c) => c.method),
      ['CreateUptimeCheckConfig', 'UpdateAlertPolicy', 'DeleteUptimeCheckConfig'],
    );
    assert.deepEqual((made[1]!.request.updateMask as { paths: string[] }).paths, ['conditions']);
    assert.equal(result.resources.find((r) => r.kind === 'uptime_check')!.action, 'replace');
    const now = mine();
    assert.equal(now.length, 1);
    assert.notEqual(now[0]!.name, old.name);
    const policy = ownedPolicies(env).find((p) => (p.userLabels as Record<string, string>)['convergence_id'] === 'uptime')!;
    const filter = (policy.conditions as Array<{ conditionThreshold: { filter: string } }>)[0]!.conditionThreshold.filter;
    assert.ok(filter.includes(`check_id="${String(now[0]!.name).split('/').at(-1)}"`), filter);
  });

  it('leaves the uptime check out, with the reason, while the service is not deployed', async () => {
    const env = await addEnv({ notifications: [], service: 'convergence-api-later' });
    const warnings: string[] = [];
    const result = await withContext(
      root,
      async (ctx) => {
        const r = await setupMonitoring(ctx);
        warnings.push(...ctx.warnings);
        return r;
      },
      { env },
    );
    assert.ok(
      warnings.some((w) => /^no uptime check: Cloud Run service convergence-api-later has no URL yet/.test(w)),
      warnings.join('\n'),
    );
    const uptime = result.resources.find((r) => r.kind === 'uptime_check')!;
    assert.equal(uptime.action, 'skipped');
    assert.match(uptime.reason ?? '', /convergence-api-later has no URL yet: deploy it/);
    assert.ok(!result.resources.some((r) => r.id === 'uptime' && r.kind === 'alert_policy'));
    assert.equal(result.resources.filter((r) => r.kind === 'alert_policy' && r.action === 'create').length, 7);
  });

  it('asks for the service setting it needs (exit 2, CONFIG_MISSING)', async () => {
    const env = await addEnv({ notifications: [], service: false });
    const err = await expectExit(setup(env), 2);
    assert.equal(err.code, 'CONFIG_MISSING');
    assert.match(err.suggestion ?? '', new RegExp(`environments\\.${env}\\.service`));
  });

  it('leaves policies and channels it did not make alone, even one attached to its own policy', async () => {
    const foreignChannel = fakes.monitoring.seedChannel(CLOUD_PROJECT, {
      type: 'email',
      displayName: 'on-call',
      labels: { email_address: 'oncall@example.com' },
    });
    const foreignPolicy = fakes.monitoring.seedPolicy(CLOUD_PROJECT, {
      displayName: 'convergence mon1: API error rate > 0.1%',
      conditions: [{ displayName: 'hand made', conditionThreshold: { filter: 'metric.type="run.googleapis.com/request_count"' } }],
    });
    const mine = ownedPolicies('mon1').find((p) => (p.userLabels as Record<string, string>)['convergence_id'] === 'runs-failed')!;
    mine.notificationChannels = [...(mine.notificationChannels as string[]), String(foreignChannel.name)];
    const start = fakes.grpc.calls().length;
    const result = await setup('mon1');
    const made = fakes.grpc
      .calls()
      .slice(start)
      .filter((c) => WRITE.test(c.method));
    assert.deepEqual(made, [], 'the hand-attached channel stays on the policy; nothing is written');
    assert.equal(result.unchanged, 2 + 3 + 1 + 8);
    assert.ok(fakes.monitoring.policies().some((p) => p.name === foreignPolicy.name && p.displayName === foreignPolicy.displayName));
    assert.ok((mine.notificationChannels as string[]).includes(String(foreignChannel.name)));
  });

  it('drops a target that left convergence.yaml: its channel leaves the policies, then is deleted', async () => {
    const env = await addEnv({ notifications: DEFAULT_TARGETS.slice(2, 3) });
    await setup(env);
    assert.equal(fakes.monitoring.channels().filter((c) => (c.userLabels as Record<string, string>)['convergence_env'] === env).length, 1);
    // Same environment, the Pub/Sub target replaced by an inline webhook.
    const yaml = path.join(root, 'convergence.yaml');
    const { readFile, writeFile } = await import('node:fs/promises');
    const lines = (await readFile(yaml, 'utf8')).trimEnd().split('\n');
    assert.match(lines.at(-1)!, /type: pubsub/, 'this environment is the last one in the file');
    await writeFile(yaml, `${[...lines.slice(0, -1), `      - ${DEFAULT_TARGETS[0]}`].join('\n')}\n`);
    const result = await setup(env);
    assert.deepEqual(
      result.resources.filter((r) => r.kind === 'notification_channel').map((r) => r.action),
      ['create', 'delete'],
    );
    const left = fakes.monitoring.channels().filter((c) => (c.userLabels as Record<string, string>)['convergence_env'] === env);
    assert.deepEqual(
      left.map((c) => c.type),
      ['webhook_tokenauth'],
    );
  });

  it('--dry-run plans every resource and makes no write call', async () => {
    const env = await addEnv({ notifications: DEFAULT_TARGETS.slice(2, 3) });
    const before = writeCount();
    const result = await setup(env, { dryRun: true });
    assert.equal(writeCount(), before);
    assert.equal(result.dryRun, true);
    assert.deepEqual(actions(result, 'notification_channel'), [
      result.resources.find((r) => r.kind === 'notification_channel')!.id + ':create',
    ]);
    const uptime = result.resources.find((r) => r.id === 'uptime')!;
    assert.equal(uptime.action, 'create');
    assert.ok(uptime.changes.some((c) => c.to.includes('check_id="(new uptime check)"')));
    assert.ok(
      result.resources
        .find((r) => r.id === 'error-rate')!
        .changes.some((c) => c.field === 'notification_channels' && c.to.includes('(new channel')),
    );
  });

  it('asks before writing to a production environment, and writes nothing when refused', async () => {
    const env = await addEnv({ production: true, notifications: [] });
    const before = writeCount();
    const refused = await expectExit(setup(env), 2);
    assert.match(refused.message, /production environment/);
    assert.match(refused.suggestion ?? '', /--yes/);
    const asked: string[] = [];
    await expectExit(
      setup(env, {
        confirm: async (prompt, planned) => {
          asked.push(prompt.question);
          assert.ok(planned.created > 0);
          throw usageError('aborted: did not change the monitoring');
        },
      }),
      2,
    );
    assert.equal(writeCount(), before, 'nothing written without a yes');
    assert.match(asked[0]!, /PRODUCTION/);
    const result = await setup(env, { confirm: async () => undefined });
    assert.ok(result.created > 0);
    // Nothing to change: no question at all.
    const again = await setup(env);
    assert.equal(again.created + again.updated, 0);
  });

  it('reports a missing permission with exit 7 and the role that grants it', async () => {
    const env = await addEnv({ notifications: [] });
    fakes.monitoring.granted.delete('monitoring.alertPolicies.create');
    try {
      const err = await expectExit(setup(env), 7);
      assert.match(err.message, /monitoring\.alertPolicies\.create|permission denied/i);
      assert.match(err.suggestion ?? '', /roles\/monitoring\.editor/);
    } finally {
      fakes.monitoring.granted.add('monitoring.alertPolicies.create');
    }
    fakes.logMetrics.granted.delete('logging.logMetrics.get');
    try {
      const err = await expectExit(setup(env), 7);
      assert.match(err.suggestion ?? '', /roles\/logging\.configWriter/);
    } finally {
      fakes.logMetrics.granted.add('logging.logMetrics.get');
    }
  });

  it('refuses the local environment (exit 2)', async () => {
    const err = await expectExit(
      withContext(root, (ctx) => setupMonitoring(ctx), { env: 'local' }),
      2,
    );
    assert.match(err.message, /no Cloud Monitoring/);
  });

  it('names a missing url_secret (exit 8) and never repeats a secret that is not a URL (exit 2)', async () => {
    const missing = await addEnv({ notifications: ['{ type: webhook, url_secret: nowhere_hook, events: [all] }'] });
    const err = await expectExit(setup(missing), 8);
    assert.match(err.message, /nowhere_hook/);
    const bad = await addEnv({ notifications: ['{ type: webhook, url_secret: bad_hook, events: [all] }'] });
    const value = 'javascript:alert(document.cookie)//s3cr3tValue';
    await withContext(root, async (ctx) => (await ctx.backends.secrets()).put(null, 'bad_hook', value), { env: bad });
    const before = writeCount();
    const refused = await expectExit(setup(bad), 2);
    assert.match(refused.message, /bad_hook.*does not hold an http\(s\) URL/);
    assert.ok(!JSON.stringify({ m: refused.message, s: refused.suggestion }).includes('s3cr3tValue'));
    assert.equal(writeCount(), before, 'refused before any write');
  });
});

describe('monitoring list', () => {
  it('shows what exists for the environment and what setup would still create', async () => {
    const result = await withContext(root, (ctx) => listMonitoring(ctx), { env: 'mon1' });
    const policies = result.resources.filter((r) => r.kind === 'alert_policy');
    assert.equal(policies.length, 8);
    assert.ok(
      policies.every((p) => p.state === 'ENABLED'),
      JSON.stringify(policies),
    );
    assert.equal(result.resources.filter((r) => r.kind === 'notification_channel').length, 3);
    const fresh = await addEnv({ notifications: [] });
    const empty = await withContext(root, (ctx) => listMonitoring(ctx), { env: fresh });
    assert.ok(empty.resources.filter((r) => r.kind === 'alert_policy').every((p) => p.state === 'NOT_CREATED'));
    assert.ok(empty.resources.filter((r) => r.kind === 'log_metric').every((m) => m.state === 'PRESENT'));
  });
});
