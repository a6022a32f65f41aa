/** GET /api/v1/pipelines/stats: the calling tenant's run statistics per pipeline, and nobody else's. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRun, finishRun, markRunning } from '../../src/services/runs/store.ts';
import { manualClock } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { apiHarness, type ApiHarness } from './helpers.ts';

after(cleanupAll);

interface StatsBody {
  since: string;
  pipelines: Array<{
    pipeline_id: string;
    total_runs: number;
    finished_runs: number;
    successful: number;
    failed: number;
    success_rate_pct: number | null;
    p50_duration_ms: number | null;
    p95_duration_ms: number | null;
    rows_processed: number;
    last_failure: { pipeline_logging_id: string; status: string; created_at: string; error_message: string | null } | null;
  }>;
}

describe('GET /api/v1/pipelines/stats', () => {
  const clock = manualClock('2030-01-15T12:00:00.000Z');
  let h: ApiHarness;
  let failedRunId: string;

  /** A finished run of `durationMs`, created `daysAgo` before the clock's time. */
  async function seedRun(tenantId: string, pipelineId: string, daysAgo: number, status: 'COMPLETE' | 'FAILED', durationMs: number) {
    const now = clock.now();
    const runId = randomUUID();
    clock.set(new Date(now.getTime() - daysAgo * 86_400_000));
    await createRun(h.ctx, {
      runId,
      tenantId,
      pipelineId,
      trigger: 'api',
      runDate: '2030-01-01',
      parameters: {},
      timeoutAt: new Date(clock.now().getTime() + 60_000),
    });
    await markRunning(h.ctx, runId);
    clock.advance(durationMs);
    await finishRun(h.ctx, runId, {
      status,
      exitCode: status === 'COMPLETE' ? 0 : 3,
      rowsProcessed: 5,
      ...(status === 'FAILED' ? { errorMessage: 'transform failed: table missing\nat line 2' } : {}),
    });
    clock.set(now);
    return runId;
  }

  before(async () => {
    h = await apiHarness({}, clock);
    await seedRun('acme_corp', 'p_usage_daily', 1, 'COMPLETE', 1000);
    await seedRun('acme_corp', 'p_usage_daily', 1, 'COMPLETE', 3000);
    failedRunId = await seedRun('acme_corp', 'p_usage_daily', 2, 'FAILED', 2000);
    await seedRun('acme_corp', 'p_usage_api', 20, 'COMPLETE', 4000);
    await seedRun('other_co', 'p_secret', 1, 'FAILED', 1000);
  });
  after(() => h.close());

  const get = (query: string, key: string = h.keys.acme) => h.call({ method: 'GET', url: `/api/v1/pipelines/stats${query}`, key });

  it("answers the caller's pipelines over the last 7 days by default", async () => {
    const res = await get('');
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as StatsBody;
    assert.equal(body.since, '7d');
    assert.deepEqual(body.pipelines, [
      {
        pipeline_id: 'p_usage_daily',
        total_runs: 3,
        finished_runs: 3,
        successful: 2,
        failed: 1,
        success_rate_pct: 66.67,
        p50_duration_ms: 2000,
        p95_duration_ms: 2900,
        rows_processed: 15,
        last_failure: {
          pipeline_logging_id: failedRunId,
          status: 'FAILED',
          created_at: '2030-01-13T12:00:00.000Z',
          error_message: 'transform failed: table missing',
        },
      },
    ]);
  });

  it('takes a longer window and one pipeline; another tenant sees only its own', async () => {
    const month = (await get('?since=30d')).json() as StatsBody;
    assert.deepEqual(
      month.pipelines.map((p) => p.pipeline_id),
      ['p_usage_api', 'p_usage_daily'],
    );
    const one = (await get('?since=30d&pipeline_id=p_usage_api')).json() as StatsBody;
    assert.deepEqual(
      one.pipelines.map((p) => [p.pipeline_id, p.success_rate_pct]),
      [['p_usage_api', 100]],
    );
    const other = (await get('', h.keys.other)).json() as StatsBody;
    assert.deepEqual(
      other.pipelines.map((p) => p.pipeline_id),
      ['p_secret'],
    );
  });

  it('refuses a window that is no duration, an unknown parameter and a bad pipeline id (400), a missing key (401)', async () => {
    const notDuration = await get('?since=soon');
    assert.equal(notDuration.statusCode, 400, notDuration.body);
    assert.match(notDuration.json().error.message, /since: "soon" is not a duration/);
    assert.equal((await get('?tenant_id=other_co')).statusCode, 400);
    assert.equal((await get("?pipeline_id=p'x")).statusCode, 400);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/pipelines/stats' })).statusCode, 401);
    const post = await h.call({ method: 'POST', url: '/api/v1/pipelines/stats', key: h.keys.acme });
    assert.equal(post.statusCode, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });
});
