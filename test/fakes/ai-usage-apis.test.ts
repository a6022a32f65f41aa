/**
 * The fakes of the ai-usage template's APIs answer as the providers document: their auth, limits,
 * paging and error shapes, asked with plain HTTP requests (the template's own runs are in
 * test/services/ai-usage-template.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ANTHROPIC_ADMIN_KEY,
  ANTHROPIC_VERSION,
  startAnthropicUsageApi,
  usageOfDay,
  type AnthropicUsageApi,
} from './anthropic-usage-api.ts';
import { CURSOR_API_KEY, CURSOR_MEMBERS, startCursorAdminApi, type CursorAdminApi } from './cursor-admin-api.ts';
import { SHEETS_READONLY_SCOPE, startGoogleSheetsApi, type GoogleSheetsApi } from './google-sheets-api.ts';
import { DAY_MS } from './json-api.ts';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('Anthropic usage report fake', () => {
  let api: AnthropicUsageApi;
  before(async () => (api = await startAnthropicUsageApi()));
  after(() => api.close());
  const auth = { 'x-api-key': ANTHROPIC_ADMIN_KEY, 'anthropic-version': ANTHROPIC_VERSION };
  const report = (query: string, headers: Record<string, string> = auth) =>
    get(`${api.base}/v1/organizations/usage_report/messages?${query}`, headers);

  it('pages daily buckets with next_page, each holding its results grouped as group_by[] asks', async () => {
    const query = 'starting_at=2025-01-01T00:00:00Z&ending_at=2025-01-11T00:00:00Z&group_by[]=model&group_by[]=api_key_id';
    const first = await report(query);
    assert.equal(first.status, 200);
    const data = first.body['data'] as Array<{ starting_at: string; ending_at: string; results: Array<Record<string, unknown>> }>;
    assert.equal(data.length, 7, 'seven buckets a page by default');
    assert.deepEqual([data[0]!.starting_at, data[0]!.ending_at], ['2025-01-01T00:00:00Z', '2025-01-02T00:00:00Z']);
    assert.equal(data[0]!.results.length, usageOfDay('2025-01-01').length);
    assert.equal(data[0]!.results[0]!['workspace_id'], null, 'not grouped by workspace: null');
    assert.equal(first.body['has_more'], true);
    const second = await report(`${query}&page=${String(first.body['next_page'])}`);
    assert.equal((second.body['data'] as unknown[]).length, 3);
    assert.deepEqual([second.body['has_more'], second.body['next_page']], [false, null]);

    const ungrouped = await report('starting_at=2025-01-01T00:00:00Z&ending_at=2025-01-02T00:00:00Z');
    const [bucket] = ungrouped.body['data'] as Array<{ results: Array<Record<string, unknown>> }>;
    assert.equal(bucket!.results.length, 1, 'one total when nothing is grouped');
    assert.equal(
      bucket!.results[0]!['output_tokens'],
      usageOfDay('2025-01-01').reduce((n, r) => n + r.output_tokens, 0),
    );
  });

  it('refuses as the API does: 401 without the admin key, 400 without the version, a limit over 31 or a range of more buckets', async () => {
    const range = 'starting_at=2025-01-01T00:00:00Z&ending_at=2025-01-08T00:00:00Z';
    const noKey = await report(range, { 'anthropic-version': ANTHROPIC_VERSION });
    assert.equal(noKey.status, 401);
    assert.deepEqual(noKey.body, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
    for (const [query, headers] of [
      [range, { 'x-api-key': ANTHROPIC_ADMIN_KEY }],
      [`${range}&limit=32`, auth],
      ['starting_at=2025-01-01T00:00:00Z&ending_at=2025-03-01T00:00:00Z', auth],
      [`${range}&group_by[]=colour`, auth],
      ['starting_at=yesterday', auth],
    ] as const) {
      const r = await report(query, headers);
      assert.equal(r.status, 400, query);
      assert.equal((r.body['error'] as { type: string }).type, 'invalid_request_error', query);
    }
  });
});

describe('Cursor daily usage fake', () => {
  let api: CursorAdminApi;
  before(async () => (api = await startCursorAdminApi()));
  after(() => api.close());
  const post = async (body: unknown, user = CURSOR_API_KEY) => {
    const response = await fetch(`${api.base}/teams/daily-usage-data`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${user}:`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const start = Date.parse('2025-01-01T00:00:00Z');

  it('answers a record per member per day of [startDate, endDate), with the period asked', async () => {
    const r = await post({ startDate: start, endDate: start + 3 * DAY_MS });
    assert.equal(r.status, 200);
    const data = r.body['data'] as Array<Record<string, unknown>>;
    assert.equal(data.length, 3 * CURSOR_MEMBERS.length);
    assert.equal(data[0]!['date'], start);
    assert.deepEqual(r.body['period'], { startDate: start, endDate: start + 3 * DAY_MS });
    assert.deepEqual(api.rangesAsked().at(-1), { startDate: '2025-01-01', endDate: '2025-01-04' });
  });

  it('refuses a range over 30 days, dates that are not epoch-ms numbers and a key not sent as the user name', async () => {
    const long = await post({ startDate: start, endDate: start + 31 * DAY_MS });
    assert.equal(long.status, 400);
    assert.match(String(long.body['error']), /cannot exceed 30 days/);
    assert.equal((await post({ startDate: start, endDate: start + 30 * DAY_MS })).status, 200, 'exactly 30 days is allowed');
    assert.equal((await post({ startDate: String(start), endDate: String(start + DAY_MS) })).status, 400);
    assert.equal((await post({ startDate: start, endDate: start + DAY_MS }, 'key_wrong')).status, 401);
  });
});

describe('Google Sheets values.get fake', () => {
  let api: GoogleSheetsApi;
  let token: string;
  before(async () => {
    api = await startGoogleSheetsApi();
    api.putSheet('sheet1', 'Team list', [
      ['email', 'team', 'key'],
      ['a@x', 'A', 'k1'],
      ['b@x', 'B', ''],
      ['', '', ''],
      ['', '', ''],
    ]);
    api.share('sheet1', 'reader@p.iam.gserviceaccount.com');
    token = 'ya29.minted-elsewhere';
    api.trustToken(token, 'reader@p.iam.gserviceaccount.com', [SHEETS_READONLY_SCOPE]);
  });
  after(() => api.close());
  const values = (sheet: string, range: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }) =>
    get(`${api.base}/v4/spreadsheets/${sheet}/values/${encodeURIComponent(range)}`, headers);

  it('answers a ValueRange, trailing empty cells and rows left out', async () => {
    const r = await values('sheet1', "'Team list'!A1:C");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      range: "'Team list'!A1:C5",
      majorDimension: 'ROWS',
      values: [
        ['email', 'team', 'key'],
        ['a@x', 'A', 'k1'],
        ['b@x', 'B'],
      ],
    });
  });

  it('refuses as Google does: 401 without a token, 403 for a scope or a sheet not granted, 404 and 400', async () => {
    const none = await values('sheet1', 'Team list', {});
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys(none.body['error'] as object).sort(), ['code', 'message', 'status']);
    assert.equal((none.body['error'] as { status: string }).status, 'UNAUTHENTICATED');

    api.trustToken('ya29.drive-less', 'reader@p.iam.gserviceaccount.com', ['https://www.googleapis.com/auth/bigquery']);
    const scope = await values('sheet1', 'Team list', { authorization: 'Bearer ya29.drive-less' });
    assert.deepEqual([scope.status, (scope.body['error'] as { status: string }).status], [403, 'PERMISSION_DENIED']);

    const key = api.accounts.issue('stranger@p.iam.gserviceaccount.com');
    assert.ok(key.json.includes('private_key'));
    api.trustToken('ya29.stranger', 'stranger@p.iam.gserviceaccount.com', [SHEETS_READONLY_SCOPE]);
    const stranger = await values('sheet1', 'Team list', { authorization: 'Bearer ya29.stranger' });
    assert.deepEqual(
      [stranger.status, (stranger.body['error'] as { message: string }).message],
      [403, 'The caller does not have permission'],
    );

    assert.equal((await values('nope', 'Team list')).status, 404);
    assert.equal((await values('sheet1', 'Missing tab!A1:B')).status, 400);
  });
});
