/**
 * REST sources with date windows, end to end on the embedded warehouse: each window fetched and
 * landed with its cursor, reruns asking only for new windows, a failed window resumed where it stopped.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { startFakeApi, type FakeApi, type FakeReply, type RecordedRequest } from '../fakes/http-api.ts';

after(cleanupAll);

const TENANT = 'win_co';
const DAY_MS = 86_400_000;
const MODELS = ['a', 'b', 'c'];
const ms = (day: string) => Date.parse(`${day}T00:00:00Z`);
const day = (epochMs: number) => new Date(epochMs).toISOString().slice(0, 10);

/** The days of [start, end), as YYYY-MM-DD. */
function daysOf(start: number, end: number): string[] {
  const days: string[] = [];
  for (let t = start; t < end; t += DAY_MS) days.push(day(t));
  return days;
}

/** GET /v1/daily?start_date&end_date (dates, end exclusive), three rows a day, cursor-paged by 4. */
function dailyApi(req: RecordedRequest): FakeReply {
  const [start, end] = [req.url.searchParams.get('start_date') ?? '', req.url.searchParams.get('end_date') ?? ''];
  if (!/^\d{4}-\d{2}-\d{2}$/.test(start) || !/^\d{4}-\d{2}-\d{2}$/.test(end)) return { status: 400, body: { error: 'dates expected' } };
  if (req.url.searchParams.getAll('group_by[]').join(',') !== 'model,key') return { status: 400, body: { error: 'group_by[] expected' } };
  const rows = daysOf(ms(start), ms(end)).flatMap((d) => MODELS.map((model, i) => ({ id: `${d}_${model}`, day: d, model, tokens: i + 1 })));
  const offset = Number(req.url.searchParams.get('page') ?? 0);
  return { body: { data: rows.slice(offset, offset + 4), next_page: offset + 4 < rows.length ? String(offset + 4) : null } };
}

/**
 * POST /teams/daily-usage-data as Cursor's Admin API takes it: basic auth with the key as user
 * name and no password, a JSON body of epoch milliseconds, at most 30 days a request.
 */
function usageDataApi(failFrom: { startDate?: number }) {
  return (req: RecordedRequest): FakeReply => {
    if (req.headers.authorization !== `Basic ${Buffer.from('key_1:').toString('base64')}`)
      return { status: 401, body: { error: 'Unauthorized' } };
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/json')
      return { status: 405, body: { error: 'POST JSON expected' } };
    const body = JSON.parse(req.body) as { startDate: unknown; endDate: unknown };
    if (typeof body.startDate !== 'number' || typeof body.endDate !== 'number')
      return { status: 400, body: { error: 'dates must be numbers' } };
    if (body.endDate - body.startDate > 30 * DAY_MS) return { status: 400, body: { error: 'Date range cannot exceed 30 days' } };
    if (body.startDate === failFrom.startDate) return { status: 500, body: { error: 'internal error' } };
    const data = daysOf(body.startDate, body.endDate).flatMap((d) =>
      MODELS.map((model) => ({ date: ms(d), email: `${model}@co.test`, requests: 1 })),
    );
    return { body: { data, period: { startDate: body.startDate, endDate: body.endDate } } };
  };
}

describe('rest_api sources with windows', () => {
  let root: string;
  let api: FakeApi;
  const failFrom: { startDate?: number } = {};
  const usageData = usageDataApi(failFrom);
  const dir = () => path.join(root, 'configs', TENANT);

  before(async () => {
    api = await startFakeApi((req) => (req.url.pathname === '/v1/daily' ? dailyApi(req) : usageData(req)));
    root = await newBootstrappedWorkspace('rest-windows');
    await allowFakeApis(root);
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'Windows', plan: 'scale' }));
    await writeFile(path.join(dir(), 'secrets', 'admin_key.txt'), 'key_1', { mode: 0o600 });
    await writeFile(
      path.join(dir(), 'sources', 'daily_usage.yml'),
      [
        'source_id: daily_usage',
        'type: rest_api',
        `url: ${api.base}/v1/daily`,
        'params: { start_date: "{{ window_start }}", end_date: "{{ window_end }}", "group_by[]": [model, key] }',
        'pagination: { type: cursor, cursor_path: next_page, param: page }',
        'records_path: data',
        'retry: { max_attempts: 1 }',
        'windows: { size: 7d }',
        'incremental: { cursor_field: day, initial: "2025-01-01" }',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir(), 'sources', 'usage_data.yml'),
      [
        'source_id: usage_data',
        'type: rest_api',
        `url: ${api.base}/teams/daily-usage-data`,
        'method: POST',
        'body: { startDate: "{{ window_start | epoch_ms }}", endDate: "{{ window_end | epoch_ms }}" }',
        'auth: { type: basic, username_secret: admin_key }',
        'records_path: data',
        'retry: { max_attempts: 1 }',
        'windows: { size: 30d, from: "{{ cursor }}", to: run_date }',
        'incremental: { cursor_field: date, initial: "2025-01-01" }',
        '',
      ].join('\n'),
    );
    const pipeline = (id: string, source: string, destination: string) =>
      writeFile(
        path.join(dir(), 'pipelines', `${id}.yml`),
        `pipeline_id: ${id}\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/${source}.yml, destination: ${destination} }\n`,
      );
    await pipeline('p_daily', 'daily_usage', '{ table: raw_daily, write_mode: merge, merge_keys: [id] }');
    await pipeline('p_usage', 'usage_data', '{ table: raw_usage_data, write_mode: append }');
  });
  after(() => api.close());

  const run = (pipelineId: string, runDate: string, extra: { fullRefresh?: boolean; signal?: AbortSignal } = {}, observer = {}) =>
    withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId, runDate, ...extra }, observer));
  const count = (table: string) => withWarehouse(root, (w) => w.count(TENANT, table));
  const cursorOf = async (pipelineId: string) => {
    const rows = await withWarehouse(root, (w) => w.select(TENANT, '_convergence_state', { where: { pipeline_id: pipelineId } }));
    return rows[0]?.['cursor_value'];
  };
  const windowsAsked = () =>
    api.requests
      .filter((r) => r.url.pathname === '/v1/daily' && !r.url.searchParams.has('page'))
      .map((r) => `${r.url.searchParams.get('start_date')}..${r.url.searchParams.get('end_date')}`);

  it('loads every window from incremental.initial to the run date, the last one partial', async () => {
    const progress: string[] = [];
    const summary = await run('p_daily', '2025-02-01', {}, { stepProgress: (_: number, text: string) => progress.push(text) });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.deepEqual(windowsAsked(), [
      '2025-01-01..2025-01-08',
      '2025-01-08..2025-01-15',
      '2025-01-15..2025-01-22',
      '2025-01-22..2025-01-29',
      '2025-01-29..2025-02-01',
    ]);
    assert.equal(await count('raw_daily'), 31 * 3);
    assert.equal(summary.steps[0]!.rowsIn, 31 * 3);
    assert.equal(await cursorOf('p_daily'), '2025-02-01');
    assert.ok(
      progress.some((p) => /window 2\/5 2025-01-08\.\.2025-01-15, page 2/.test(p)),
      progress.join('\n'),
    );
    const [log] = await withWarehouse(root, (w) =>
      w.select(METADATA_DATASET, T.stepLogs, { where: { pipeline_logging_id: summary.runId } }),
    );
    const details = (typeof log?.['details'] === 'string' ? JSON.parse(log['details']) : log?.['details']) as {
      windows: Array<{ start: string; end: string; rows: number }>;
      cursorFrom: string;
      cursorTo: string;
    };
    assert.deepEqual(
      details.windows.map((w) => w.rows),
      [21, 21, 21, 21, 9],
    );
    assert.equal(details.cursorFrom, '2025-01-01');
    assert.equal(details.cursorTo, '2025-02-01');
  });

  it('a rerun on the same date finds no new window and asks nothing', async () => {
    api.requests.length = 0;
    const summary = await run('p_daily', '2025-02-01');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(api.requests.length, 0);
    assert.deepEqual(summary.steps[0]!.notes, ['no new window since 2025-02-01 (windows end at 2025-02-01)']);
    assert.equal(await count('raw_daily'), 31 * 3);
  });

  it('a later run asks only for the new windows', async () => {
    api.requests.length = 0;
    const summary = await run('p_daily', '2025-02-10');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.deepEqual(windowsAsked(), ['2025-02-01..2025-02-08', '2025-02-08..2025-02-10']);
    assert.equal(summary.steps[0]!.rowsIn, 9 * 3);
    assert.equal(await count('raw_daily'), 40 * 3);
    assert.equal(await cursorOf('p_daily'), '2025-02-10');
  });

  it('POSTs epoch-millisecond bodies within the 30-day cap; a failed window leaves the earlier ones landed and the cursor at its start', async () => {
    api.requests.length = 0;
    failFrom.startDate = ms('2025-01-31');
    const failed = await run('p_usage', '2025-04-01');
    assert.equal(failed.status, 'FAILED');
    assert.equal(failed.exitCode, 3);
    assert.match(failed.error?.message ?? '', /^window 2\/3 2025-01-31\.\.2025-03-02: .*500/);
    assert.match(failed.error?.message ?? '', /the next run starts at 2025-01-31\)$/);
    const bodies = api.requests.map((r) => JSON.parse(r.body) as { startDate: number; endDate: number });
    assert.deepEqual(bodies, [
      { startDate: ms('2025-01-01'), endDate: ms('2025-01-31') },
      { startDate: ms('2025-01-31'), endDate: ms('2025-03-02') },
    ]);
    assert.equal(await count('raw_usage_data'), 30 * 3);
    assert.equal(await cursorOf('p_usage'), '2025-01-31');
    // The failed step still reports what its committed window landed.
    assert.equal(failed.steps[0]!.status, 'FAILED');
    assert.equal(failed.steps[0]!.rowsOut, 30 * 3);
  });

  it('the next run resumes at the failed window and lands the rest exactly once', async () => {
    api.requests.length = 0;
    delete failFrom.startDate;
    const summary = await run('p_usage', '2025-04-01');
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.deepEqual(
      api.requests.map((r) => day((JSON.parse(r.body) as { startDate: number }).startDate)),
      ['2025-01-31', '2025-03-02'],
    );
    assert.equal(await count('raw_usage_data'), 90 * 3);
    const [distinct] = (await withWarehouse(root, (w) =>
      w.query(`SELECT COUNT(DISTINCT CAST("date" AS VARCHAR) || email) AS n FROM ${w.qualify(TENANT, 'raw_usage_data')}`),
    )) as Array<{ n: unknown }>;
    assert.equal(Number(distinct?.n), 90 * 3, 'no row twice');
    assert.equal(await cursorOf('p_usage'), '2025-04-01');
  });

  it('--full-refresh starts again at incremental.initial and replaces the append table with its first window', async () => {
    api.requests.length = 0;
    const summary = await run('p_usage', '2025-04-01', { fullRefresh: true });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(api.requests.length, 3);
    assert.equal(await count('raw_usage_data'), 90 * 3);
  });

  it('an interrupt between windows stops the run with the windows before it landed', async () => {
    api.requests.length = 0;
    const controller = new AbortController();
    const summary = await run(
      'p_daily',
      '2025-03-03',
      { signal: controller.signal },
      { stepProgress: (_: number, text: string) => /window 2\/3/.test(text) && controller.abort() },
    );
    assert.equal(summary.status, 'CANCELLED');
    assert.deepEqual(windowsAsked(), ['2025-02-10..2025-02-17']);
    assert.equal(await cursorOf('p_daily'), '2025-02-17');
    assert.equal(await count('raw_daily'), 47 * 3);
  });

  it('refuses write_mode replace for a source with windows, before asking the API', async () => {
    await writeFile(
      path.join(dir(), 'pipelines', 'p_replace.yml'),
      'pipeline_id: p_replace\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/daily_usage.yml, destination: { table: raw_replace, write_mode: replace } }\n',
    );
    api.requests.length = 0;
    const summary = await run('p_replace', '2025-01-10');
    assert.equal(summary.status, 'FAILED');
    assert.match(summary.error?.message ?? '', /write_mode replace cannot take a source with windows/);
    assert.equal(api.requests.length, 0);
  });
});
