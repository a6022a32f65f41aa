/**
 * Anthropic's Admin API usage report on 127.0.0.1, with the shapes, limits and errors of the
 * public reference (platform.claude.com "Get Messages Usage Report"):
 *
 * - `GET /v1/organizations/usage_report/messages`, headers `x-api-key` (an Admin key,
 *   `sk-ant-admin...`) and `anthropic-version` (`2023-06-01`).
 * - Query: `starting_at` (RFC 3339, required; buckets starting on or after it, snapped to the start
 *   of the minute/hour/day in UTC), `ending_at` (RFC 3339; buckets that end before it),
 *   `bucket_width` (`1d` default, `1h`, `1m`), `group_by[]` (repeated: `api_key_id`, `workspace_id`,
 *   `model`, `service_tier`, `context_window`, ...), `limit` (buckets per page; `1d`: default 7, at
 *   most 31; `1h`: 24 / 168; `1m`: 60 / 1440) and `page` (the previous response's `next_page`).
 * - Answer: `{ data: [{ starting_at, ending_at, results: [{ uncached_input_tokens,
 *   cache_creation: { ephemeral_1h_input_tokens, ephemeral_5m_input_tokens },
 *   cache_read_input_tokens, output_tokens, server_tool_use: { web_search_requests }, api_key_id,
 *   workspace_id, model, service_tier, context_window }] }], has_more, next_page }`. A dimension
 *   not grouped by is null in every result, and results are summed over it.
 * - Errors: `{ type: "error", error: { type, message } }`; 401 `authentication_error` for a
 *   missing or wrong key, 400 `invalid_request_error` for a bad parameter or a missing version header.
 *
 * Stricter than the reference, as issue 17 outlines the API: a range of more buckets than `limit`
 * may hold (31 days at `1d`) is refused with 400 instead of paged, so a source must ask in windows.
 *
 * Usage is deterministic: every day, each (model, API key) pair is present or not by a stable hash,
 * with token counts from the same hash, so a test can compute what any range holds (`resultsIn`).
 */
import { DAY_MS, startJsonApi, stableInt, type JsonApi, type JsonReply, type JsonRequest } from './json-api.ts';

export const ANTHROPIC_ADMIN_KEY = 'sk-ant-admin01-fake-usage-report-key';
export const ANTHROPIC_VERSION = '2023-06-01';
export const ANTHROPIC_MODELS = ['claude-sonnet-4-20250514', 'claude-3-5-haiku-20241022', 'claude-opus-4-20250514'] as const;
/** API keys of the organization, each in its workspace. */
export const ANTHROPIC_API_KEYS = [
  { id: 'apikey_01Alice', workspace: 'wrkspc_01Product' },
  { id: 'apikey_01Bruno', workspace: 'wrkspc_01Product' },
  { id: 'apikey_01Chen', workspace: 'wrkspc_01Research' },
  { id: 'apikey_01Batch', workspace: 'wrkspc_01Research' },
] as const;

const DIMENSIONS = ['api_key_id', 'workspace_id', 'model', 'service_tier', 'context_window'] as const;
/** Group-by values the reference lists that this organization has no data for: accepted, always null. */
const OTHER_GROUPS = ['account_id', 'service_account_id', 'inference_geo', 'speed'];
type Dimension = (typeof DIMENSIONS)[number];

const WIDTHS: Record<string, { ms: number; defaultLimit: number; maxLimit: number }> = {
  '1d': { ms: DAY_MS, defaultLimit: 7, maxLimit: 31 },
  '1h': { ms: 3_600_000, defaultLimit: 24, maxLimit: 168 },
  '1m': { ms: 60_000, defaultLimit: 60, maxLimit: 1440 },
};

export interface UsageResult {
  uncached_input_tokens: number;
  cache_creation: { ephemeral_1h_input_tokens: number; ephemeral_5m_input_tokens: number };
  cache_read_input_tokens: number;
  output_tokens: number;
  server_tool_use: { web_search_requests: number };
  api_key_id: string | null;
  workspace_id: string | null;
  model: string | null;
  service_tier: string | null;
  context_window: string | null;
}

/** Ungrouped usage of one UTC day: one result per (model, API key) pair used that day. */
export function usageOfDay(day: string): UsageResult[] {
  const results: UsageResult[] = [];
  for (const model of ANTHROPIC_MODELS) {
    for (const key of ANTHROPIC_API_KEYS) {
      const seed = `${day}|${model}|${key.id}`;
      if (stableInt(seed, 4) === 0) continue;
      results.push({
        uncached_input_tokens: 1_000 + stableInt(`${seed}|in`, 90_000),
        cache_creation: {
          ephemeral_1h_input_tokens: stableInt(`${seed}|c1h`, 5_000),
          ephemeral_5m_input_tokens: stableInt(`${seed}|c5m`, 20_000),
        },
        cache_read_input_tokens: stableInt(`${seed}|read`, 40_000),
        output_tokens: 200 + stableInt(`${seed}|out`, 30_000),
        server_tool_use: { web_search_requests: stableInt(`${seed}|web`, 3) },
        api_key_id: key.id,
        workspace_id: key.workspace,
        model,
        service_tier: 'standard',
        context_window: '0-200k',
      });
    }
  }
  return results;
}

/** The results of days [from, to) grouped by model and api_key_id, as the ai-usage template asks. */
export function resultsIn(fromDay: string, toDay: string): number {
  let count = 0;
  for (let t = Date.parse(`${fromDay}T00:00:00Z`); t < Date.parse(`${toDay}T00:00:00Z`); t += DAY_MS) {
    count += usageOfDay(new Date(t).toISOString().slice(0, 10)).length;
  }
  return count;
}

function grouped(results: UsageResult[], groupBy: Set<Dimension>): UsageResult[] {
  const groups = new Map<string, UsageResult>();
  for (const r of results) {
    const key = DIMENSIONS.map((d) => (groupBy.has(d) ? r[d] : '')).join('|');
    const group = groups.get(key);
    if (!group) {
      const dims = Object.fromEntries(DIMENSIONS.map((d) => [d, groupBy.has(d) ? r[d] : null]));
      groups.set(key, { ...r, cache_creation: { ...r.cache_creation }, server_tool_use: { ...r.server_tool_use }, ...dims });
      continue;
    }
    group.uncached_input_tokens += r.uncached_input_tokens;
    group.cache_creation.ephemeral_1h_input_tokens += r.cache_creation.ephemeral_1h_input_tokens;
    group.cache_creation.ephemeral_5m_input_tokens += r.cache_creation.ephemeral_5m_input_tokens;
    group.cache_read_input_tokens += r.cache_read_input_tokens;
    group.output_tokens += r.output_tokens;
    group.server_tool_use.web_search_requests += r.server_tool_use.web_search_requests;
  }
  return [...groups.values()];
}

const error = (status: number, type: string, message: string): JsonReply => ({ status, body: { type: 'error', error: { type, message } } });
const invalid = (message: string) => error(400, 'invalid_request_error', message);

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export interface AnthropicUsageApi extends JsonApi {
  /** The `starting_at` of every usage report request, in order (pages of one window repeat it). */
  windowsAsked(): string[];
  /** Until `heal()`, a request whose window starts at `startingAt` (a date or timestamp) gets a 500 `api_error`. */
  failWindow(startingAt: string): void;
  heal(): void;
}

export async function startAnthropicUsageApi(options: { adminKey?: string } = {}): Promise<AnthropicUsageApi> {
  const adminKey = options.adminKey ?? ANTHROPIC_ADMIN_KEY;
  const failing = new Set<number>();

  function handle(request: JsonRequest): JsonReply {
    if (request.url.pathname !== '/v1/organizations/usage_report/messages') return error(404, 'not_found_error', 'Not found');
    if (request.method !== 'GET') return error(405, 'invalid_request_error', `Method ${request.method} not allowed`);
    if (request.headers['x-api-key'] !== adminKey) return error(401, 'authentication_error', 'invalid x-api-key');
    if (!request.headers['anthropic-version']) return invalid('anthropic-version: header is required');
    const q = request.url.searchParams;
    const startingAt = q.get('starting_at');
    if (!startingAt || !RFC3339.test(startingAt)) return invalid('starting_at: expected an RFC 3339 timestamp');
    const endingAt = q.get('ending_at');
    if (endingAt !== null && !RFC3339.test(endingAt)) return invalid('ending_at: expected an RFC 3339 timestamp');
    const widthName = q.get('bucket_width') ?? '1d';
    const width = WIDTHS[widthName];
    if (!width) return invalid(`bucket_width: expected one of ${Object.keys(WIDTHS).join(', ')}`);
    const limit = q.has('limit') ? Number(q.get('limit')) : width.defaultLimit;
    if (!Number.isInteger(limit) || limit < 1 || limit > width.maxLimit)
      return invalid(`limit: must be between 1 and ${width.maxLimit} for bucket_width ${widthName}`);
    const groupBy = new Set<Dimension>();
    for (const value of q.getAll('group_by[]')) {
      if ((DIMENSIONS as readonly string[]).includes(value)) groupBy.add(value as Dimension);
      else if (!OTHER_GROUPS.includes(value)) return invalid(`group_by[]: unknown value "${value}"`);
    }
    if (widthName !== '1d') return invalid('this fake serves bucket_width 1d only');

    const start = Math.floor(Date.parse(startingAt) / DAY_MS) * DAY_MS;
    const end = endingAt === null ? Date.now() : Date.parse(endingAt);
    if (end <= start) return invalid('ending_at must be after starting_at');
    if (Math.floor((end - start) / width.ms) > width.maxLimit)
      return invalid(
        `the range from starting_at to ending_at holds more than ${width.maxLimit} buckets of ${widthName}; ask for a shorter range`,
      );
    if (failing.has(Date.parse(startingAt))) return error(500, 'api_error', 'Internal server error');

    let first = start;
    const page = q.get('page');
    if (page !== null) {
      const decoded = page.startsWith('page_') ? Date.parse(Buffer.from(page.slice(5), 'base64').toString('utf8')) : NaN;
      if (Number.isNaN(decoded) || decoded < start || decoded >= end) return invalid('page: not a page of this report');
      first = decoded;
    }
    const data = [];
    let t = first;
    for (; t + width.ms <= end && data.length < limit; t += width.ms) {
      const day = new Date(t).toISOString().slice(0, 10);
      data.push({
        starting_at: new Date(t).toISOString().replace('.000Z', 'Z'),
        ending_at: new Date(t + width.ms).toISOString().replace('.000Z', 'Z'),
        results: grouped(usageOfDay(day), groupBy),
      });
    }
    const hasMore = t + width.ms <= end;
    const nextPage = hasMore ? `page_${Buffer.from(new Date(t).toISOString()).toString('base64')}` : null;
    return { status: 200, body: { data, has_more: hasMore, next_page: nextPage } };
  }

  const api = await startJsonApi(handle);
  return {
    ...api,
    windowsAsked: () =>
      api.requests.filter((r) => r.url.pathname.endsWith('/usage_report/messages')).map((r) => r.url.searchParams.get('starting_at') ?? ''),
    failWindow: (startingAt) => failing.add(Date.parse(startingAt.includes('T') ? startingAt : `${startingAt}T00:00:00Z`)),
    heal: () => failing.clear(),
  };
}
