/**
 * Bad input over HTTP: every refusal — an unknown route, a wrong method, an over-long URL, a head
 * too large for Node's parser, a broken request line, a body too large or not JSON, an impossible
 * run_date — answers in the documented error envelope, names no CLI flag, and changes nothing.
 * /health/ready tells an unauthenticated caller nothing about the host's files.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { listRuns } from '../../src/services/runs/store.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { forApiCaller } from '../../src/server/api-text.ts';
import { MAX_URL_LENGTH } from '../../src/server/app.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { apiHarness, type ApiHarness } from './helpers.ts';

after(cleanupAll);

const NAMES_A_FLAG = /(^|[\s(`'"])--[a-z][a-z0-9-]*/;

interface Envelope {
  error: { code: string; message: string; suggestion?: string };
  request_id: string;
}

/** The documented error body, and nothing else in it; no CLI flag anywhere. */
function assertEnvelope(text: string, status: number, code: string): Envelope {
  const body = JSON.parse(text) as Envelope;
  assert.deepEqual(Object.keys(body).sort(), ['error', 'request_id'], text);
  assert.equal(body.error.code, code, text);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.request_id, text);
  assert.ok(!NAMES_A_FLAG.test(text), `names a CLI flag (status ${status}): ${text}`);
  return body;
}

/** Sends raw bytes over a socket and returns the status line and body of the answer. */
async function raw(port: number, request: string): Promise<{ status: number; body: string }> {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  socket.write(request);
  await new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const [head = '', body = ''] = data.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body };
}

describe('HTTP errors use the error envelope', () => {
  let h: ApiHarness;
  let port: number;
  before(async () => {
    h = await apiHarness({ bodyLimit: 2048, logLevel: 'silent' });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    port = (h.app.server.address() as net.AddressInfo).port;
  });
  after(() => h.close());

  it('404 for an unknown route', async () => {
    const res = await h.call({ method: 'GET', url: '/nope/at/all?x=1' });
    assert.equal(res.statusCode, 404);
    assert.match(assertEnvelope(res.body, 404, 'NOT_FOUND').error.message, /GET \/nope\/at\/all$/);
  });

  it('405 with Allow for a known path and another method', async () => {
    const res = await h.call({ method: 'PUT', url: '/api/v1/pipelines/runs/3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b', key: h.keys.acme });
    assert.equal(res.statusCode, 405);
    assertEnvelope(res.body, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(res.headers.allow, 'DELETE, GET, HEAD');
    const health = await h.call({ method: 'POST', url: '/health' });
    assert.equal(health.statusCode, 405);
    assert.match(String(health.headers.allow), /GET/);
  });

  it('414 for a URL over the limit, before any key is checked', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/pipelines/runs?pipeline_id=${'a'.repeat(MAX_URL_LENGTH)}`, {
      headers: { 'x-api-key': h.keys.acme },
    });
    assert.equal(res.status, 414);
    assertEnvelope(await res.text(), 414, 'URI_TOO_LONG');
  });

  it("431 for a head over Node's limit, 400 for a broken request line, both in the envelope", async () => {
    const huge = await raw(port, `GET /health?x=${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`);
    assert.equal(huge.status, 431);
    assertEnvelope(huge.body, 431, 'HEADERS_TOO_LARGE');
    const broken = await raw(port, 'THIS IS NOT HTTP\r\n\r\n');
    assert.equal(broken.status, 400);
    assertEnvelope(broken.body, 400, 'BAD_REQUEST');
  });

  it('413 for a body over the limit, 400 for malformed JSON', async () => {
    const url = '/api/v1/pipelines/run/p_usage_daily';
    const big = await h.call({
      method: 'POST',
      url,
      key: h.keys.acme,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ trigger_by: 'x'.repeat(5000) }),
    });
    assert.equal(big.statusCode, 413);
    assertEnvelope(big.body, 413, 'PAYLOAD_TOO_LARGE');
    const bad = await h.call({
      method: 'POST',
      url,
      key: h.keys.acme,
      headers: { 'content-type': 'application/json' },
      payload: '{"run_date": ',
    });
    assert.equal(bad.statusCode, 400);
    assertEnvelope(bad.body, 400, 'BAD_REQUEST');
  });

  it('400 for an impossible run_date, before any run row or quota slot exists', async () => {
    const warehouse = await h.ctx.backends.warehouse();
    const quota = async () => (await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: 'acme_corp' } }))[0];
    const quotaBefore = await quota();
    const runsBefore = await listRuns(h.ctx, { tenantId: 'acme_corp', limit: 100 });
    for (const runDate of ['2025-02-31', '2025-13-01', '2024-02-30', '2025-04-31']) {
      const res = await h.call({
        method: 'POST',
        url: '/api/v1/pipelines/run/p_usage_daily',
        key: h.keys.acme,
        payload: { run_date: runDate },
      });
      assert.equal(res.statusCode, 400, res.body);
      const body = assertEnvelope(res.body, 400, 'VALIDATION');
      assert.match(body.error.message, new RegExp(`run_date "${runDate}" is not a calendar date`));
    }
    assert.equal((await listRuns(h.ctx, { tenantId: 'acme_corp', limit: 100 })).length, runsBefore.length);
    assert.deepEqual(await quota(), quotaBefore);
  });

  it('names no CLI flag in what services suggest: an unknown pipeline, a key that does not exist, a quota', async () => {
    const missing = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_missing', key: h.keys.acme });
    assert.equal(missing.statusCode, 404, missing.body);
    assertEnvelope(missing.body, 404, missing.json<Envelope>().error.code);

    const noKey = await h.call({ method: 'DELETE', url: '/api/v1/admin/api-keys/0123456789abcdef', admin: h.keys.admin });
    assert.equal(noKey.statusCode, 404, noKey.body);
    assert.match(assertEnvelope(noKey.body, 404, 'NOT_FOUND').error.suggestion ?? '', /`convergence keys list`/);

    const warehouse = await h.ctx.backends.warehouse();
    const [quota] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: 'acme_corp' } });
    await warehouse.update(METADATA_DATASET, T.quotas, { pipelines_run_today: Number(quota!.daily_limit) }, { tenant_id: 'acme_corp' });
    try {
      const over = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_usage_daily', key: h.keys.acme });
      assert.equal(over.statusCode, 429, over.body);
      assertEnvelope(over.body, 429, 'QUOTA_EXCEEDED');
    } finally {
      await warehouse.update(METADATA_DATASET, T.quotas, { pipelines_run_today: 0 }, { tenant_id: 'acme_corp' });
    }
  });

  it('/health/ready shows the kind of warehouse, not where its file is', async () => {
    const res = await h.call({ method: 'GET', url: '/health/ready' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<{ checks: { warehouse: { detail: string } } }>().checks.warehouse.detail, 'duckdb');
    assert.ok(!res.body.includes(h.root), res.body);
    assert.ok(!/\.duckdb|\/tmp\/|\.convergence/.test(res.body), res.body);
  });
});

describe('forApiCaller', () => {
  it('turns flags with a request field into that field', () => {
    assert.equal(
      forApiCaller('available: run_date; pass others with --param region=VALUE'),
      'available: run_date; pass others with parameters: {"region": "VALUE"}',
    );
    assert.equal(forApiCaller('--expires-in must be positive'), 'expires_in_days must be positive');
    assert.equal(forApiCaller('--run-date and --full-refresh'), 'run_date and full_refresh');
  });

  it('keeps the words of a suggested command, not its flags', () => {
    assert.equal(
      forApiCaller('wait for the reset, or reset it now with `convergence quota reset --tenant acme_corp --env prod --yes`'),
      'wait for the reset, or reset it now with `convergence quota reset`',
    );
    assert.equal(
      forApiCaller('list recent runs with `convergence pipeline runs --tenant <tenant_id>` (check --env too)'),
      'list recent runs with `convergence pipeline runs`',
    );
    assert.equal(forApiCaller('run `convergence bootstrap --env=prod` first'), 'run `convergence bootstrap` first');
  });

  it('leaves no flag in prose, and leaves text without flags alone', () => {
    assert.equal(forApiCaller('delete with --force to cancel it'), 'delete with force to cancel it');
    assert.ok(!NAMES_A_FLAG.test(forApiCaller('pass --replace (or --older-than 2d)')));
    const plain = 'run 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b is already RUNNING; a-b --- c';
    assert.equal(forApiCaller(plain), plain);
  });
});
