/**
 * The cross-cutting CLI contract for every command of the built manifest: help with examples,
 * and --json printing exactly one envelope on stdout, on success and on each reachable failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FileLock } from '../../src/backends/lock/files.ts';
import { createKey } from '../../src/services/keys.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { manifestCommandIds, mapLimit, runCli, show, startServe, type CliResult, type Envelope } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { CLOUD_PROJECT, createRunJob, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { startFakeApi } from '../fakes/http-api.ts';
import { OAuthFake } from '../fakes/oauth.ts';
import { randomUUID } from 'node:crypto';
import { createRun } from '../../src/services/runs/store.ts';
import path from 'node:path';

after(cleanupAll);

let ids: string[];
before(async () => {
  ids = await manifestCommandIds();
});

/**
 * Asserts stdout is one JSON envelope and nothing else: it must be byte-identical to the
 * canonical rendering of what it parses to.
 */
function envelopeOf(r: CliResult, label: string): Envelope {
  let parsed: Envelope;
  try {
    parsed = JSON.parse(r.stdout) as Envelope;
  } catch (err) {
    assert.fail(`${label}: stdout is not JSON (${(err as Error).message})\n${show(r)}`);
  }
  assert.equal(r.stdout, `${JSON.stringify(parsed, null, 2)}\n`, `${label}: stdout holds exactly one envelope`);
  assert.equal(typeof parsed.status, 'number', label);
  assert.ok(Array.isArray(parsed.warnings), `${label}: warnings is an array`);
  assert.equal(parsed.status, r.exitCode, `${label}: envelope status equals the exit code`);
  return parsed;
}

function assertFailure(r: CliResult, label: string, exitCode: number, code: string): Envelope {
  assert.equal(r.exitCode, exitCode, `${label}\n${show(r)}`);
  const env = envelopeOf(r, label);
  assert.equal(env.result, undefined, label);
  assert.ok(env.error, `${label}: has an error`);
  assert.equal(env.error.exitCode, exitCode, label);
  assert.equal(env.error.code, code, label);
  assert.ok(env.error.message.length > 0, label);
  assert.ok(!r.stderr.includes(env.error.message), `${label}: the error is reported once, in the envelope`);
  return env;
}

describe('help', () => {
  it('the manifest lists the commands of DESIGN.md implemented so far', () => {
    for (const id of [
      'init',
      'bootstrap',
      'doctor',
      'tenant:create',
      'tenant:list',
      'tenant:show',
      'tenant:suspend',
      'tenant:resume',
      'tenant:delete',
      'tenant:credentials:set',
      'keys:create',
      'keys:list',
      'keys:revoke',
      'keys:rotate',
      'keys:admin:create',
      'pipeline:validate',
      'pipeline:list',
      'pipeline:run',
      'pipeline:push',
      'pipeline:runs',
      'pipeline:backfill',
      'pipeline:status',
      'pipeline:logs',
      'pipeline:cancel',
      'quota:show',
      'quota:reset',
      'maintenance:cleanup-orphans',
      'job',
      'scheduler:setup',
      'scheduler:list',
      'scheduler:run',
      'scheduler:delete',
      'deploy',
      'rollback',
      'monitoring:setup',
      'monitoring:list',
      'notifications:test',
      'serve',
      'docs:generate',
      'docs:serve',
    ]) {
      assert.ok(ids.includes(id), `${id} is in oclif.manifest.json`);
    }
  });

  it('every command has --help with at least one example that uses the binary name', async () => {
    const dir = await makeTempDir('help');
    const results = await mapLimit(ids, 2, (id) => runCli([...id.split(':'), '--help'], { cwd: dir }));
    ids.forEach((id, i) => {
      const r = results[i]!;
      const argv = id.split(':').join(' ');
      assert.equal(r.exitCode, 0, `${argv} --help\n${show(r)}`);
      assert.match(r.stdout, /^EXAMPLES$/m, `${argv} --help shows EXAMPLES`);
      const examples = r.stdout.slice(r.stdout.indexOf('EXAMPLES'));
      assert.ok(examples.includes(`$ convergence ${argv}`), `${argv}: an example runs \`convergence ${argv}\``);
      assert.match(r.stdout, /--json/, `${argv}: documents --json`);
    });
  });
});

describe('--json on every command', () => {
  let base: string;
  let ws: string;
  const covered = new Set<string>();

  let cloud: CloudFakes;
  before(async () => {
    base = await makeTempDir('json');
    ws = path.join(base, 'ws');
    cloud = await startCloudFakes();
  });
  after(() => cloud.stop());

  /** Runs one successful invocation with --json and returns its result. */
  async function ok<R = Record<string, unknown>>(
    id: string,
    args: string[] = [],
    options: { cwd?: string; input?: string; env?: Record<string, string> } = {},
  ): Promise<R> {
    const argv = [...id.split(':'), ...args, '--json'];
    const r = await runCli(argv, {
      cwd: options.cwd ?? ws,
      ...(options.input === undefined ? {} : { input: options.input }),
      ...(options.env ? { env: options.env } : {}),
    });
    assert.equal(r.exitCode, 0, `${argv.join(' ')}\n${show(r)}`);
    const env = envelopeOf(r, argv.join(' '));
    assert.equal(env.status, 0);
    assert.equal(env.error, undefined);
    assert.ok(env.result !== undefined, `${argv.join(' ')} has a result`);
    covered.add(id);
    return env.result as R;
  }

  it('one successful invocation per command prints exactly one envelope with status 0', async () => {
    const init = await ok<{ root: string; created: string[] }>('init', ['ws'], { cwd: base });
    assert.equal(init.root, ws);
    const boot = await ok<{ tablesCreated: string[] }>('bootstrap');
    assert.equal(boot.tablesCreated.length, 12);
    const doctor = await ok<{ ok: boolean }>('doctor');
    assert.equal(doctor.ok, true);
    const created = await ok<{ tenantId: string }>('tenant:create', [
      'json_co',
      '--name',
      'Json Co',
      '--plan',
      'scale',
      '--contact-email',
      'ops@json.example',
    ]);
    assert.equal(created.tenantId, 'json_co');
    const list = await ok<Array<{ tenantId: string }>>('tenant:list');
    assert.deepEqual(
      list.map((t) => t.tenantId),
      ['json_co'],
    );
    const shown = await ok<{ plan: string; contactEmail: string }>('tenant:show', ['json_co']);
    assert.deepEqual([shown.plan, shown.contactEmail], ['scale', 'ops@json.example']);
    assert.equal((await ok<{ status: string }>('tenant:suspend', ['json_co'])).status, 'SUSPENDED');
    assert.equal((await ok<{ status: string }>('tenant:resume', ['json_co'])).status, 'ACTIVE');
    const cred = await ok<{ name: string; replaced: boolean }>('tenant:credentials:set', ['json_co', 'usage_api_token'], {
      input: 'secret-token',
    });
    assert.deepEqual([cred.name, cred.replaced], ['usage_api_token', false]);
    const key = await ok<{ apiKey: string; apiKeyId: string; expiresAt: string }>('keys:create', [
      '--tenant',
      'json_co',
      '--expires-in',
      '90d',
    ]);
    assert.match(key.apiKey, /^json_co_api_/);
    assert.ok(Math.abs(Date.parse(key.expiresAt) - Date.now() - 90 * 86_400_000) < 600_000, `expiresAt ${key.expiresAt} is 90 days out`);
    const keys = await ok<Array<{ apiKeyId: string }>>('keys:list', ['--tenant', 'json_co']);
    assert.deepEqual(
      keys.map((k) => k.apiKeyId),
      [key.apiKeyId],
    );
    const rotated = await ok<{ created: { apiKeyId: string }; retired: Array<{ apiKeyId: string; revoked: boolean }> }>('keys:rotate', [
      '--tenant',
      'json_co',
      '--grace',
      '1h',
    ]);
    assert.deepEqual(
      rotated.retired.map((r) => [r.apiKeyId, r.revoked]),
      [[key.apiKeyId, false]],
    );
    const revoked = await ok<{ apiKeyId: string; changed: boolean; status: string }>('keys:revoke', [rotated.created.apiKeyId]);
    assert.deepEqual([revoked.apiKeyId, revoked.changed, revoked.status], [rotated.created.apiKeyId, true, 'REVOKED']);
    const admin = await ok<{ adminKey: string }>('keys:admin:create');
    assert.match(admin.adminKey, /^admin_/);
    const tenantDir = path.join(ws, 'configs', 'json_co');
    await writeFile(
      path.join(tenantDir, 'sources', 'usage_files.yml'),
      'source_id: usage_files\ntype: file\npath: usage_*.csv\nformat: csv\n',
    );
    await writeFile(path.join(tenantDir, 'sql', 'fct.sql'), "SELECT * FROM {{ ref('raw_usage') }}\n");
    await writeFile(
      path.join(tenantDir, 'pipelines', 'p_usage.yml'),
      [
        'pipeline_id: p_usage',
        'steps:',
        '  - { name: ingest, type: ingest, source_config: sources/usage_files.yml, destination: { table: raw_usage } }',
        '  - { name: fct, type: transform, sql: sql/fct.sql, destination: { table: fct_usage, write_mode: replace } }',
        '',
      ].join('\n'),
    );
    const validated = await ok<{ ok: boolean; pipelines: string[]; files: unknown[] }>('pipeline:validate', ['--tenant', 'json_co']);
    assert.deepEqual([validated.ok, validated.pipelines, validated.files.length], [true, ['p_usage'], 3]);
    const pipelines = await ok<Array<{ pipelineId: string; steps: string[] }>>('pipeline:list', ['--tenant', 'json_co']);
    assert.deepEqual(
      pipelines.map((p) => [p.pipelineId, p.steps]),
      [['p_usage', ['ingest:ingest', 'fct:transform']]],
    );
    await mkdir(path.join(ws, 'data', 'json_co'), { recursive: true });
    await writeFile(path.join(ws, 'data', 'json_co', 'usage_1.csv'), 'day,model,tokens\n2025-01-01,a,1\n2025-01-01,b,2\n');
    const pushed = await ok<Array<{ pipelineId: string; changed: boolean }>>('pipeline:push', ['--tenant', 'json_co']);
    assert.deepEqual(
      pushed.map((p) => [p.pipelineId, p.changed]),
      [['p_usage', true]],
    );
    const run = await ok<{ runId: string; status: string; rowsProcessed: number }>('pipeline:run', ['p_usage', '--tenant', 'json_co']);
    assert.deepEqual([run.status, run.rowsProcessed], ['COMPLETE', 4]);
    const runs = await ok<Array<{ runId: string }>>('pipeline:runs', ['--tenant', 'json_co']);
    assert.deepEqual(
      runs.map((r) => r.runId),
      [run.runId],
    );
    const status = await ok<{ run: { status: string }; steps: unknown[] }>('pipeline:status', [run.runId]);
    assert.deepEqual([status.run.status, status.steps.length], ['COMPLETE', 2]);
    const logs = await ok<unknown>('pipeline:logs', [run.runId]);
    assert.ok(logs);
    const backfill = await ok<{ counts: { complete: number } }>('pipeline:backfill', [
      'p_usage',
      '--tenant',
      'json_co',
      '--from',
      '2025-01-01',
      '--to',
      '2025-01-02',
    ]);
    assert.equal(backfill.counts.complete, 2);
    const live = randomUUID();
    await withContext(ws, (ctx) =>
      createRun(ctx, {
        runId: live,
        tenantId: 'json_co',
        pipelineId: 'p_usage',
        trigger: 'manual',
        runDate: '2030-01-01',
        parameters: {},
        timeoutAt: new Date(Date.now() + 3_600_000),
      }),
    );
    await ok('pipeline:cancel', [live]);
    const quota = await ok<{ tenantId: string }>('quota:show', ['--tenant', 'json_co']);
    assert.equal(quota.tenantId, 'json_co');
    await ok('quota:reset', ['--tenant', 'json_co', '--yes']);
    await ok('maintenance:cleanup-orphans', ['--dry-run']);
    await ok('job', ['reset-quotas', '--tenant', 'json_co']);
    const site = await ok<{ pipelines: number; dir: string }>('docs:generate', ['--tenant', 'json_co']);
    assert.equal(site.dir, path.join(ws, 'docs', 'json_co'));
    {
      const server = await startServe(ws, ['--json'], undefined, ['docs', 'serve', '--tenant', 'json_co']);
      assert.equal((await fetch(server.url)).status, 200);
      const r = await server.stop();
      assert.equal(r.exitCode, 0, show(r));
      assert.equal((envelopeOf(r, 'docs serve --json').result as { url: string }).url, server.url);
      covered.add('docs:serve');
    }
    {
      // serve runs until a signal: its envelope is printed when SIGTERM has stopped it.
      const server = await startServe(ws, ['--json']);
      assert.equal((await fetch(`${server.url}/health`)).status, 200);
      const r = await server.stop();
      assert.equal(r.exitCode, 0, show(r));
      const env = envelopeOf(r, 'serve --json');
      assert.equal(env.status, 0);
      assert.equal((env.result as { url: string }).url, server.url);
      covered.add('serve');
    }
    const plan = await ok<unknown[]>('scheduler:setup');
    assert.ok(plan);
    await ok('scheduler:list');
    await ok('scheduler:run', ['reset-daily-quotas']);
    // Commands that only act on a cloud environment run against the Google fakes.
    await appendFile(
      path.join(ws, 'convergence.yaml'),
      `${cloud.yaml('cloud')}    job: convergence-pipeline-cloud\n    service_account: convergence@demo-project.iam.gserviceaccount.com\n` +
        `    notifications:\n      - { type: pubsub, topic: pipeline-events-cloud, events: [all] }\n`,
    );
    cloud.pubsub.createTopic(CLOUD_PROJECT, 'pipeline-events-cloud');
    await ok('notifications:test', ['--env', 'cloud'], { env: cloud.vars });
    // Setup checks that the scheduler's account may start the job with overrides (roles/run.developer on it).
    await createRunJob(cloud, 'convergence-pipeline-cloud');
    cloud.run.grantedTo.set('convergence@demo-project.iam.gserviceaccount.com', new Set(['run.jobs.run', 'run.jobs.runWithOverrides']));
    await ok('scheduler:setup', ['--env', 'cloud'], { env: cloud.vars });
    await ok('scheduler:delete', ['dispatch-tenant-pipelines', '--env', 'cloud', '--yes'], { env: cloud.vars });
    const health = await startFakeApi(() => ({ body: { status: 'ok' } }));
    // The service is private: deploy's probes mint ID tokens from a service-account key.
    const oauth = await OAuthFake.start();
    try {
      const deployer = await oauth.writeKeyFile(ws, 'deployer@demo-project.iam.gserviceaccount.com');
      const deployEnv = { ...cloud.vars, CONVERGENCE_PROBE_URL: health.base, GOOGLE_APPLICATION_CREDENTIALS: deployer };
      await ok('bootstrap', ['--env', 'cloud'], { env: deployEnv });
      await ok('deploy', ['--env', 'cloud', '--image', 'img:1'], { env: deployEnv });
      await ok('deploy', ['--env', 'cloud', '--image', 'img:2', '--canary', '--steps', '50,100', '--interval', '200ms'], {
        env: deployEnv,
      });
      await ok('rollback', ['--env', 'cloud', '--yes'], { env: deployEnv });
      await ok('monitoring:setup', ['--env', 'cloud', '--dry-run'], { env: cloud.vars });
      await ok('monitoring:list', ['--env', 'cloud'], { env: cloud.vars });
      const setupPlan = await ok<{ dryRun: boolean; steps: unknown[]; doctor: unknown }>('setup', ['--env', 'cloud', '--dry-run'], {
        env: cloud.vars,
      });
      assert.deepEqual([setupPlan.dryRun, setupPlan.steps.length > 0, setupPlan.doctor], [true, true, null]);
      assert.ok(health.requests.length > 0 && health.requests.every((r) => r.headers.authorization?.startsWith('Bearer ')));
    } finally {
      await oauth.stop();
      await health.close();
    }
    // The run cancelled above is still PENDING (nobody ran it): --force ends it and deletes.
    const deleted = await ok<{ tenantId: string; keysRevoked: number; runsCancelled: string[] }>('tenant:delete', [
      'json_co',
      '--force',
      '--yes',
    ]);
    assert.deepEqual([deleted.tenantId, deleted.keysRevoked, deleted.runsCancelled], ['json_co', 1, [live]]);
  });

  it('covers every command of the manifest', () => {
    assert.deepEqual([...covered].sort(), ids, 'add a --json invocation for each new command');
  });
});

describe('--json failures: one envelope with the exit code as status', () => {
  let ws: string;
  before(async () => {
    ws = await newBootstrappedWorkspace('json-fail');
    await withContext(ws, async (ctx) => {
      await createTenant(ctx, { tenantId: 'full_co', name: 'Full', plan: 'starter' });
      for (let i = 0; i < 5; i++) await createKey(ctx, { tenantId: 'full_co' });
    });
  });

  it('2: validation (invalid tenant id) and usage (unknown flag, missing argument)', async () => {
    const invalid = assertFailure(
      await runCli(['tenant', 'create', 'ACME', '--name', 'x', '--json'], { cwd: ws }),
      'invalid id',
      2,
      'VALIDATION',
    );
    assert.match(invalid.error!.message, /invalid tenant id "ACME"/);
    assert.match(invalid.error!.suggestion ?? '', /3-50 characters/);
    assertFailure(await runCli(['tenant', 'list', '--bogus', '--json'], { cwd: ws }), 'unknown flag', 2, 'USAGE');
    assertFailure(await runCli(['tenant', 'create', '--json'], { cwd: ws }), 'missing argument', 2, 'USAGE');
  });

  it('2: no workspace', async () => {
    const dir = await makeTempDir('json-nows');
    const env = assertFailure(await runCli(['tenant', 'list', '--json'], { cwd: dir }), 'no workspace', 2, 'USAGE');
    assert.match(env.error!.suggestion ?? '', /convergence init/);
  });

  it('2: doctor before bootstrap carries its report in error.data', async () => {
    const fresh = await newWorkspace('json-doctor');
    const env = assertFailure(await runCli(['doctor', '--json'], { cwd: fresh }), 'doctor', 2, 'DOCTOR_FAILED');
    const report = (env.error!.data as { report: { checks: Array<{ name: string; status: string; fix?: string }> } }).report;
    const schema = report.checks.find((c) => c.name === 'schema');
    assert.equal(schema?.status, 'fail');
    assert.match(schema?.fix ?? '', /convergence bootstrap/);
  });

  it('5: a tenant lock held by another process', async () => {
    const lock = new FileLock({ dir: path.join(ws, '.convergence', 'locks') });
    const taken = await lock.acquire('tenant/held_co', { owner: 'other-operator', ttlMs: 120_000 });
    assert.ok(taken.acquired);
    try {
      const env = assertFailure(
        await runCli(['tenant', 'create', 'held_co', '--name', 'Held', '--json'], { cwd: ws }),
        'lock held',
        5,
        'LOCK_HELD',
      );
      assert.match(env.error!.message, /other-operator/);
    } finally {
      await lock.release(taken.lease);
    }
    const list = await runCli(['tenant', 'list', '--all', '--json'], { cwd: ws });
    assert.ok(!(envelopeOf(list, 'list').result as Array<{ tenantId: string }>).some((t) => t.tenantId === 'held_co'));
  });

  it('6: the 6th active key of a starter tenant', async () => {
    const env = assertFailure(
      await runCli(['keys', 'create', '--tenant', 'full_co', '--json'], { cwd: ws }),
      'key limit',
      6,
      'QUOTA_EXCEEDED',
    );
    assert.match(env.error!.message, /plan limit 5/);
    const list = await runCli(['keys', 'list', '--tenant', 'full_co', '--json'], { cwd: ws });
    assert.equal((envelopeOf(list, 'keys list').result as unknown[]).length, 5);
  });

  it('8: an unknown tenant', async () => {
    const env = assertFailure(await runCli(['tenant', 'show', 'nobody_co', '--json'], { cwd: ws }), 'not found', 8, 'NOT_FOUND');
    assert.match(env.error!.message, /tenant "nobody_co" not found/);
  });
});
