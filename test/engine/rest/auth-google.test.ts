import '../../fakes/env-guard.ts';

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { NO_SPECIAL_ACCESS, resolveRestAuth, type AuthDeps } from '../../../src/engine/sources/rest/auth/index.ts';
import { checkGoogleDestination, googleTokens } from '../../../src/engine/sources/rest/auth/google.ts';
import type { RestAuth } from '../../../src/engine/sources/rest/types.ts';
import { ConvergenceError, ExitCode } from '../../../src/lib/errors.ts';
import { GoogleServiceAccounts } from '../../fakes/google-service-accounts.ts';

const SHEETS_SCOPE = 'https://www.googleapis.com/auth/spreadsheets.readonly';
const SHEETS_URL = 'https://sheets.googleapis.com/v4/spreadsheets/abc/values/Directory';
const EMAIL = 'sheets-reader@demo-project.iam.gserviceaccount.com';

const accounts = new GoogleServiceAccounts();
const key = accounts.issue(EMAIL);

/** Every fetch the process makes while a test runs: a self-signed JWT needs none. */
const fetched: string[] = [];
const realFetch = globalThis.fetch;
let home: string;

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'google-auth-'));
  // ADC must not find a developer's gcloud credentials on this machine.
  process.env.HOME = home;
  process.env.CLOUDSDK_CONFIG = join(home, 'gcloud');
  globalThis.fetch = (input, init) => {
    fetched.push(String(input instanceof Request ? input.url : input));
    return realFetch(input, init);
  };
});
after(async () => {
  globalThis.fetch = realFetch;
  await rm(home, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  fetched.length = 0;
});

function deps(overrides: Partial<AuthDeps> = {}): AuthDeps {
  return { secret: async () => key.json, url: SHEETS_URL, access: NO_SPECIAL_ACCESS, ...overrides };
}

async function providerOf(auth: RestAuth) {
  assert.equal(auth.type, 'access_token');
  return auth.type === 'access_token' ? auth.provider : assert.fail();
}

function refused(fn: () => unknown, exitCode: number, pattern: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConvergenceError, String(error));
    assert.equal(error.exitCode, exitCode);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('google auth with a service-account key secret', () => {
  it('signs a JWT with the scopes that a Google API accepts as the bearer token, without any network request', async () => {
    const remembered: string[] = [];
    const provider = await providerOf(
      await resolveRestAuth(
        { type: 'google', key_secret: 'sheets_sa_key', scopes: [SHEETS_SCOPE] },
        deps({ onSecret: (v) => remembered.push(v) }),
      ),
    );
    const token = await provider.token();
    const check = accounts.verifyBearer(`Bearer ${token}`, SHEETS_SCOPE);
    assert.deepEqual(check, { ok: true, email: EMAIL, scopes: [SHEETS_SCOPE] });
    assert.deepEqual(fetched, []);
    assert.ok(remembered.includes(token), 'the token is handed to the redaction hook');
    assert.ok(remembered.includes(JSON.parse(key.json).private_key as string), 'and the private key');
  });

  it('keeps the token between calls; after invalidate() the next one is signed again and still valid', async () => {
    const provider = googleTokens(
      { scopes: [SHEETS_SCOPE], url: SHEETS_URL, key: { json: key.json, secretName: 'k' } },
      {
        privateHosts: [],
        googleAdc: false,
        onSecret: () => {},
      },
    );
    const first = await provider.token();
    assert.equal(await provider.token(), first);
    provider.invalidate();
    assert.ok(accounts.verifyBearer(`Bearer ${await provider.token()}`, SHEETS_SCOPE).ok);
  });

  it('a token for another scope does not pass the API check', async () => {
    const provider = googleTokens(
      { scopes: ['https://www.googleapis.com/auth/drive.metadata.readonly'], url: SHEETS_URL, key: { json: key.json, secretName: 'k' } },
      { privateHosts: [], googleAdc: false, onSecret: () => {} },
    );
    assert.deepEqual(accounts.verifyBearer(`Bearer ${await provider.token()}`, SHEETS_SCOPE), {
      ok: false,
      reason: `scope ${SHEETS_SCOPE} not granted`,
    });
  });

  it('refuses a secret that is not a service-account key: exit 7, never quoting it', () => {
    const privateKey = JSON.parse(key.json).private_key as string;
    const cases: Array<[string, RegExp]> = [
      ['not json but a pasted token ya29.SECRETVALUE', /it is not JSON/],
      ['["a list"]', /not a JSON object/],
      [
        JSON.stringify({ type: 'authorized_user', client_id: 'x', client_secret: 'SECRETVALUE', refresh_token: 'r' }),
        /type is authorized_user/,
      ],
      [JSON.stringify({ type: 'service_account', private_key: privateKey }), /no client_email/],
      [JSON.stringify({ type: 'service_account', client_email: EMAIL }), /no private_key/],
      [
        JSON.stringify({
          type: 'service_account',
          client_email: EMAIL,
          private_key: '-----BEGIN PRIVATE KEY-----\nSECRETVALUE\n-----END PRIVATE KEY-----',
        }),
        /not a valid PEM/,
      ],
    ];
    for (const [json, pattern] of cases) {
      assert.throws(
        () =>
          googleTokens(
            { scopes: [SHEETS_SCOPE], url: SHEETS_URL, key: { json, secretName: 'sheets_sa_key' } },
            { privateHosts: [], googleAdc: false, onSecret: () => {} },
          ),
        (error: unknown) => {
          assert.ok(error instanceof ConvergenceError);
          assert.equal(error.exitCode, ExitCode.auth);
          assert.match(error.message, /secret "sheets_sa_key" is not a Google service-account key/);
          assert.match(error.message, pattern);
          assert.ok(!`${error.message} ${error.suggestion}`.includes('SECRETVALUE'));
          return true;
        },
      );
    }
  });
});

describe('google auth with application default credentials', () => {
  it('is refused unless the operator allows it: exit 2 naming rest_sources.google_adc and key_secret', async () => {
    await assert.rejects(resolveRestAuth({ type: 'google', scopes: [SHEETS_SCOPE] }, deps()), (error: unknown) => {
      assert.ok(error instanceof ConvergenceError);
      assert.equal(error.exitCode, ExitCode.usage);
      assert.match(error.message, /without key_secret would use the environment’s own Google credentials/);
      assert.match(error.suggestion ?? '', /auth\.key_secret/);
      assert.match(error.suggestion ?? '', /rest_sources\.google_adc: true/);
      return true;
    });
  });

  it('with the operator opt-in, a service-account key of the environment signs its own scoped token', async () => {
    const adcAccounts = new GoogleServiceAccounts();
    const adcKey = adcAccounts.issue('pipeline-runner@ops-project.iam.gserviceaccount.com', 'ops-project');
    const path = join(home, 'adc.json');
    await writeFile(path, adcKey.json, { mode: 0o600 });
    process.env.GOOGLE_APPLICATION_CREDENTIALS = path;
    const provider = await providerOf(
      await resolveRestAuth({ type: 'google', scopes: [SHEETS_SCOPE] }, deps({ access: { privateHosts: [], googleAdc: true } })),
    );
    const check = adcAccounts.verifyBearer(`Bearer ${await provider.token()}`, SHEETS_SCOPE);
    assert.equal(check.ok && check.email, 'pipeline-runner@ops-project.iam.gserviceaccount.com');
    assert.deepEqual(fetched, []);
  });

  it('with the opt-in but no credentials in the environment: exit 7 when the token is asked', async () => {
    const provider = await providerOf(
      await resolveRestAuth({ type: 'google', scopes: [SHEETS_SCOPE] }, deps({ access: { privateHosts: [], googleAdc: true } })),
    );
    await assert.rejects(provider.token(), (error: unknown) => {
      assert.ok(error instanceof ConvergenceError);
      assert.equal(error.exitCode, ExitCode.auth);
      assert.match(error.message, /application default credentials could not make a Google access token/);
      return true;
    });
  });
});

describe('where a Google token may go', () => {
  it('to https Google API hosts, or a host the operator lists as private', () => {
    for (const url of [SHEETS_URL, 'https://bigquery.googleapis.com/bigquery/v2/projects', 'https://SHEETS.GOOGLEAPIS.COM/v4/x']) {
      assert.doesNotThrow(() => checkGoogleDestination(url, []), url);
    }
    assert.doesNotThrow(() => checkGoogleDestination('http://127.0.0.1:8443/v4/spreadsheets/a/values/b', ['127.0.0.1:8443']));
  });

  it('nowhere else: exit 2', () => {
    for (const url of [
      'https://evil.example/v4/spreadsheets/a/values/b',
      'http://sheets.googleapis.com/v4/spreadsheets/a/values/b',
      'https://sheets.googleapis.com.evil.example/v4/x',
      'https://evilgoogleapis.com/v4/x',
      'https://googleapis.com@evil.example/v4/x',
      'http://127.0.0.1:8443/v4/x',
    ]) {
      refused(() => checkGoogleDestination(url, ['127.0.0.1:9999']), ExitCode.usage, /only goes to https Google API hosts/);
    }
  });
});
