/** A rest_api ingest step end to end: secrets, {{ cursor }}, retries, pagination guards, atomic loads. */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { setTenantCredential } from '../../src/services/credentials.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { startFakeApi, type FakeApi, type FakeReply, type RecordedRequest } from '../fakes/http-api.ts';

after(cleanupAll);

const TENANT = 'api_co';
const DAYS = ['2025-01-01', '2025-01-02', '2025-01-03'];
const RECORDS = DAYS.flatMap((day, d) =>
  Array.from({ length: 25 }, (_, i) => ({ id: `r${d}_${i}`, day, model: i % 2 ? 'a' : 'b', tokens: i })),
);

/** Cursor-paged usage API: 10 records a page from starting_at on; bearer tok-1; a 429 on the first request. */
function usageApi(req: RecordedRequest, index: number): FakeReply {
  if (req.headers.authorization !== 'Bearer tok-1') return { status: 401, body: { error: 'bad token' } };
  if (index === 0) return { status: 429, headers: { 'retry-after': '0' }, body: { error: 'slow down' } };
  const from = req.url.searchParams.get('starting_at') ?? '';
  const offset = Number(req.url.searchParams.get('page') ?? 0);
  const matching = RECORDS.filter((r) => r.day >= from);
  const next = offset + 10 < matching.length ? String(offset + 10) : null;
  return { body: { data: matching.slice(offset, offset + 10), next_page: next } };
}

describe('rest_api ingest', () => {
  let root: string;
  let api: FakeApi;
  let handler: (req: RecordedRequest, index: number) => FakeReply = usageApi;
  const secretFile = () => path.join(root, 'configs', TENANT, 'secrets', 'usage_api_token.txt');

  before(async () => {
    api = await startFakeApi((req, index) => handler(req, index));
    root = await newBootstrappedWorkspace('rest');
    await allowFakeApis(root);
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'API', plan: 'scale' }));
    const dir = path.join(root, 'configs', TENANT);
    await writeFile(secretFile(), 'tok-1', { mode: 0o600 });
    await writeFile(
      path.join(dir, 'sources', 'usage_api.yml'),
      [
        'source_id: usage_api',
        'type: rest_api',
        `url: ${api.base}/v1/usage`,
        'params: { starting_at: "{{ cursor }}" }',
        'auth: { type: bearer, secret: usage_api_token }',
        'pagination: { type: cursor, cursor_path: next_page, param: page }',
        'records_path: data',
        'retry: { max_attempts: 3 }',
        'incremental: { cursor_field: day, initial: "2025-01-01" }',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'pipelines', 'p_api.yml'),
      'pipeline_id: p_api\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/usage_api.yml, destination: { table: raw_api, write_mode: merge, merge_keys: [id] } }\n',
    );
  });
  after(() => api.close());

  const run = () => withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_api' }));
  const rows = () => withWarehouse(root, (w) => w.count(TENANT, 'raw_api'));

  it('waits out a 429, follows every page and moves the cursor with the data', async () => {
    const summary = await run();
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(await rows(), RECORDS.length);
    assert.equal(api.requests[0]!.url.searchParams.get('starting_at'), '2025-01-01');
    assert.equal(api.requests.length, 1 + Math.ceil(RECORDS.length / 10));
    assert.ok(
      api.requests.every((r) => !r.path.includes('tok-1')),
      'the token never goes in the URL',
    );
    const [state] = await withWarehouse(root, (w) => w.select(TENANT, '_convergence_state'));
    assert.equal(state?.['cursor_value'], '2025-01-03');
  });

  it('asks from the committed cursor next time; merge keeps the overlap from duplicating', async () => {
    api.requests.length = 0;
    const summary = await run();
    assert.equal(summary.status, 'COMPLETE');
    assert.equal(api.requests.at(-1)!.url.searchParams.get('starting_at'), '2025-01-03');
    assert.equal(summary.steps[0]!.rowsIn, 25);
    assert.equal(await rows(), RECORDS.length);
  });

  it('falls back to the KeyRing-encrypted tenant credential when there is no secret file', async () => {
    await rm(secretFile());
    await withContext(root, (ctx) => setTenantCredential(ctx, TENANT, 'usage_api_token', 'tok-1'));
    api.requests.length = 0;
    const summary = await run();
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(api.requests.at(-1)!.headers.authorization, 'Bearer tok-1');
  });

  it('fails the run naming a secret that resolves nowhere, without calling the API', async () => {
    const source = path.join(root, 'configs', TENANT, 'sources', 'usage_api.yml');
    const { readFile } = await import('node:fs/promises');
    const original = await readFile(source, 'utf8');
    await writeFile(source, original.replace('secret: usage_api_token', 'secret: missing_token'));
    api.requests.length = 0;
    try {
      const summary = await run();
      assert.equal(summary.status, 'FAILED');
      assert.equal(summary.exitCode, 3);
      assert.match(summary.error?.message ?? '', /secret "missing_token" of tenant api_co not found/);
      assert.equal(api.requests.length, 0);
    } finally {
      await writeFile(source, original);
    }
  });

  it('times out a run that exceeds the pipeline timeout and records TIMEOUT', async () => {
    const pipeline = path.join(root, 'configs', TENANT, 'pipelines', 'p_api.yml');
    const { readFile } = await import('node:fs/promises');
    const original = await readFile(pipeline, 'utf8');
    await writeFile(pipeline, original.replace('steps:', 'timeout: 1s\nsteps:'));
    handler = () => ({ hang: true });
    try {
      const summary = await run();
      assert.equal(summary.status, 'TIMEOUT');
      assert.equal(summary.exitCode, 3);
      assert.equal(summary.error?.code, 'RUN_TIMEOUT');
      assert.deepEqual(
        summary.steps.map((s) => s.status),
        ['TIMEOUT'],
      );
    } finally {
      handler = usageApi;
      await writeFile(pipeline, original);
    }
  });

  it('stops on a next link that does not advance and on exhausted 5xx retries, loading nothing', async () => {
    await withWarehouse(root, (w) => w.dropTable(TENANT, 'raw_api'));
    for (const [label, reply, message] of [
      ['non-advancing cursor', () => ({ body: { data: [RECORDS[0]], next_page: 'same' } }), /same|repeat|advance/i],
      ['5xx burst', () => ({ status: 503, body: { error: 'down' } }), /503/],
    ] as const) {
      handler = reply;
      const summary = await run();
      assert.equal(summary.status, 'FAILED', label);
      assert.match(summary.error?.message ?? '', message, label);
      assert.equal(await withWarehouse(root, (w) => w.tableExists(TENANT, 'raw_api')), false, `${label}: nothing loaded`);
    }
    handler = usageApi;
  });
});
