/**
 * Cursor's Admin API daily usage on 127.0.0.1, with the shapes of the public reference
 * (docs.cursor.com "Admin API"):
 *
 * - `POST /teams/daily-usage-data`, basic auth with the API key (`key_...`) as the user name and an
 *   empty password (`curl -u API_KEY:`), JSON body `{ startDate, endDate }`, both numbers of epoch
 *   milliseconds.
 * - Answer: `{ data: [{ date (epoch ms of the UTC day), email, isActive, totalLinesAdded,
 *   totalLinesDeleted, acceptedLinesAdded, acceptedLinesDeleted, totalApplies, totalAccepts,
 *   totalRejects, totalTabsShown, totalTabsAccepted, composerRequests, chatRequests,
 *   agentRequests, cmdkUsages, subscriptionIncludedReqs, apiKeyReqs, usageBasedReqs,
 *   bugbotUsages, mostUsedModel, applyMostUsedExtension, tabMostUsedExtension, clientVersion }],
 *   period: { startDate, endDate } }`: a record per team member per day, inactive members included.
 * - A range of at most 30 days per request (issue 17; an older version of the reference said 90),
 *   so a longer period takes several requests.
 *
 * Not in the reference, so chosen here: a day is in the range when its 00:00 UTC is in
 * [startDate, endDate) (consecutive windows never return a day twice); errors are
 * `{ error: message }` with 401 for a missing or wrong key and 400 for a bad body or range.
 *
 * Usage is deterministic by a stable hash of (day, member), so a test can compute any range's rows.
 */
import { DAY_MS, daysBetween, startJsonApi, stableInt, type JsonApi, type JsonReply, type JsonRequest } from './json-api.ts';

export const CURSOR_API_KEY = 'key_fake0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
export const CURSOR_MEMBERS = ['alice@acme.example', 'bruno@acme.example', 'chen@acme.example', 'dana@acme.example'] as const;
export const CURSOR_MAX_RANGE_DAYS = 30;
const MODELS = ['claude-4-sonnet', 'gpt-5', 'cursor-small'];

/** The records of one member on one UTC day. */
export function memberDay(day: string, email: string): Record<string, unknown> {
  const seed = `${day}|${email}`;
  const active = stableInt(seed, 5) !== 0;
  const n = (name: string, max: number) => (active ? stableInt(`${seed}|${name}`, max) : 0);
  const totalLinesAdded = n('added', 2_000);
  const totalApplies = n('applies', 40);
  return {
    date: Date.parse(`${day}T00:00:00Z`),
    email,
    isActive: active,
    totalLinesAdded,
    totalLinesDeleted: n('deleted', 800),
    acceptedLinesAdded: Math.floor(totalLinesAdded * 0.6),
    acceptedLinesDeleted: n('accDeleted', 300),
    totalApplies,
    totalAccepts: Math.floor(totalApplies * 0.7),
    totalRejects: totalApplies - Math.floor(totalApplies * 0.7),
    totalTabsShown: n('tabsShown', 500),
    totalTabsAccepted: n('tabsAccepted', 150),
    composerRequests: n('composer', 30),
    chatRequests: n('chat', 50),
    agentRequests: n('agent', 60),
    cmdkUsages: n('cmdk', 20),
    subscriptionIncludedReqs: n('included', 100),
    apiKeyReqs: 0,
    usageBasedReqs: n('usageBased', 10),
    bugbotUsages: n('bugbot', 3),
    mostUsedModel: active ? MODELS[stableInt(`${seed}|model`, MODELS.length)] : null,
    applyMostUsedExtension: active ? 'ts' : null,
    tabMostUsedExtension: active ? 'ts' : null,
    clientVersion: active ? '1.4.5' : null,
  };
}

/** How many records days [from, to) hold: one per member per day. */
export function cursorRecordsIn(fromDay: string, toDay: string): number {
  return daysBetween(Date.parse(`${fromDay}T00:00:00Z`), Date.parse(`${toDay}T00:00:00Z`)).length * CURSOR_MEMBERS.length;
}

const refuse = (status: number, message: string): JsonReply => ({ status, body: { error: message } });

export interface CursorAdminApi extends JsonApi {
  /** The `{ startDate, endDate }` of every daily usage request, as UTC dates, in order. */
  rangesAsked(): Array<{ startDate: string; endDate: string }>;
}

export async function startCursorAdminApi(options: { apiKey?: string } = {}): Promise<CursorAdminApi> {
  const expected = `Basic ${Buffer.from(`${options.apiKey ?? CURSOR_API_KEY}:`).toString('base64')}`;

  function handle(request: JsonRequest): JsonReply {
    if (request.url.pathname !== '/teams/daily-usage-data') return refuse(404, 'Not found');
    if (request.method !== 'POST') return refuse(405, 'Method not allowed');
    if (request.headers.authorization !== expected) return refuse(401, 'Unauthorized: invalid API key');
    let body: { startDate?: unknown; endDate?: unknown };
    try {
      body = JSON.parse(request.body) as typeof body;
    } catch {
      return refuse(400, 'Request body must be JSON');
    }
    const { startDate, endDate } = body ?? {};
    if (!Number.isInteger(startDate) || !Number.isInteger(endDate))
      return refuse(400, 'startDate and endDate are required, as numbers of epoch milliseconds');
    const [start, end] = [startDate as number, endDate as number];
    if (end < start) return refuse(400, 'endDate must be after startDate');
    if (end - start > CURSOR_MAX_RANGE_DAYS * DAY_MS)
      return refuse(400, `Date range cannot exceed ${CURSOR_MAX_RANGE_DAYS} days. For longer periods, make multiple requests.`);
    const data = daysBetween(start, end).flatMap((day) => CURSOR_MEMBERS.map((email) => memberDay(day, email)));
    return { status: 200, body: { data, period: { startDate: start, endDate: end } } };
  }

  const api = await startJsonApi(handle);
  const day = (ms: unknown) => (typeof ms === 'number' ? new Date(ms).toISOString().slice(0, 10) : String(ms));
  return {
    ...api,
    rangesAsked: () =>
      api.requests
        .filter((r) => r.url.pathname === '/teams/daily-usage-data')
        .map((r) => {
          let body: { startDate?: unknown; endDate?: unknown } = {};
          try {
            body = JSON.parse(r.body) as typeof body;
          } catch {
            // Not JSON: the fake answered 400; the range shows as undefined.
          }
          return { startDate: day(body.startDate), endDate: day(body.endDate) };
        }),
  };
}
