/**
 * Attack: a REST source's URL is tenant input. Left unchecked it could reach another process on
 * the host (127.0.0.1, localhost, [::1], ::ffff:127.0.0.1), a private network (10.x), or the
 * metadata server (169.254.169.254, with the Metadata-Flavor header it wants) that hands out the
 * job's own credentials, directly, through a name that resolves there, or through a redirect from
 * an allowed host. Every such connection is refused unless the operator lists the host in the
 * environment's rest_sources.private_hosts; the refusal is never retried and names the setting.
 * `pipeline validate` reports a literal internal host at file:line:col first.
 */
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadWorkspace, resolveEnv } from '../../src/config/workspace.ts';
import { fetchPages } from '../../src/engine/sources/rest/client.ts';
import { createSourceFetch } from '../../src/engine/sources/rest/transport.ts';
import type { FetchPagesOptions, RestSourceConfig } from '../../src/engine/sources/rest/types.ts';
import { isConvergenceError } from '../../src/lib/errors.ts';
import { isPublicAddress, type Resolver } from '../../src/lib/net/address-guard.ts';
import { initWorkspace } from '../../src/services/init.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import type { PipelineBundle } from '../../src/services/pipelines/bundle.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { stepEnv } from '../../src/services/runs/step-env.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { collect } from '../engine/rest/pages-and-clock.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

const REFUSED =
  /resolves to a loopback, private or link-local address, which a tenant's REST source may not reach; an operator can allow it with rest_sources\.private_hosts in convergence\.yaml/;
const TOKEN = 'tok-SECRET-7781';

/** Every request fetchPages made, and how it ended: refused with the error, or with the records. */
async function attempt(config: RestSourceConfig, options: FetchPagesOptions = {}) {
  const requests: string[] = [];
  const sleeps: number[] = [];
  const result = await collect(
    fetchPages(
      { retry: { max_attempts: 5 }, ...config },
      { sleep: async (ms) => void sleeps.push(ms), onRequest: (i) => requests.push(i.url), ...options },
    ),
  ).then(
    (pages) => ({ records: pages.flatMap((p) => p.records), error: undefined }),
    (error: unknown) => ({ records: undefined, error }),
  );
  return { ...result, requests, sleeps };
}

function assertRefused(error: unknown, host: string): void {
  assert.ok(isConvergenceError(error), `a refusal, not ${String(error)}`);
  assert.equal(error.code, 'SOURCE_ADDRESS_REFUSED');
  assert.equal(error.exitCode, 2);
  assert.match(error.message, REFUSED);
  assert.ok(error.message.startsWith(`${host} resolves to`), error.message);
  assert.ok(!error.message.includes(TOKEN), 'no secret in the refusal');
}

describe('REST sources reach no loopback, private or link-local address unless the operator lists it', () => {
  let api: FakeApi;
  let other: FakeApi;
  let port: string;
  before(async () => {
    api = await startFakeApi((req) => {
      if (req.url.pathname === '/to-other') return { status: 302, headers: { location: `${other.base}/rows` } };
      if (req.url.pathname === '/to-localhost') return { status: 307, headers: { location: `http://localhost:${port}/rows` } };
      if (req.url.pathname === '/to-metadata')
        return { status: 302, headers: { location: 'http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token' } };
      return { body: { data: [{ id: 1 }, { id: 2 }] } };
    });
    other = await startFakeApi(() => ({ body: { data: [{ id: 'internal' }] } }));
    port = new URL(api.base).port;
  });
  after(async () => {
    await api.close();
    await other.close();
  });

  for (const [label, url, host] of [
    ['127.0.0.1', () => `${api.base}/rows?key=${TOKEN}`, () => `127.0.0.1:${port}`],
    ['[::1]', () => `http://[::1]:${port}/rows`, () => `[::1]:${port}`],
    ['::ffff:127.0.0.1 (IPv4-mapped)', () => `http://[::ffff:127.0.0.1]:${port}/rows`, () => `[::ffff:7f00:1]:${port}`],
    ['10.0.0.1 (private network)', () => 'http://10.0.0.1/rows', () => '10.0.0.1'],
    ['0.0.0.0', () => `http://0.0.0.0:${port}/rows`, () => `0.0.0.0:${port}`],
    ['2130706433 (127.0.0.1 as one number)', () => `http://2130706433:${port}/rows`, () => `127.0.0.1:${port}`],
    ['0x7f.1 (127.0.0.1 in hex and short form)', () => `http://0x7f.1:${port}/rows`, () => `127.0.0.1:${port}`],
  ] as const) {
    it(`refuses ${label} before connecting, once, without retries`, async () => {
      const started = Date.now();
      const { error, requests, sleeps } = await attempt({ url: url(), pagination: { type: 'none' }, records_path: 'data' });
      assertRefused(error, host());
      assert.equal(requests.length, 1, 'one attempt');
      assert.deepEqual(sleeps, [], 'no retry waits');
      assert.ok(Date.now() - started < 5_000, 'refused at once, not after a connect timeout');
      assert.equal(api.requests.length, 0, 'the fake on 127.0.0.1 got nothing');
    });
  }

  it('refuses the metadata server even with the Metadata-Flavor header the tenant sets', async () => {
    const { error, requests } = await attempt({
      url: 'http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token',
      headers: { 'Metadata-Flavor': 'Google' },
      pagination: { type: 'none' },
    });
    assertRefused(error, '169.254.169.254');
    assert.equal(requests.length, 1);
  });

  it('refuses localhost: the name resolves to loopback, and the address connected to is checked', async () => {
    const { error } = await attempt({ url: `http://localhost:${port}/rows`, pagination: { type: 'none' }, records_path: 'data' });
    assertRefused(error, `localhost:${port}`);
    assert.equal(api.requests.length, 0);
  });

  it('refuses a public-looking name that resolves to 127.0.0.1, asking the resolver at connect time', async () => {
    const asked: string[] = [];
    const rebinding: Resolver = (hostname, _options, callback) => {
      asked.push(hostname);
      callback(null, [{ address: '127.0.0.1', family: 4 }]);
    };
    const guardedFetch = createSourceFetch(rebinding);
    await assert.rejects(
      guardedFetch(new URL(`http://usage.example.com:${port}/rows`), { redirect: 'manual' }, undefined),
      (error: unknown) => {
        assertRefused(error, `usage.example.com:${port}`);
        return true;
      },
    );
    // A name with one public and one internal address is refused as well.
    const mixed: Resolver = (_hostname, _options, callback) =>
      callback(null, [
        { address: '93.184.215.14', family: 4 },
        { address: '::ffff:169.254.169.254', family: 6 },
      ]);
    await assert.rejects(
      createSourceFetch(mixed)(new URL('https://api.example.com/v1'), { redirect: 'manual' }, undefined),
      (error: unknown) => {
        assertRefused(error, 'api.example.com');
        return true;
      },
    );
    assert.deepEqual(asked, ['usage.example.com'], 'the connection itself resolved the name');
    assert.equal(api.requests.length, 0);
  });

  it('reaches a listed host:port, and only that port of it', async () => {
    const allowed = await attempt({
      url: `${api.base}/rows`,
      pagination: { type: 'none' },
      records_path: 'data',
      private_hosts: [`127.0.0.1:${port}`],
    });
    assert.equal(allowed.error, undefined, String(allowed.error));
    assert.deepEqual(allowed.records, [{ id: 1 }, { id: 2 }]);

    const otherPort = new URL(other.base).port;
    const { error } = await attempt({ url: `${other.base}/rows`, pagination: { type: 'none' }, private_hosts: [`127.0.0.1:${port}`] });
    assertRefused(error, `127.0.0.1:${otherPort}`);
    assert.equal(other.requests.length, 0);

    // `localhost` listed means the name localhost, not every loopback address.
    const byName = await attempt({
      url: `http://localhost:${port}/rows`,
      pagination: { type: 'none' },
      records_path: 'data',
      private_hosts: ['LocalHost'],
    });
    assert.equal(byName.error, undefined, String(byName.error));
    assert.deepEqual(byName.records, [{ id: 1 }, { id: 2 }]);
    const byAddress = await attempt({ url: `${other.base}/rows`, pagination: { type: 'none' }, private_hosts: ['localhost'] });
    assertRefused(byAddress.error, `127.0.0.1:${otherPort}`);
  });

  for (const [label, pathname, host] of [
    ['another port of the same address', '/to-other', () => `127.0.0.1:${new URL(other.base).port}`],
    ['localhost', '/to-localhost', () => `localhost:${port}`],
    ['the metadata server', '/to-metadata', () => '169.254.169.254'],
  ] as const) {
    it(`refuses a redirect from a listed host to ${label}`, async () => {
      const before = api.requests.length;
      const { error, requests, sleeps } = await attempt({
        url: `${api.base}${pathname}`,
        pagination: { type: 'none' },
        private_hosts: [`127.0.0.1:${port}`],
      });
      assertRefused(error, host());
      assert.equal(requests.length, 1, 'not retried');
      assert.deepEqual(sleeps, []);
      assert.equal(api.requests.length, before + 1, 'the listed host answered the redirect');
      assert.equal(other.requests.length, 0, 'the redirect target got nothing');
    });
  }
});

describe('a pipeline run and pipeline validate refuse an internal REST source the environment does not list', () => {
  const TENANT = 'net_co';
  let root: string;
  let api: FakeApi;
  const sourceFile = (name: string) => path.join(root, 'configs', TENANT, 'sources', `${name}.yml`);
  const writeSource = (name: string, lines: string[]) =>
    writeFile(sourceFile(name), [`source_id: ${name}`, 'type: rest_api', ...lines, ''].join('\n'));
  const validate = (name: string) =>
    withContext(root, async (ctx) => (await validateConfigs(ctx, { file: sourceFile(name) })).files[0]!.errors);

  before(async () => {
    api = await startFakeApi(() => ({ body: { data: [{ id: 1 }] } }));
    root = await newBootstrappedWorkspace('rest-net');
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'Net', plan: 'scale' }));
    await writeSource('internal', [`url: ${api.base}/rows`, 'records_path: data', 'retry: { max_attempts: 3 }']);
    await writeFile(
      path.join(root, 'configs', TENANT, 'pipelines', 'p_internal.yml'),
      'pipeline_id: p_internal\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/internal.yml, destination: { table: raw_internal } }\n',
    );
  });
  after(() => api.close());

  it('refuses a run of a literal internal host before its lock or run row (exit 2, file:line:col), the API never asked', async () => {
    await assert.rejects(
      withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_internal' })),
      (error: unknown) => {
        assert.ok(isConvergenceError(error), String(error));
        assert.equal(error.code, 'SOURCE_ADDRESS_REFUSED');
        assert.equal(error.exitCode, 2);
        assert.match(error.message, /^configs\/net_co\/sources\/internal\.yml:3:6: url: 127\.0\.0\.1:\d+ is a loopback/);
        assert.match(error.suggestion ?? '', /rest_sources\.private_hosts/);
        return true;
      },
    );
    assert.equal(await withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs, { tenant_id: TENANT })), 0, 'no run row');
    assert.equal(api.requests.length, 0);
  });

  it('fails a run whose host name resolves to an internal address at connect time (exit 3, SOURCE_ADDRESS_REFUSED and its advice)', async (t) => {
    // This machine's own name: validate cannot know where it resolves (here, a loopback or the
    // container's private address); the connection's lookup refuses it.
    const host = hostname().toLowerCase();
    const resolved = await lookup(host).catch(() => undefined);
    if (!resolved || isPublicAddress(resolved.address) || /^localhost$|\.localhost$/.test(host)) {
      t.skip(`${host} does not resolve to an internal address here`);
      return;
    }
    await writeSource('own_name', [
      `url: http://${host}:${new URL(api.base).port}/rows`,
      'records_path: data',
      'retry: { max_attempts: 3 }',
    ]);
    await writeFile(
      path.join(root, 'configs', TENANT, 'pipelines', 'p_own_name.yml'),
      'pipeline_id: p_own_name\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/own_name.yml, destination: { table: raw_own_name } }\n',
    );
    assert.deepEqual(await validate('own_name'), []);
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_own_name' }));
    assert.equal(summary.status, 'FAILED');
    assert.equal(summary.exitCode, 3);
    assert.equal(summary.error?.code, 'SOURCE_ADDRESS_REFUSED');
    assert.match(summary.error?.message ?? '', REFUSED);
    assert.match(summary.error?.suggestion ?? '', /rest_sources\.private_hosts/);
    assert.equal(api.requests.length, 0);
  });

  it('pipeline validate names the url at file:line:col, for a literal address and for localhost', async () => {
    const [problem] = await validate('internal');
    assert.match(
      problem ?? '',
      /^configs\/net_co\/sources\/internal\.yml:3:6: url: 127\.0\.0\.1:\d+ is a loopback, private or link-local address/,
    );
    assert.match(problem ?? '', /environments\.local\.rest_sources\.private_hosts: \["127\.0\.0\.1:\d+"\] in convergence\.yaml/);

    await writeSource('metadata', ['url: http://169.254.169.254/computeMetadata/v1/', 'headers: { Metadata-Flavor: Google }']);
    assert.match((await validate('metadata'))[0] ?? '', /metadata\.yml:3:6: url: 169\.254\.169\.254 is a loopback/);
    await writeSource('named', ['url: http://LOCALHOST:9/rows']);
    assert.match((await validate('named'))[0] ?? '', /named\.yml:3:6: url: localhost:9 is a loopback/);
    await writeSource('token', [
      'url: https://api.example.com/v1',
      'auth: { type: oauth2_client_credentials, token_url: "https://10.1.2.3/token", client_id: c, client_secret: cs }',
    ]);
    assert.ok(
      (await validate('token')).some((e) => /token\.yml:4:\d+: auth\.token_url: 10\.1\.2\.3 is a loopback/.test(e)),
      'the token URL is checked too',
    );
    // A public host passes: where it resolves is for the connection to check.
    await writeSource('public', ['url: https://api.example.com/v1']);
    assert.deepEqual(await validate('public'), []);
  });

  it('once the operator lists the host, validate is quiet and the run lands the rows', async () => {
    await allowFakeApis(root, { hosts: [new URL(api.base).host] });
    assert.deepEqual(await validate('internal'), []);
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_internal' }));
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(summary.rowsProcessed, 1);
    assert.equal(api.requests.length, 1);
  });
});

describe('convergence.yaml rest_sources', () => {
  const writeConfig = async (root: string, restSources: string) =>
    writeFile(
      path.join(root, 'convergence.yaml'),
      `version: 1\nenvironments:\n  local:\n    backend: local\n    rest_sources:\n${restSources}\n  cloud:\n    project: demo-proj-1\n    rest_sources: { private_hosts: ["usage-api.internal.example"], google_adc: true }\n`,
    );

  it('carries private_hosts and google_adc of local and gcp environments into ResolvedEnv and the step env', async () => {
    const root = await makeTempDir('rest-settings');
    await writeConfig(root, '      private_hosts: ["127.0.0.1:8787", "[::1]"]');
    const workspace = await loadWorkspace(root);
    assert.deepEqual(resolveEnv(workspace, 'local').restSources, { privateHosts: ['127.0.0.1:8787', '[::1]'], googleAdc: false });
    assert.deepEqual(resolveEnv(workspace, 'cloud').restSources, { privateHosts: ['usage-api.internal.example'], googleAdc: true });

    const bootstrapped = await newBootstrappedWorkspace('rest-step-env');
    await allowFakeApis(bootstrapped, { hosts: ['internal.example:8443'], googleAdc: true });
    const env = await withContext(bootstrapped, (ctx) =>
      stepEnv(
        ctx,
        { pipeline: { pipeline_id: 'p', steps: [] }, sources: new Map(), schemas: new Map(), sql: new Map() } as unknown as PipelineBundle,
        {
          tenantId: 't1',
          pipelineId: 'p',
          runId: 'r1',
          runDate: '2030-01-15',
          signal: new AbortController().signal,
          progress: () => undefined,
        },
      ),
    );
    assert.deepEqual(env.restSources, { privateHosts: ['internal.example:8443'], googleAdc: true });
  });

  for (const [label, restSources, message] of [
    ['a URL instead of a host', '      private_hosts: ["http://10.0.0.1:80/"]', /expected a host or host:port/],
    ['a wildcard', '      private_hosts: ["*.corp.example"]', /expected a host or host:port/],
    ['an IPv6 address without brackets', '      private_hosts: ["::1"]', /expected a host or host:port/],
    ['a port out of range', '      private_hosts: ["10.0.0.5:70000"]', /expected a host or host:port/],
    ['google_adc as text', '      google_adc: "yes"', /google_adc/],
    ['an unknown key', '      allow_all: true', /allow_all/],
  ] as const) {
    it(`refuses ${label} at convergence.yaml:line (exit 2)`, async () => {
      const root = await makeTempDir('rest-settings-bad');
      await writeConfig(root, restSources);
      await assert.rejects(loadWorkspace(root), (error: unknown) => {
        assert.ok(isConvergenceError(error), String(error));
        assert.equal(error.exitCode, 2);
        assert.match(error.message, /convergence\.yaml:6:\d+/);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  it('init --example lets the local environment reach the demo usage API only; plain init lists nothing', async () => {
    const example = await makeTempDir('init-example');
    await initWorkspace(example, { example: true });
    assert.deepEqual(resolveEnv(await loadWorkspace(example), 'local').restSources, { privateHosts: ['127.0.0.1:8787'], googleAdc: false });
    const plain = await makeTempDir('init-plain');
    await initWorkspace(plain);
    assert.equal(resolveEnv(await loadWorkspace(plain), 'local').restSources, undefined);
    assert.match(
      await readFile(path.join(plain, 'convergence.yaml'), 'utf8'),
      /# rest_sources: \{ private_hosts: \["127\.0\.0\.1:8787"\], google_adc: false \}/,
    );
  });
});
