/**
 * Attacks through the token-based auth of a tenant's REST source (configs/<tenant>/ is untrusted):
 * borrowing the environment's Google identity, sending a Google token to the tenant's own host,
 * pointing the token request at the metadata server or a local process, and fishing the client
 * secret out of an error.
 */
import '../fakes/env-guard.ts';

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { NO_SPECIAL_ACCESS, resolveRestAuth, type AuthDeps } from '../../src/engine/sources/rest/auth/index.ts';
import type { RestAuth } from '../../src/engine/sources/rest/types.ts';
import { ConvergenceError, ExitCode } from '../../src/lib/errors.ts';
import { redactKnownSecrets, rememberSecret } from '../../src/lib/redaction.ts';
import { GoogleServiceAccounts } from '../fakes/google-service-accounts.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';

const SHEETS_SCOPE = 'https://www.googleapis.com/auth/spreadsheets.readonly';
const CLIENT_ID = 'tenant-client';
const CLIENT_SECRET = 'cs_live:9f8e+7d6/c5b4 a3';

const keyJson = new GoogleServiceAccounts().issue('reader@tenant-project.iam.gserviceaccount.com').json;

function deps(overrides: Partial<AuthDeps> = {}): AuthDeps {
  return {
    secret: async (name) => (name === 'client_secret' ? CLIENT_SECRET : keyJson),
    url: 'https://sheets.googleapis.com/v4/spreadsheets/abc/values/A1:C',
    access: NO_SPECIAL_ACCESS,
    ...overrides,
  };
}

async function tokenOf(auth: RestAuth): Promise<string> {
  assert.equal(auth.type, 'access_token');
  return auth.type === 'access_token' ? auth.provider.token() : '';
}

function convergenceError(exitCode: number, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ConvergenceError, String(error));
    assert.equal(error.exitCode, exitCode);
    assert.match(error.message, pattern);
    return true;
  };
}

const oauth2 = (token_url: string) =>
  ({ type: 'oauth2_client_credentials', token_url, client_id: CLIENT_ID, client_secret: 'client_secret' }) as const;

describe('google auth cannot borrow or leak the environment identity', () => {
  it('a source without key_secret is refused where the operator did not allow ADC', async () => {
    await assert.rejects(
      resolveRestAuth({ type: 'google', scopes: [SHEETS_SCOPE] }, deps()),
      convergenceError(ExitCode.usage, /without key_secret would use the environment’s own Google credentials/),
    );
  });

  it('a Google token is never made for a source on the tenant’s own host (even with its own key)', async () => {
    for (const url of [
      'https://evil.example/collect',
      'https://sheets.googleapis.com.evil.example/v4',
      'http://sheets.googleapis.com/v4/x',
    ]) {
      await assert.rejects(
        resolveRestAuth({ type: 'google', key_secret: 'sa_key', scopes: [SHEETS_SCOPE] }, deps({ url })),
        convergenceError(ExitCode.usage, /only goes to https Google API hosts/),
      );
      await assert.rejects(
        resolveRestAuth({ type: 'google', scopes: [SHEETS_SCOPE] }, deps({ url, access: { privateHosts: [], googleAdc: true } })),
        convergenceError(ExitCode.usage, /only goes to https Google API hosts/),
      );
    }
  });
});

describe('the token request of oauth2_client_credentials cannot reach internal addresses', () => {
  it('token_url at the metadata server or a local name is refused by the transport guard, not retried', async () => {
    for (const tokenUrl of [
      'https://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token',
      'https://localhost:8443/token',
    ]) {
      const auth = await resolveRestAuth(oauth2(tokenUrl), deps());
      await assert.rejects(tokenOf(auth), convergenceError(ExitCode.usage, /loopback, private or link-local address/));
    }
  });

  it('an http token_url is refused unless the operator lists its host', async () => {
    await assert.rejects(
      resolveRestAuth(oauth2('http://169.254.169.254/token'), deps()),
      convergenceError(ExitCode.usage, /must be an https URL/),
    );
    await assert.rejects(
      resolveRestAuth(oauth2('http://auth.example.com/token'), deps()),
      convergenceError(ExitCode.usage, /must be an https URL/),
    );
  });
});

describe('the client secret never shows', () => {
  let echo: FakeApi;
  before(async () => {
    // A token endpoint that quotes the request back in its error, in every spelling it could.
    echo = await startFakeApi((request) => {
      const basic = String(request.headers.authorization ?? '').replace(/^Basic /, '');
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      return {
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: `bad ${basic} ${decoded} ${CLIENT_SECRET} ${encodeURIComponent(CLIENT_SECRET)} ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        },
      };
    });
  });
  after(() => echo.close());

  it('in no spelling in the error of a refused token request, nor in what the process later reports', async () => {
    const remember = (value: string) => rememberSecret(value);
    const auth = await resolveRestAuth(oauth2(`${echo.base}/token`), {
      ...deps({ access: { privateHosts: [new URL(echo.base).host], googleAdc: false } }),
      secret: async (name) => {
        const value = await deps().secret(name);
        remember(value);
        return value;
      },
      onSecret: remember,
    });
    const error = await tokenOf(auth).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e as ConvergenceError,
    );
    assert.equal(error.exitCode, ExitCode.auth);
    assert.match(error.message, /invalid_client: bad \[REDACTED\]/);
    const formEncoded = new URLSearchParams({ v: CLIENT_SECRET }).toString().slice(2);
    const spellings = [
      CLIENT_SECRET,
      encodeURIComponent(CLIENT_SECRET),
      formEncoded,
      Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64'),
      Buffer.from(`${CLIENT_ID}:${formEncoded}`).toString('base64'),
      `${CLIENT_ID}:${formEncoded}`,
    ];
    const reported = JSON.stringify({ message: error.message, suggestion: error.suggestion, data: error.data, stack: error.stack });
    for (const spelling of spellings) {
      assert.ok(!reported.includes(spelling), `error shows ${spelling}`);
      assert.ok(!redactKnownSecrets(`log: ${spelling}`).includes(spelling), `the process-wide redaction misses ${spelling}`);
    }
  });

  it('nor when it is sent in the form body (client_auth: post) and echoed back form-encoded', async () => {
    const formEcho = await startFakeApi((request) => ({
      status: 400,
      body: { error: 'invalid_request', error_description: `got ${request.body ?? ''}` },
    }));
    try {
      const auth = await resolveRestAuth(
        { ...oauth2(`${formEcho.base}/token`), client_auth: 'post' },
        deps({ access: { privateHosts: [new URL(formEcho.base).host], googleAdc: false } }),
      );
      const error = await tokenOf(auth).then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e as ConvergenceError,
      );
      assert.equal(error.exitCode, ExitCode.auth);
      assert.match(error.message, /client_secret=\[REDACTED\]/);
      assert.ok(!error.message.includes(new URLSearchParams({ v: CLIENT_SECRET }).toString().slice(2)));
    } finally {
      await formEcho.close();
    }
  });
});
