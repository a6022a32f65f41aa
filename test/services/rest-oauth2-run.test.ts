/** A rest_api source with `auth: oauth2_client_credentials` through a whole pipeline run, and what validate says of its token_url. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { OAuth2TokenServer } from '../fakes/oauth2-token-server.ts';

after(cleanupAll);

const TENANT = 'oauth_co';
const CLIENT_SECRET = 'cs-7d1e9a44b0f2';
const RECORDS = Array.from({ length: 45 }, (_, i) => ({ id: `e${i}`, amount: i * 3 }));
const PAGE = 10;

describe('rest_api ingest with OAuth 2.0 client credentials', () => {
  let root: string;
  let api: FakeApi;
  let tokens: OAuth2TokenServer;

  /** An API that pages its events and answers 401 to any bearer the token server did not issue. */
  before(async () => {
    tokens = await OAuth2TokenServer.start({ clientId: 'convergence-ingest', clientSecret: CLIENT_SECRET, scopes: ['events.read'] });
    api = await startFakeApi((req) => {
      if (!tokens.accepts(req.headers.authorization)) return { status: 401, body: { error: 'invalid_token' } };
      const offset = Number(req.url.searchParams.get('offset') ?? 0);
      return { body: { events: RECORDS.slice(offset, offset + PAGE) } };
    });
    root = await newBootstrappedWorkspace('oauth2');
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'OAuth', plan: 'scale' }));
    const dir = path.join(root, 'configs', TENANT);
    await writeFile(path.join(dir, 'secrets', 'events_client_secret.txt'), CLIENT_SECRET, { mode: 0o600 });
    await writeFile(
      path.join(dir, 'sources', 'events.yml'),
      [
        'source_id: events',
        'type: rest_api',
        `url: ${api.base}/v1/events`,
        'auth:',
        '  type: oauth2_client_credentials',
        `  token_url: ${tokens.tokenUrl}`,
        '  client_id: convergence-ingest',
        '  client_secret: events_client_secret',
        '  scope: events.read',
        `pagination: { type: offset, param: offset, limit_param: limit, limit: ${PAGE} }`,
        'records_path: events',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'pipelines', 'p_events.yml'),
      'pipeline_id: p_events\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/events.yml, destination: { table: raw_events, write_mode: replace } }\n',
    );
  });
  after(async () => {
    await api.close();
    await tokens.stop();
  });

  const validate = () => withContext(root, (ctx) => validateConfigs(ctx, { tenantId: TENANT }));

  it('validate refuses a clear-text token_url the operator does not list, at its line', async () => {
    const report = await validate();
    const errors = report.files.flatMap((f) => f.errors);
    assert.ok(
      errors.some((e) =>
        /^configs\/oauth_co\/sources\/events\.yml:6:\d+: auth\.token_url: expected an https URL: http:\/\/127\.0\.0\.1:\d+ would send the client secret in clear text/.test(
          e,
        ),
      ),
      errors.join('\n'),
    );
  });

  it('fetches one token for every page of the run and lands every record; the secret and token stay out of the run', async () => {
    await allowFakeApis(root, { hosts: [new URL(api.base).host, tokens.host] });
    assert.equal((await validate()).ok, true);
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_events' }));
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(await withWarehouse(root, (w) => w.count(TENANT, 'raw_events')), RECORDS.length);
    assert.equal(tokens.requests.length, 1, 'one token serves every page');
    assert.equal(tokens.requests[0]!.clientAuth, 'basic');
    assert.equal(tokens.requests[0]!.form['scope'], 'events.read');
    assert.ok(api.requests.length >= Math.ceil(RECORDS.length / PAGE));
    assert.ok(!JSON.stringify(summary).includes(CLIENT_SECRET));
  });

  it('a client secret the token endpoint refuses fails the run as a credentials problem (code AUTH), the API never asked, the secret not shown', async () => {
    const wrong = 'cs-wrong-51c0ffee';
    await writeFile(path.join(root, 'configs', TENANT, 'secrets', 'events_client_secret.txt'), wrong, { mode: 0o600 });
    const asked = api.requests.length;
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_events' }));
    assert.equal(summary.status, 'FAILED');
    // A step's failure ends the run with exit 3; the error keeps what kind of failure it was.
    assert.equal(summary.exitCode, 3);
    assert.equal(summary.error?.code, 'AUTH');
    assert.match(summary.error?.message ?? '', /token endpoint 127\.0\.0\.1:\d+ refused the client credentials \(HTTP 401, invalid_client/);
    assert.equal(api.requests.length, asked);
    assert.ok(!JSON.stringify(summary).includes(wrong));
  });
});
