/**
 * Attack: a REST source whose API echoes the request (URL, query, headers) in its error body, or
 * in a 200 body, as many APIs do. Every secret the source renders into the request — in a header,
 * a query parameter, the URL path, URL userinfo, bearer and basic auth — must stay out of every
 * channel a user, an API caller or an operator reads: the CLI's --json envelope and its stderr,
 * `pipeline logs`, `pipeline status`, the tenant_step_logs and tenant_pipeline_runs rows,
 * GET /api/v1/pipelines/runs/{id} and the log lines of `convergence serve`, and the JSON log lines
 * of `convergence job run-pipeline`. Another tenant's secrets stay as they were.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicCredentials } from '../../src/lib/redaction.ts';
import { createKey } from '../../src/services/keys.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { pushPipelines } from '../../src/services/pipelines/push.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { runCli, show, startServe, type CliResult } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { waitFor } from '../server/helpers.ts';

after(cleanupAll);

const TENANT = 'acme_corp';
const OTHER = 'globex_inc';
/** Every secret carries SECRET and four digits, so any spelling of any of them is found by one pattern. */
const SECRETS = {
  hdr_tok: 'hdr-SECRET1111',
  param_tok: 'par am/SECRET2222+&=',
  path_tok: 'pathSECRET3333',
  bearer_tok: 'bearer.SECRET4444',
  basic_pw: 'basic:pw/SECRET5555',
};
const USERINFO_PASSWORD = 'uiSECRET6666';
const OTHER_SECRET = 'globex-SECRET7777';
const LEAK = /SECRET\d{4}/;
/** Secrets whose every spelling hides the marker: base64 of the basic-auth credentials. */
const HIDDEN = [basicCredentials('ann', SECRETS.basic_pw), basicCredentials('svc', USERINFO_PASSWORD)];

function assertNoSecret(text: string, where: string): void {
  const found = LEAK.exec(text);
  assert.equal(found, null, `a secret leaked in ${where}: …${found ? text.slice(Math.max(0, found.index - 120), found.index + 40) : ''}…`);
  for (const hidden of HIDDEN) assert.ok(!text.includes(hidden), `basic-auth credentials leaked in ${where}`);
}

/**
 * Fails every request under /fail with 401, echoing the credentials and the URL first (so they are
 * in the excerpt an error keeps); answers /ok with 200 rows and the same echo.
 */
function echoApi(): Promise<FakeApi> {
  return startFakeApi((req) => {
    const echo = `key=${req.headers['x-api-key']} authorization=${req.headers.authorization} url=${req.path}`;
    if (req.url.pathname.startsWith('/ok/')) return { body: { echo, data: [{ id: 1, note: 'echo' }] } };
    return { status: 401, body: { error: `refused ${echo}` } };
  });
}

describe('secrets rendered into REST requests never leave', () => {
  let root: string;
  let api: FakeApi;
  const runs = new Map<string, { runId: string; cli: CliResult }>();

  before(async () => {
    api = await echoApi();
    root = await newBootstrappedWorkspace('secrets');
    await allowFakeApis(root);
    await withContext(root, async (ctx) => {
      await createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' });
      await createTenant(ctx, { tenantId: OTHER, name: 'Globex', plan: 'scale' });
    });
    const dir = path.join(root, 'configs', TENANT);
    for (const sub of ['secrets', 'sources', 'pipelines']) await mkdir(path.join(dir, sub), { recursive: true });
    for (const [name, value] of Object.entries(SECRETS)) await writeFile(path.join(dir, 'secrets', `${name}.txt`), value, { mode: 0o600 });
    await mkdir(path.join(root, 'configs', OTHER, 'secrets'), { recursive: true });
    await writeFile(path.join(root, 'configs', OTHER, 'secrets', 'api_token.txt'), OTHER_SECRET, { mode: 0o600 });

    const port = new URL(api.base).port;
    const sources: Record<string, string> = {
      // Header, query parameter, URL path and bearer auth in one request.
      all: [
        `url: "${api.base}/fail/{{ secret('path_tok') }}/usage"`,
        `params: { q: "{{ secret('param_tok') }}", day: "{{ run_date }}" }`,
        `headers: { X-Api-Key: "{{ secret('hdr_tok') }}" }`,
        'auth: { type: bearer, secret: bearer_tok }',
      ].join('\n'),
      userinfo: `url: "http://svc:${USERINFO_PASSWORD}@127.0.0.1:${port}/fail/userinfo"`,
      basic: `url: "${api.base}/fail/basic"\nauth: { type: basic, username: ann, secret: basic_pw }`,
      // A 200 whose body echoes every header.
      ok: [
        `url: "${api.base}/ok/{{ secret('path_tok') }}"`,
        `params: { q: "{{ secret('param_tok') }}" }`,
        `headers: { X-Api-Key: "{{ secret('hdr_tok') }}" }`,
        'auth: { type: bearer, secret: bearer_tok }',
        'records_path: data',
      ].join('\n'),
    };
    for (const [name, body] of Object.entries(sources)) {
      await writeFile(
        path.join(dir, 'sources', `echo_${name}.yml`),
        `source_id: echo_${name}\ntype: rest_api\n${body}\nretry: { max_attempts: 1 }\n`,
      );
      await writeFile(
        path.join(dir, 'pipelines', `p_echo_${name}.yml`),
        `pipeline_id: p_echo_${name}\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/echo_${name}.yml, destination: { table: echo_${name} } }\n`,
      );
    }
    for (const name of Object.keys(sources)) {
      const cli = await runCli(['pipeline', 'run', `p_echo_${name}`, '--tenant', TENANT, '--json'], { cwd: root });
      const envelope = JSON.parse(cli.stdout) as { result?: { runId: string }; error?: { data?: { run?: { runId?: string } } } };
      const runId = envelope.result?.runId ?? envelope.error?.data?.run?.runId;
      assert.ok(runId, `no run id for p_echo_${name}\n${show(cli)}`);
      runs.set(name, { runId, cli });
    }
  });
  after(() => api.close());

  it('the API really received every secret and echoed it back', () => {
    const all = api.requests.find((r) => r.url.pathname === `/fail/${SECRETS.path_tok}/usage`);
    assert.ok(all, api.requests.map((r) => r.path).join(', '));
    assert.equal(all.headers['x-api-key'], SECRETS.hdr_tok);
    assert.equal(all.headers.authorization, `Bearer ${SECRETS.bearer_tok}`);
    assert.equal(all.url.searchParams.get('q'), SECRETS.param_tok);
    const userinfo = api.requests.find((r) => r.url.pathname === '/fail/userinfo');
    assert.equal(userinfo?.headers.authorization, `Basic ${basicCredentials('svc', USERINFO_PASSWORD)}`);
    const basic = api.requests.find((r) => r.url.pathname === '/fail/basic');
    assert.equal(basic?.headers.authorization, `Basic ${basicCredentials('ann', SECRETS.basic_pw)}`);
  });

  it('pipeline run: the --json envelope and stderr name the HTTP failure but no secret', () => {
    for (const [name, { cli }] of runs) {
      assertNoSecret(cli.all, `pipeline run p_echo_${name}`);
      if (name === 'ok') assert.equal(cli.exitCode, 0, show(cli));
      else {
        assert.equal(cli.exitCode, 3, show(cli));
        assert.match(cli.stdout, /HTTP 401/);
        assert.match(cli.stdout, /\[REDACTED\]/);
      }
    }
  });

  it('pipeline run --dry-run: the plan shows the URL without its credentials', async () => {
    for (const name of ['all', 'userinfo']) {
      const r = await runCli(['pipeline', 'run', `p_echo_${name}`, '--tenant', TENANT, '--dry-run', '--json'], { cwd: root });
      assert.equal(r.exitCode, 0, show(r));
      assert.match(r.stdout, /127\.0\.0\.1/);
      assertNoSecret(r.all, `pipeline run p_echo_${name} --dry-run`);
    }
  });

  it('pipeline logs and pipeline status, as text and as --json', async () => {
    for (const [name, { runId }] of runs) {
      for (const args of [
        ['pipeline', 'logs', runId],
        ['pipeline', 'logs', runId, '--json'],
        ['pipeline', 'status', runId],
        ['pipeline', 'status', runId, '--json'],
      ]) {
        const r = await runCli(args, { cwd: root });
        assert.equal(r.exitCode, 0, show(r));
        assertNoSecret(r.all, `${args.join(' ')} (p_echo_${name})`);
        if (name !== 'ok' && args[1] === 'logs') assert.match(r.all, /HTTP 401/);
      }
    }
  });

  it('tenant_step_logs and tenant_pipeline_runs rows', async () => {
    await withWarehouse(root, async (warehouse) => {
      const steps = await warehouse.select(METADATA_DATASET, T.stepLogs, { where: { tenant_id: TENANT } });
      const rows = await warehouse.select(METADATA_DATASET, T.runs, { where: { tenant_id: TENANT } });
      assert.equal(rows.length, runs.size);
      assert.ok(steps.some((s) => String(s.error_message).includes('HTTP 401')));
      assertNoSecret(JSON.stringify(steps), 'tenant_step_logs');
      assertNoSecret(JSON.stringify(rows), 'tenant_pipeline_runs');
    });
  });

  it('convergence serve: GET runs/{id}, a run started over the API, and the server log lines', async () => {
    const apiKey = await withContext(root, async (ctx) => (await createKey(ctx, { tenantId: TENANT })).apiKey);
    const server = await startServe(root, ['--log-level', 'info']);
    let stopped: CliResult | undefined;
    try {
      const get = (runId: string) => fetch(`${server.url}/api/v1/pipelines/runs/${runId}`, { headers: { 'x-api-key': apiKey } });
      for (const [name, { runId }] of runs) {
        const res = await get(runId);
        const text = await res.text();
        assert.equal(res.status, 200, text);
        assertNoSecret(text, `GET runs/${runId} (p_echo_${name})`);
      }
      const started = await fetch(`${server.url}/api/v1/pipelines/run/p_echo_all`, { method: 'POST', headers: { 'x-api-key': apiKey } });
      const startedText = await started.text();
      assert.equal(started.status, 202, startedText);
      assertNoSecret(startedText, 'POST run');
      const runId = (JSON.parse(startedText) as { pipeline_logging_id: string }).pipeline_logging_id;
      let body = '';
      await waitFor(
        async () => {
          body = await (await get(runId)).text();
          return /"status":"FAILED"/.test(body);
        },
        'the API run to fail',
        60_000,
        200,
      );
      assert.match(body, /HTTP 401/);
      assertNoSecret(body, 'GET runs/{id} of the API run');
    } finally {
      stopped = await server.stop();
    }
    assert.equal(stopped.exitCode, 0, show(stopped));
    assert.match(stopped.stdout, /"message":"run FAILED"|run FAILED/);
    assertNoSecret(stopped.all, 'convergence serve log lines');
  });

  it('convergence job run-pipeline: the JSON log lines', async () => {
    await withContext(root, async (ctx) => void (await pushPipelines(ctx, { tenantId: TENANT, pipelineId: 'p_echo_all' })));
    const r = await runCli(['job', 'run-pipeline'], {
      cwd: root,
      env: { CLOUD_RUN_JOB: 'convergence-jobs', CLOUD_RUN_EXECUTION: 'x1', CONVERGENCE_TENANT: TENANT, CONVERGENCE_PIPELINE: 'p_echo_all' },
    });
    assert.equal(r.exitCode, 3, show(r));
    assert.match(r.stdout, /HTTP 401/);
    assertNoSecret(r.all, 'job run-pipeline');
  });

  it("leaves the other tenant's secrets as they were", async () => {
    assert.equal(await readFile(path.join(root, 'configs', OTHER, 'secrets', 'api_token.txt'), 'utf8'), OTHER_SECRET);
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.equal(await readFile(path.join(root, 'configs', TENANT, 'secrets', `${name}.txt`), 'utf8'), value);
    }
  });
});
