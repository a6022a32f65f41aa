/**
 * The three APIs of the ai-usage template (Anthropic usage report, Cursor daily usage, Google
 * Sheets) as local fakes, and a workspace's template pointed at them: the sources' real base URLs
 * replaced by the fakes', their host:port listed in the local environment's rest_sources, and
 * the team directory sheet shared with the service account whose key the tenant stores.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ANTHROPIC_ADMIN_KEY,
  ANTHROPIC_API_KEYS,
  ANTHROPIC_MODELS,
  startAnthropicUsageApi,
  type AnthropicUsageApi,
} from '../fakes/anthropic-usage-api.ts';
import { CURSOR_API_KEY, CURSOR_MEMBERS, memberDay, startCursorAdminApi, type CursorAdminApi } from '../fakes/cursor-admin-api.ts';
import { startGoogleSheetsApi, type GoogleSheetsApi } from '../fakes/google-sheets-api.ts';
import { DAY_MS } from '../fakes/json-api.ts';

export const SHEET_ID = '1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-team';
export const SHEETS_ACCOUNT = 'sheets-reader@acme-analytics.iam.gserviceaccount.com';

/** The team directory tab: Dana has no API key (the API leaves her trailing empty cell out); apikey_01Batch is no one's. */
export const DIRECTORY: string[][] = [
  ['email', 'name', 'team', 'anthropic_api_key_id'],
  ['alice@acme.example', 'Alice', 'Platform', ANTHROPIC_API_KEYS[0].id],
  ['bruno@acme.example', 'Bruno', 'Platform', ANTHROPIC_API_KEYS[1].id],
  ['chen@acme.example', 'Chen', 'Research', ANTHROPIC_API_KEYS[2].id],
  ['dana@acme.example', 'Dana', 'Design', ''],
];
export const UNASSIGNED_API_KEY = ANTHROPIC_API_KEYS[3].id;

export interface AiUsageFakes {
  anthropic: AnthropicUsageApi;
  cursor: CursorAdminApi;
  sheets: GoogleSheetsApi;
  /** The tenant secrets the template names, by name. */
  secrets: Record<string, string>;
  close(): Promise<void>;
}

export async function startAiUsageFakes(): Promise<AiUsageFakes> {
  const [anthropic, cursor, sheets] = await Promise.all([startAnthropicUsageApi(), startCursorAdminApi(), startGoogleSheetsApi()]);
  sheets.putSheet(SHEET_ID, 'Directory', DIRECTORY);
  sheets.share(SHEET_ID, SHEETS_ACCOUNT);
  const key = sheets.accounts.issue(SHEETS_ACCOUNT, 'acme-analytics');
  return {
    anthropic,
    cursor,
    sheets,
    secrets: { anthropic_admin_key: ANTHROPIC_ADMIN_KEY, cursor_api_key: CURSOR_API_KEY, google_sheets_sa_key: key.json },
    close: async () => {
      await Promise.all([anthropic.close(), cursor.close(), sheets.close()]);
    },
  };
}

/** Points a tenant's installed template at the fakes. */
export async function pointTemplateAtFakes(root: string, tenantId: string, fakes: AiUsageFakes): Promise<void> {
  const sources = path.join(root, 'configs', tenantId, 'sources');
  const bases: Array<[string, string, string]> = [
    ['anthropic_usage.yml', 'https://api.anthropic.com', fakes.anthropic.base],
    ['cursor_usage.yml', 'https://api.cursor.com', fakes.cursor.base],
    ['team_directory.yml', 'https://sheets.googleapis.com', fakes.sheets.base],
  ];
  for (const [file, real, fake] of bases) {
    const text = await readFile(path.join(sources, file), 'utf8');
    if (!text.includes(`url: ${real}/`)) throw new Error(`${file} does not call ${real}`);
    await writeFile(path.join(sources, file), text.replace(`url: ${real}/`, `url: ${fake}/`));
  }
}

/** The `rest_sources` setting that lets an environment reach the fakes on loopback. */
export function fakeHostsSetting(fakes: AiUsageFakes): string {
  const hosts = [fakes.anthropic, fakes.cursor, fakes.sheets].map((f) => JSON.stringify(new URL(f.base).host));
  return `rest_sources: { private_hosts: [${hosts.join(', ')}] }`;
}

/** Lets the workspace's local environment reach the fakes on loopback (rest_sources.private_hosts). */
export async function allowFakeHosts(root: string, fakes: AiUsageFakes): Promise<void> {
  const config = path.join(root, 'convergence.yaml');
  const yaml = await readFile(config, 'utf8');
  const local = /^( *)backend: local$/m;
  if (!local.test(yaml)) throw new Error('convergence.yaml has no local environment');
  await writeFile(config, yaml.replace(local, `$&\n$1${fakeHostsSetting(fakes)}`));
}

const DAY = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The days [from, to) as YYYY-MM-DD. */
export function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t < Date.parse(`${to}T00:00:00Z`); t += DAY_MS) out.push(DAY(t));
  return out;
}

/** Cursor records of days [from, to) whose member was active (the rows fct_ai_usage_daily keeps). */
export function activeCursorRecords(from: string, to: string): number {
  return days(from, to).reduce((n, day) => n + CURSOR_MEMBERS.filter((email) => memberDay(day, email).isActive).length, 0);
}

/** Models of days [from, to): every Anthropic model, and the Cursor models some active member used most. */
export function modelsUsed(from: string, to: string): number {
  const cursorModels = days(from, to).flatMap((day) => CURSOR_MEMBERS.map((email) => memberDay(day, email)['mostUsedModel']));
  return ANTHROPIC_MODELS.length + new Set(cursorModels.filter((m) => m !== null)).size;
}
