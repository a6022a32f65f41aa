/**
 * Token-based auth through the REST client, against fakes that check the token the way the real
 * service does: an OAuth 2.0 token endpoint with an API accepting only the tokens it issued, and
 * the Google Sheets values API accepting a service account's self-signed scoped JWT.
 */
import '../../fakes/env-guard.ts';

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { NO_SPECIAL_ACCESS, resolveRestAuth, type AuthDeps } from '../../../src/engine/sources/rest/auth/index.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { ConvergenceError, ExitCode } from '../../../src/lib/errors.ts';
import { startGoogleSheetsApi, SHEETS_READONLY_SCOPE, type GoogleSheetsApi } from '../../fakes/google-sheets-api.ts';
import { startFakeApi, type FakeApi } from '../../fakes/http-api.ts';
import { OAuth2TokenServer } from '../../fakes/oauth2-token-server.ts';
import { fetchPages } from './loopback.ts';
import { collect } from './pages-and-clock.ts';

const CLIENT_SECRET = 'client-secret-value-42';
let now = 1_700_000_000_000;

function deps(url: string, hosts: string[], overrides: Partial<AuthDeps> = {}): AuthDeps {
  return {
    secret: async () => CLIENT_SECRET,
    url,
    access: { ...NO_SPECIAL_ACCESS, privateHosts: hosts },
    now: () => now,
    ...overrides,
  };
}

describe('oauth2_client_credentials through the client', () => {
  let tokens: OAuth2TokenServer;
  let api: FakeApi;
  /** Called when the API serves a page, before it answers (to move the clock or revoke tokens mid-run). */
  let onPage: (page: number) => void = () => {};
  const PAGES = 3;

  before(async () => {
    tokens = await OAuth2TokenServer.start({
      clientId: 'etl',
      clientSecret: CLIENT_SECRET,
      scopes: ['read'],
      expiresIn: 600,
      now: () => now,
    });
    api = await startFakeApi((request) => {
      if (!tokens.accepts(request.headers.authorization)) {
        return { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, body: { error: 'invalid_token' } };
      }
      const page = Number(request.url.searchParams.get('page') ?? '1');
      onPage(page);
      return { body: { items: [{ id: page }], next: page < PAGES ? page + 1 : null } };
    });
  });
  after(async () => {
    await api.close();
    await tokens.stop();
  });
  beforeEach(() => {
    tokens.requests.length = 0;
    api.requests.length = 0;
    onPage = () => {};
  });

  async function config(overrides: Partial<AuthDeps> = {}): Promise<RestSourceConfig> {
    const url = `${api.base}/v1/items`;
    const auth = await resolveRestAuth(
      { type: 'oauth2_client_credentials', token_url: tokens.tokenUrl, client_id: 'etl', client_secret: 'etl_secret', scope: 'read' },
      deps(url, ['127.0.0.1'], overrides),
    );
    return {
      url,
      auth,
      secrets: [CLIENT_SECRET],
      records_path: 'items',
      pagination: { type: 'cursor', cursor_path: 'next', param: 'page' },
    };
  }

  it('loads every page with one token', async () => {
    const pages = await collect(fetchPages(await config()));
    assert.deepEqual(
      pages.flatMap((p) => p.records),
      [{ id: 1 }, { id: 2 }, { id: 3 }],
    );
    assert.equal(tokens.requests.length, 1);
    assert.equal(api.requests.length, 3);
  });

  it('fetches a new token before the current one expires, without a 401', async () => {
    onPage = (page) => {
      if (page === 1) now += 600_000 - 30_000;
    };
    const pages = await collect(fetchPages(await config()));
    assert.equal(pages.length, 3);
    assert.equal(tokens.requests.length, 2);
    assert.equal(api.requests.length, 3, 'no request was refused');
  });

  it('a token the API stops accepting mid-run is replaced once, and the run goes on', async () => {
    onPage = (page) => {
      if (page === 1) tokens.revokeAll();
    };
    const pages = await collect(fetchPages(await config()));
    assert.equal(pages.length, 3);
    assert.equal(tokens.requests.length, 2);
    assert.equal(api.requests.length, 4, 'page 2 was asked twice: refused, then with the new token');
  });

  it('the token endpoint refusing mid-run fails the source with its auth error, no secret or token in it', async () => {
    const issued: string[] = [];
    onPage = (page) => {
      if (page === 1) {
        tokens.revokeAll();
        tokens.script({
          status: 401,
          body: { error: 'invalid_client', error_description: `client disabled; secret was ${CLIENT_SECRET}` },
        });
      }
    };
    const source = await config({ onSecret: (value) => issued.push(value) });
    await assert.rejects(collect(fetchPages(source)), (error: unknown) => {
      assert.ok(error instanceof ConvergenceError, String(error));
      assert.equal(error.exitCode, ExitCode.auth);
      assert.match(error.message, /refused the client credentials \(HTTP 401, invalid_client: client disabled; secret was \[REDACTED\]\)/);
      const text = JSON.stringify({ message: error.message, stack: error.stack, data: error.data });
      for (const value of issued) assert.ok(!text.includes(value), 'a credential shows in the error');
      return true;
    });
    assert.ok(
      issued.some((value) => value.startsWith('at-')),
      'the token issued before was handed to onSecret',
    );
  });
});

describe('google auth through the client: the Sheets values API', () => {
  let sheets: GoogleSheetsApi;
  const EMAIL = 'directory-reader@tenant-project.iam.gserviceaccount.com';

  before(async () => {
    sheets = await startGoogleSheetsApi();
    sheets.putSheet('sheet-1', 'Directory', [
      ['email', 'team', 'cost_center'],
      ['ada@example.com', 'platform', 'cc-10'],
      ['grace@example.com', 'data'],
    ]);
    sheets.share('sheet-1', EMAIL);
  });
  after(() => sheets.close());

  async function sheetConfig(scopes: string[], keyJson: string): Promise<RestSourceConfig> {
    const url = `${sheets.base}/v4/spreadsheets/sheet-1/values/Directory!A1:C`;
    const auth = await resolveRestAuth(
      { type: 'google', key_secret: 'sheets_sa_key', scopes },
      deps(url, [new URL(sheets.base).host], { secret: async () => keyJson }),
    );
    return { url, auth, secrets: [keyJson], records_path: 'values', records_format: 'rows_with_header', pagination: { type: 'none' } };
  }

  it('reads the rows with the service account key of the tenant', async () => {
    const pages = await collect(fetchPages(await sheetConfig([SHEETS_READONLY_SCOPE], sheets.accounts.issue(EMAIL).json)));
    assert.deepEqual(
      pages.flatMap((p) => p.records),
      [
        { email: 'ada@example.com', team: 'platform', cost_center: 'cc-10' },
        { email: 'grace@example.com', team: 'data', cost_center: null },
      ],
    );
  });

  it('a key whose account the sheet is not shared with, or a token without a Sheets scope: 403 from the API', async () => {
    const stranger = await sheetConfig([SHEETS_READONLY_SCOPE], sheets.accounts.issue('stranger@other.iam.gserviceaccount.com').json);
    await assert.rejects(collect(fetchPages(stranger)), /HTTP 403.*The caller does not have permission/);
    const wrongScope = await sheetConfig(['https://www.googleapis.com/auth/calendar.readonly'], sheets.accounts.issue(EMAIL).json);
    await assert.rejects(collect(fetchPages(wrongScope)), /HTTP 403.*insufficient authentication scopes/);
  });

  it('a deleted key: the API answers 401 to the token and to the one made again', async () => {
    const key = sheets.accounts.issue(EMAIL);
    sheets.accounts.revoke(key.privateKeyId);
    const before = sheets.requests.length;
    await assert.rejects(collect(fetchPages(await sheetConfig([SHEETS_READONLY_SCOPE], key.json))), /HTTP 401/);
    assert.equal(sheets.requests.length - before, 2, 'one retry with a new token, then the failure');
  });
});
