/**
 * Google Sheets API v4 `spreadsheets.values.get` on 127.0.0.1, with the shapes of the public
 * reference (developers.google.com/sheets/api reference and "Basic reading"):
 *
 * - `GET /v4/spreadsheets/{spreadsheetId}/values/{range}`, the range in A1 notation
 *   (`Directory!A1:D`, `'Team list'!A:C`, `Directory`), `Authorization: Bearer <token>` of a
 *   Google identity holding one of the scopes `spreadsheets.readonly`, `spreadsheets`,
 *   `drive.readonly`, `drive` or `drive.file`.
 * - Answer: a ValueRange `{ range, majorDimension: "ROWS", values: [[...], ...] }`, values as
 *   formatted strings; empty trailing cells of a row and empty trailing rows are omitted, and
 *   `values` is absent when the range holds nothing.
 * - Errors (Google's JSON error shape `{ error: { code, message, status } }`): 401 UNAUTHENTICATED
 *   without a token or with one that is not valid, 403 PERMISSION_DENIED for insufficient scopes or a
 *   spreadsheet not shared with the identity, 404 NOT_FOUND for an unknown spreadsheet, 400
 *   INVALID_ARGUMENT for a range that does not parse or names no sheet.
 *
 * Identities: a service-account key issued by `accounts` (test/fakes/google-service-accounts.ts)
 * signs its own JWT with the scopes in it (google-auth-library's `useJWTAccessWithScope`), checked
 * there like Google checks it; tokens minted elsewhere (an OAuth token endpoint fake) are accepted
 * once the test registers them with `trustToken`.
 */
import { GoogleServiceAccounts } from './google-service-accounts.ts';
import { startJsonApi, type JsonApi, type JsonReply, type JsonRequest } from './json-api.ts';

export const SHEETS_READONLY_SCOPE = 'https://www.googleapis.com/auth/spreadsheets.readonly';
const READING_SCOPES = new Set([
  SHEETS_READONLY_SCOPE,
  'https://www.googleapis.com/auth/spreadsheets',
  'https://www.googleapis.com/auth/drive.readonly',
  'https://www.googleapis.com/auth/drive',
  'https://www.googleapis.com/auth/drive.file',
]);

const googleError = (code: number, status: string, message: string): JsonReply => ({
  status: code,
  body: { error: { code, message, status } },
});
const MISSING_CREDENTIAL =
  'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.';
const INVALID_CREDENTIAL =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.';

interface Sheet {
  /** Tabs by name, each its rows of cells. */
  tabs: Map<string, string[][]>;
  sharedWith: Set<string>;
}

export interface GoogleSheetsApi extends JsonApi {
  /** The service accounts whose self-signed JWTs this fake accepts (`accounts.issue(email).json` is a key file). */
  accounts: GoogleServiceAccounts;
  /** An access token minted elsewhere, standing for `email` with `scopes`. */
  trustToken(token: string, email: string, scopes: string[]): void;
  /** Creates or replaces a spreadsheet tab. */
  putSheet(spreadsheetId: string, tab: string, rows: string[][]): void;
  share(spreadsheetId: string, email: string): void;
  /** The `spreadsheetId/range` of every values.get request, in order. */
  readsAsked(): string[];
}

/** A column's letters to its 0-based index (A → 0, AA → 26). */
function columnIndex(letters: string): number {
  let n = 0;
  for (const c of letters) n = n * 26 + (c.charCodeAt(0) - 64);
  return n - 1;
}

function columnLetters(index: number): string {
  let s = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  return s;
}

interface A1Range {
  tab: string;
  firstCol: number;
  lastCol: number | undefined;
  firstRow: number;
  lastRow: number | undefined;
}

function parseA1(range: string): A1Range | undefined {
  const bang = range.lastIndexOf('!');
  const rawTab = bang === -1 ? range : range.slice(0, bang);
  const tab = rawTab.startsWith("'") && rawTab.endsWith("'") ? rawTab.slice(1, -1).replaceAll("''", "'") : rawTab;
  if (!tab) return undefined;
  if (bang === -1) return { tab, firstCol: 0, lastCol: undefined, firstRow: 0, lastRow: undefined };
  const m = /^([A-Z]+)(\d*)(?::([A-Z]+)(\d*))?$/.exec(range.slice(bang + 1));
  if (!m) return undefined;
  const firstCol = columnIndex(m[1]!);
  const firstRow = m[2] ? Number(m[2]) - 1 : 0;
  if (m[3] === undefined) return { tab, firstCol, lastCol: firstCol, firstRow, lastRow: m[2] ? firstRow : undefined };
  return { tab, firstCol, lastCol: columnIndex(m[3]), firstRow, lastRow: m[4] ? Number(m[4]) - 1 : undefined };
}

/** The cells of a range, empty trailing cells and rows left out as the API leaves them out. */
function cellsOf(rows: string[][], r: A1Range): string[][] {
  const picked = rows
    .slice(r.firstRow, r.lastRow === undefined ? undefined : r.lastRow + 1)
    .map((row) => row.slice(r.firstCol, r.lastCol === undefined ? undefined : r.lastCol + 1));
  const trimmed = picked.map((row) => {
    let end = row.length;
    while (end > 0 && (row[end - 1] ?? '') === '') end--;
    return row.slice(0, end);
  });
  while (trimmed.length > 0 && trimmed[trimmed.length - 1]!.length === 0) trimmed.pop();
  return trimmed;
}

export async function startGoogleSheetsApi(accounts = new GoogleServiceAccounts()): Promise<GoogleSheetsApi> {
  const sheets = new Map<string, Sheet>();
  const trusted = new Map<string, { email: string; scopes: string[] }>();

  /** The identity behind an Authorization header and whether it may read spreadsheets; undefined when it is not valid. */
  function identify(authorization: string): { email: string; canRead: boolean } | undefined {
    const minted = trusted.get(authorization.slice('Bearer '.length));
    if (minted) return { email: minted.email, canRead: minted.scopes.some((s) => READING_SCOPES.has(s)) };
    const checks = [...READING_SCOPES].map((scope) => accounts.verifyBearer(authorization, scope));
    const granted = checks.find((c) => c.ok);
    if (granted?.ok) return { email: granted.email, canRead: true };
    // A valid token for other APIs fails every check on the scope alone.
    const scopeOnly = checks.every((c) => !c.ok && c.reason.startsWith('scope '));
    return scopeOnly ? { email: '', canRead: false } : undefined;
  }

  function handle(request: JsonRequest): JsonReply {
    const m = /^\/v4\/spreadsheets\/([^/]+)\/values\/([^/]+)$/.exec(request.url.pathname);
    if (!m) return googleError(404, 'NOT_FOUND', `The requested URL ${request.url.pathname} was not found on this server.`);
    if (request.method !== 'GET') return googleError(405, 'METHOD_NOT_ALLOWED', 'Method not allowed');
    const authorization = request.headers.authorization ?? '';
    if (!authorization.startsWith('Bearer ')) return googleError(401, 'UNAUTHENTICATED', MISSING_CREDENTIAL);
    const identity = identify(authorization);
    if (!identity) return googleError(401, 'UNAUTHENTICATED', INVALID_CREDENTIAL);
    if (!identity.canRead) return googleError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.');
    const [spreadsheetId, range] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
    const sheet = sheets.get(spreadsheetId);
    if (!sheet) return googleError(404, 'NOT_FOUND', 'Requested entity was not found.');
    if (!sheet.sharedWith.has(identity.email)) return googleError(403, 'PERMISSION_DENIED', 'The caller does not have permission');
    const a1 = parseA1(range);
    const rows = a1 ? sheet.tabs.get(a1.tab) : undefined;
    if (!a1 || !rows) return googleError(400, 'INVALID_ARGUMENT', `Unable to parse range: ${range}`);
    const values = cellsOf(rows, a1);
    const width = Math.max(0, ...rows.map((r) => r.length));
    const lastCol = a1.lastCol ?? width - 1;
    const lastRow = a1.lastRow ?? Math.max(rows.length, 1) - 1;
    const quoted = /^[A-Za-z0-9_]+$/.test(a1.tab) ? a1.tab : `'${a1.tab.replaceAll("'", "''")}'`;
    const echoed = `${quoted}!${columnLetters(a1.firstCol)}${a1.firstRow + 1}:${columnLetters(Math.max(lastCol, a1.firstCol))}${lastRow + 1}`;
    return { status: 200, body: { range: echoed, majorDimension: 'ROWS', ...(values.length ? { values } : {}) } };
  }

  const api = await startJsonApi(handle);
  return {
    ...api,
    accounts,
    trustToken: (token, email, scopes) => void trusted.set(token, { email, scopes }),
    putSheet(spreadsheetId, tab, rows) {
      const sheet = sheets.get(spreadsheetId) ?? { tabs: new Map(), sharedWith: new Set() };
      sheet.tabs.set(tab, rows);
      sheets.set(spreadsheetId, sheet);
    },
    share(spreadsheetId, email) {
      const sheet = sheets.get(spreadsheetId);
      if (!sheet) throw new Error(`no spreadsheet ${spreadsheetId}`);
      sheet.sharedWith.add(email);
    },
    readsAsked: () =>
      api.requests.flatMap((r) => {
        const m = /^\/v4\/spreadsheets\/([^/]+)\/values\/([^/]+)$/.exec(r.url.pathname);
        return m ? [`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`] : [];
      }),
  };
}
