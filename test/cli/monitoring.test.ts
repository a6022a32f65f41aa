/** `convergence monitoring setup|list` as a user runs them (the built CLI) against the Cloud Monitoring and Logging fakes. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXAMPLE_TENANT, installExample } from '../../src/services/example.ts';
import type { MonitoringListResult, MonitoringSetupResult } from '../../src/services/monitoring/setup.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { createRunService, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const WRITE = /^(Create|Update|Delete)/;
let fakes: CloudFakes;
let root: string;

/** Writes to Cloud Monitoring and to Logging's metrics (not the Run service the test deploys). */
const writeCount = () => fakes.grpc.calls().filter((c) => /monitoring|MetricsServiceV2/.test(c.service) && WRITE.test(c.method)).length;
const run = (args: string[]) => runCli(args, { cwd: root, env: fakes.vars });
const json = <R>(args: string[]) => runJson<R>(args, { cwd: root, env: fakes.vars });

before(async () => {
  fakes = await startCloudFakes();
  root = await newWorkspace('monitoring-cli');
  const lines = [
    fakes.yaml('cloud').trimEnd(),
    '    production: true',
    '    notifications:',
    '      - { type: pubsub, topic: pipeline-events, events: [all] }',
    '      - { type: slack, url_secret: slack_ops_webhook, events: [run_failed] }',
  ];
  await appendFile(path.join(root, 'convergence.yaml'), `${lines.join('\n')}\n`);
  await createRunService(fakes);
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

describe('monitoring setup and list (built CLI)', () => {
  it('--dry-run --json plans everything and writes nothing', async () => {
    const r = await json<MonitoringSetupResult>(['monitoring', 'setup', '--env', 'cloud', '--dry-run']);
    assert.equal(r.exitCode, 0, show(r));
    const result = r.envelope.result!;
    assert.equal(result.dryRun, true);
    assert.equal(result.created, 2 + 1 + 1 + 8, JSON.stringify(result.resources.map((x) => `${x.kind}:${x.id}:${x.action}`)));
    assert.equal(writeCount(), 0);
    assert.ok(
      r.envelope.warnings.some((w) => /Slack app/.test(w)),
      show(r),
    );
  });

  it('refuses a production environment without --yes in a non-interactive session (exit 2), writing nothing', async () => {
    const r = await json<never>(['monitoring', 'setup', '--env', 'cloud']);
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error!.message, /production environment "cloud"/);
    assert.match(r.envelope.error!.suggestion ?? '', /--yes/);
    assert.equal(writeCount(), 0);
  });

  it('--yes creates it all; a second run prints "No changes" and writes nothing', async () => {
    const r = await json<MonitoringSetupResult>(['monitoring', 'setup', '--env', 'cloud', '--yes']);
    assert.equal(r.exitCode, 0, show(r));
    assert.equal(r.envelope.result!.created, 2 + 1 + 1 + 8);
    const writes = writeCount();
    const again = await run(['monitoring', 'setup', '--env', 'cloud']);
    assert.equal(again.exitCode, 0, show(again));
    assert.match(again.stdout, /^No changes: the monitoring of cloud in project demo-project is up to date/m, show(again));
    assert.match(again.stdout, /^policy convergence cloud: API error rate > 0\.1%: unchanged$/m);
    assert.equal(writeCount(), writes);
  });

  it('lists what exists with --json', async () => {
    const r = await json<MonitoringListResult>(['monitoring', 'list', '--env', 'cloud']);
    assert.equal(r.exitCode, 0, show(r));
    const kinds = r.envelope.result!.resources.map((x) => `${x.kind}:${x.state}`);
    assert.equal(kinds.filter((k) => k === 'alert_policy:ENABLED').length, 8, kinds.join('\n'));
    assert.ok(kinds.includes('notification_channel:ENABLED'));
    assert.ok(kinds.includes('log_metric:PRESENT'));
    const table = await run(['monitoring', 'list', '--env', 'cloud']);
    assert.match(table.stdout, /uptime_check\s+health/);
  });

  it('refuses the local environment with exit 2', async () => {
    const r = await json<never>(['monitoring', 'setup']);
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error!.message, /no Cloud Monitoring/);
  });
});

describe('the line the log-based metrics count', () => {
  it('a run stopped by data quality writes one labelled ERROR line with its status and exit code 4', async () => {
    const ws = await newBootstrappedWorkspace('monitoring-job');
    await installExample(ws);
    const file = path.join(ws, 'configs', EXAMPLE_TENANT, 'pipelines', 'p_usage_daily.yml');
    const yaml = await readFile(file, 'utf8');
    assert.ok(yaml.includes('values: [anthropic, openai, cursor]'));
    await writeFile(file, yaml.replace('values: [anthropic, openai, cursor]', 'values: [nobody]'));
    await withContext(ws, async (ctx) => {
      await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'Acme', plan: 'scale' });
      await pushPipelines(ctx, { tenantId: EXAMPLE_TENANT, pipelineId: 'p_usage_daily' });
    });
    const r = await runCli(['job', 'run-pipeline', '--tenant', EXAMPLE_TENANT, '--pipeline', 'p_usage_daily'], {
      cwd: ws,
      env: { CLOUD_RUN_JOB: 'convergence-jobs', CLOUD_RUN_EXECUTION: 'convergence-jobs-m0n1t' },
    });
    assert.equal(r.exitCode, 4, show(r));
    type Line = Record<string, unknown> & { severity: string; 'logging.googleapis.com/labels': Record<string, string> };
    const lines = r.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Line);
    // What convergence/runs_failed and convergence/dq_failed select: severity ERROR, a run_id label, a status.
    const ends = lines.filter((l) => l.severity === 'ERROR' && l['logging.googleapis.com/labels']['run_id'] && 'status' in l);
    assert.equal(ends.length, 1, show(r));
    assert.equal(ends[0]!['status'], 'FAILED');
    assert.equal(ends[0]!['exitCode'], 4);
    assert.equal(ends[0]!['logging.googleapis.com/labels']['tenant_id'], EXAMPLE_TENANT);
    assert.equal(ends[0]!['logging.googleapis.com/labels']['pipeline_id'], 'p_usage_daily');
  });
});
