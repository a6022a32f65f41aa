/** Pipeline runs through the API on the embedded default: start, follow, list, cancel, limits, shutdown. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { createRun, getRun } from '../../src/services/runs/store.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { apiHarness, heldPipeline, waitFor, type ApiHarness } from './helpers.ts';
import { modelSteps } from '../helpers/example-model.ts';

after(cleanupAll);

interface RunBody {
  pipeline_logging_id: string;
  status: string;
  steps?: Array<{ step_name: string; status: string }>;
  rows_processed?: number;
}

async function pollRun(h: ApiHarness, runId: string, key: string, until: (status: string) => boolean): Promise<RunBody> {
  let last: RunBody | undefined;
  await waitFor(
    async () => {
      const res = await h.call({ method: 'GET', url: `/api/v1/pipelines/runs/${runId}`, key });
      assert.equal(res.statusCode, 200, res.body);
      last = res.json();
      return until(last!.status);
    },
    `run ${runId} to reach the expected state`,
    60_000,
  );
  return last!;
}

const finished = (status: string) => !['PENDING', 'RUNNING'].includes(status);

describe('runs through the API', () => {
  let h: ApiHarness;
  before(async () => {
    h = await apiHarness({ runCacheTtlMs: 100 });
  });
  after(() => h.close());

  it('starts the demo pipeline (202, Location) and it completes with its steps', async () => {
    const res = await h.call({
      method: 'POST',
      url: '/api/v1/pipelines/run/p_usage_daily',
      key: h.keys.acme,
      payload: { trigger_by: 'ops@acme', run_date: '2025-01-31' },
    });
    assert.equal(res.statusCode, 202, res.body);
    const started = res.json();
    assert.equal(started.status, 'RUNNING');
    assert.equal(started.mode, 'local');
    assert.equal(res.headers.location, `/api/v1/pipelines/runs/${started.pipeline_logging_id}`);
    const done = await pollRun(h, started.pipeline_logging_id, h.keys.acme, finished);
    assert.equal(done.status, 'COMPLETE', JSON.stringify(done));
    assert.deepEqual(
      done.steps!.map((s) => `${s.step_name}:${s.status}`),
      ['ingest_usage:COMPLETE', 'check_usage:COMPLETE', 'build_fct_usage_daily:COMPLETE', ...modelSteps('COMPLETE')],
    );
    assert.ok(done.rows_processed! > 2000, String(done.rows_processed));
    const record = await getRun(h.ctx, started.pipeline_logging_id);
    assert.equal(record.trigger, 'api');
    assert.equal(record.triggeredBy, 'ops@acme');
    // The run row is final slightly before the run gives back its lock and quota slot and is counted.
    let metrics = '';
    await waitFor(async () => {
      metrics = (await h.call({ method: 'GET', url: '/metrics' })).body;
      return /convergence_pipeline_runs_finished_total\{status="COMPLETE"\} 1/.test(metrics);
    }, 'the finished run to be counted');
    assert.match(metrics, /convergence_pipeline_runs_started_total\{mode="local"\} 1/);
    assert.match(
      metrics,
      /convergence_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/pipelines\/runs\/:run_id"\} \d+/,
    );
  });

  it('refuses a second run of a running pipeline with 409, cancels the first with DELETE', async () => {
    const held = await heldPipeline(h.root);
    try {
      const first = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_held', key: h.keys.acme });
      assert.equal(first.statusCode, 202, first.body);
      const runId = first.json().pipeline_logging_id as string;
      await waitFor(() => held.api.requests.length > 0, 'the run to call its API');

      const second = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_held', key: h.keys.acme });
      assert.equal(second.statusCode, 409, second.body);
      assert.equal(second.json().error.code, 'LOCK_HELD');
      assert.ok(second.json().error.message.includes(runId), second.json().error.message);

      const cancel = await h.call({ method: 'DELETE', url: `/api/v1/pipelines/runs/${runId}`, key: h.keys.acme });
      assert.equal(cancel.statusCode, 202, cancel.body);
      assert.equal(cancel.json().cancel_requested, true);
      const done = await pollRun(h, runId, h.keys.acme, finished);
      assert.equal(done.status, 'CANCELLED');

      const again = await h.call({ method: 'DELETE', url: `/api/v1/pipelines/runs/${runId}`, key: h.keys.acme });
      assert.equal(again.statusCode, 409, again.body);
      assert.match(again.json().error.message, /already finished \(CANCELLED/);
    } finally {
      held.release();
      await held.api.close();
    }
  });

  it('refuses a run over the daily quota with 429 and a Retry-After until midnight UTC', async () => {
    const warehouse = await h.ctx.backends.warehouse();
    const [quota] = await warehouse.select(METADATA_DATASET, T.quotas, { where: { tenant_id: 'acme_corp' } });
    await warehouse.update(METADATA_DATASET, T.quotas, { pipelines_run_today: Number(quota!.daily_limit) }, { tenant_id: 'acme_corp' });
    try {
      const res = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_usage_daily', key: h.keys.acme });
      assert.equal(res.statusCode, 429, res.body);
      assert.equal(res.json().error.code, 'QUOTA_EXCEEDED');
      const retryAfter = Number(res.headers['retry-after']);
      const now = new Date();
      const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
      assert.ok(retryAfter > 0 && retryAfter <= Math.ceil((midnight - now.getTime()) / 1000) + 1, String(retryAfter));
    } finally {
      await warehouse.update(METADATA_DATASET, T.quotas, { pipelines_run_today: 0 }, { tenant_id: 'acme_corp' });
    }
  });

  it('answers 404 for a pipeline the tenant does not have', async () => {
    const res = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_missing', key: h.keys.acme });
    assert.equal(res.statusCode, 404, res.body);
  });

  it('lists runs newest first, filtered, page by page without gaps or repeats', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const runId = crypto.randomUUID();
      ids.push(runId);
      await createRun(h.ctx, {
        runId,
        tenantId: 'other_co',
        pipelineId: i % 2 ? 'p_odd' : 'p_even',
        trigger: 'manual',
        runDate: '2025-01-31',
        parameters: {},
        timeoutAt: new Date(Date.now() + 60_000),
      });
    }
    const seen: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const url: string = `/api/v1/pipelines/runs?limit=2${token ? `&page_token=${token}` : ''}`;
      const res = await h.call({ method: 'GET', url, key: h.keys.other });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as { runs: RunBody[]; next_page_token: string | null };
      seen.push(...body.runs.map((r) => r.pipeline_logging_id));
      token = body.next_page_token;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual([...seen].sort(), [...ids].sort());
    assert.equal(new Set(seen).size, 5);

    const odd = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs?pipeline_id=p_odd&status=PENDING', key: h.keys.other });
    assert.deepEqual(
      odd
        .json()
        .runs.map((r: RunBody) => r.pipeline_logging_id)
        .sort(),
      [ids[1], ids[3]].sort(),
    );
  });
});

describe('rate limits', () => {
  it('limits each tenant to its requests per minute (429 with Retry-After), leaving other tenants alone', async () => {
    const h = await apiHarness({ tenantRatePerMinute: 3 });
    try {
      for (let i = 0; i < 3; i++)
        assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.acme })).statusCode, 200);
      const limited = await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.acme });
      assert.equal(limited.statusCode, 429, limited.body);
      assert.equal(limited.json().error.code, 'RATE_LIMITED');
      assert.match(limited.json().error.message, /acme_corp/);
      assert.ok(Number(limited.headers['retry-after']) > 0, JSON.stringify(limited.headers));
      assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs', key: h.keys.other })).statusCode, 200);
      assert.match((await h.call({ method: 'GET', url: '/metrics' })).body, /convergence_rate_limited_total\{scope="tenant"\} 1/);
    } finally {
      await h.close();
    }
  });

  it('limits all API requests together per second, but never /health', async () => {
    const h = await apiHarness({ globalRatePerSecond: 2 });
    try {
      // Requests without a key are refused before any warehouse work, so all three fall in one second.
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await h.call({ method: 'GET', url: '/api/v1/pipelines/runs' })).statusCode);
      assert.deepEqual(codes, [401, 401, 429]);
      for (let i = 0; i < 5; i++) assert.equal((await h.call({ method: 'GET', url: '/health' })).statusCode, 200);
      assert.match((await h.call({ method: 'GET', url: '/metrics' })).body, /convergence_rate_limited_total\{scope="global"\} 1/);
    } finally {
      await h.close();
    }
  });
});

describe('shutdown', () => {
  it('stops runs executing in the server and records them CANCELLED, lock released', async () => {
    const h = await apiHarness();
    const held = await heldPipeline(h.root);
    try {
      const res = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_held', key: h.keys.acme });
      assert.equal(res.statusCode, 202, res.body);
      const runId = res.json().pipeline_logging_id as string;
      await waitFor(() => held.api.requests.length > 0, 'the run to call its API');
      const outcome = await h.parts.runs.shutdown(15_000);
      assert.deepEqual(outcome, { stopped: 1, unfinished: 0 });
      const run = await getRun(h.ctx, runId);
      assert.equal(run.status, 'CANCELLED');
      const lock = await h.ctx.backends.lock();
      const taken = await lock.acquire('run/acme_corp/p_held', { owner: 'test', ttlMs: 1_000 });
      assert.equal(taken.acquired, true, 'the run lock was released');
      const late = await h.call({ method: 'POST', url: '/api/v1/pipelines/run/p_usage_daily', key: h.keys.acme });
      assert.equal(late.statusCode, 503, late.body);
      assert.equal(late.json().error.code, 'SHUTTING_DOWN');
      assert.equal(late.headers['retry-after'], '5');
    } finally {
      held.release();
      await held.api.close();
      await h.close();
    }
  });
});
