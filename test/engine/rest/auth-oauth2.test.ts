import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';

import { NO_SPECIAL_ACCESS, resolveRestAuth } from '../../../src/engine/sources/rest/auth/index.ts';
import { ClientCredentialsTokens, type ClientCredentials } from '../../../src/engine/sources/rest/auth/oauth2-client-credentials.ts';
import { ConvergenceError, ExitCode } from '../../../src/lib/errors.ts';
import { startFakeApi } from '../../fakes/http-api.ts';
import { OAuth2TokenServer } from '../../fakes/oauth2-token-server.ts';

const CLIENT_ID = 'convergence-etl';
/** Characters that form-encoding changes, so the RFC 6749 2.3.1 encoding is exercised. */
const CLIENT_SECRET = 's3cr3t:with+plus/slash ünï';

let now = 1_700_000_000_000;
const clock = () => now;
const noWait = async () => {};

let server: OAuth2TokenServer;

before(async () => {
  server = await OAuth2TokenServer.start({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    scopes: ['usage:read', 'usage:write'],
    expiresIn: 3600,
    now: clock,
  });
});
after(() => server.stop());
beforeEach(() => {
  server.requests.length = 0;
  server.delay(0);
});

function credentials(overrides: Partial<ClientCredentials> = {}): ClientCredentials {
  return {
    tokenUrl: server.tokenUrl,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    clientSecretName: 'usage_client_secret',
    ...overrides,
  };
}

function tokens(overrides: Partial<ClientCredentials> = {}, seen: string[] = [], timeoutMs?: number) {
  return new ClientCredentialsTokens(credentials(overrides), {
    privateHosts: [server.host],
    onSecret: (value) => seen.push(value),
    now: clock,
    sleep: noWait,
    ...(timeoutMs ? { timeoutMs } : {}),
  });
}

async function rejection(promise: Promise<unknown>): Promise<ConvergenceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConvergenceError, `expected a ConvergenceError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('OAuth2 client credentials: the token request', () => {
  it('posts grant_type, scope and audience as a form, the client authenticated by HTTP Basic of the form-encoded id and secret', async () => {
    const audienceServer = await OAuth2TokenServer.start({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      audience: 'https://api.example.com/',
    });
    try {
      const provider = new ClientCredentialsTokens(
        { ...credentials(), tokenUrl: audienceServer.tokenUrl, audience: 'https://api.example.com/' },
        { privateHosts: [audienceServer.host], onSecret: () => {}, sleep: noWait },
      );
      assert.match(await provider.token(), /^at-/);
      const [request] = audienceServer.requests;
      assert.equal(request?.clientAuth, 'basic');
      assert.equal(request?.contentType, 'application/x-www-form-urlencoded');
      assert.deepEqual(request?.form, { grant_type: 'client_credentials', audience: 'https://api.example.com/' });
      assert.ok(!JSON.stringify(request?.form).includes('s3cr3t'), 'the secret is not in the body');
    } finally {
      await audienceServer.stop();
    }
    await tokens({ scope: 'usage:read' }).token();
    assert.equal(server.requests[0]?.form.scope, 'usage:read');
  });

  it('client_auth post: id and secret in the form body, for a client registered for that method only', async () => {
    const postOnly = await OAuth2TokenServer.start({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, clientAuth: ['post'] });
    try {
      const make = (clientAuth?: 'post') =>
        new ClientCredentialsTokens(
          { ...credentials(), tokenUrl: postOnly.tokenUrl, ...(clientAuth ? { clientAuth } : {}) },
          { privateHosts: [postOnly.host], onSecret: () => {}, sleep: noWait },
        );
      const basicRefused = await rejection(make().token());
      assert.match(basicRefused.message, /invalid_client/);
      assert.match(await make('post').token(), /^at-/);
      const request = postOnly.requests.at(-1);
      assert.equal(request?.clientAuth, 'post');
      assert.equal(request?.authorization, undefined);
      assert.deepEqual(request?.form, { grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
    } finally {
      await postOnly.stop();
    }
  });

  it('keeps the token while more than a minute of it remains, then fetches a new one', async () => {
    const provider = tokens();
    const first = await provider.token();
    now += 3600_000 - 61_000;
    assert.equal(await provider.token(), first);
    assert.equal(server.requests.length, 1);
    now += 2_000;
    const second = await provider.token();
    assert.notEqual(second, first);
    assert.equal(server.requests.length, 2);
    assert.ok(server.accepts(`Bearer ${second}`));
  });

  it('fetches a new token after invalidate() (the API answered 401)', async () => {
    const provider = tokens();
    const first = await provider.token();
    server.revokeAll();
    provider.invalidate();
    const second = await provider.token();
    assert.notEqual(second, first);
    assert.equal(server.requests.length, 2);
  });

  it('shares one request between concurrent callers', async () => {
    server.delay(100);
    const provider = tokens();
    const all = await Promise.all([provider.token(), provider.token(), provider.token()]);
    assert.equal(new Set(all).size, 1);
    assert.equal(server.requests.length, 1);
  });

  it('reads expires_in given as a string; without expires_in keeps the token until invalidate()', async () => {
    server.script({ status: 200, body: { access_token: 'string-lifetime-token', token_type: 'bearer', expires_in: '120' } });
    const provider = tokens();
    assert.equal(await provider.token(), 'string-lifetime-token');
    now += 59_000;
    assert.equal(await provider.token(), 'string-lifetime-token');
    now += 2_000;
    assert.notEqual(await provider.token(), 'string-lifetime-token');

    server.script({ status: 200, body: { access_token: 'no-lifetime-token', token_type: 'Bearer' } });
    const forever = tokens();
    assert.equal(await forever.token(), 'no-lifetime-token');
    now += 30 * 24 * 3600_000;
    assert.equal(await forever.token(), 'no-lifetime-token');
    forever.invalidate();
    assert.notEqual(await forever.token(), 'no-lifetime-token');
  });

  it('hands every token and the Basic credentials to onSecret', async () => {
    const seen: string[] = [];
    const token = await tokens({}, seen).token();
    assert.ok(seen.includes(CLIENT_SECRET));
    assert.ok(seen.includes(token));
    assert.ok(seen.includes(server.requests[0]!.authorization!.slice('Basic '.length)), 'the base64 of the encoded id:secret');
  });

  it('retries a busy endpoint (429, 5xx) and succeeds', async () => {
    server.script({ status: 503, body: 'unavailable' }, { status: 429, body: '' });
    assert.match(await tokens().token(), /^at-/);
    assert.equal(server.requests.length, 3);
  });
});

describe('OAuth2 client credentials: errors', () => {
  it('a wrong secret: exit 7, the token host and the OAuth error named, the secret in no spelling', async () => {
    const error = await rejection(tokens({ clientSecret: 'wrong-secret-value' }).token());
    assert.equal(error.exitCode, ExitCode.auth);
    assert.match(error.message, new RegExp(`${server.host.replace('.', '\\.')}.*HTTP 401.*invalid_client: Client authentication failed`));
    assert.match(error.suggestion ?? '', /usage_client_secret/);
    const text = JSON.stringify({ m: error.message, s: error.suggestion, d: error.data, st: error.stack });
    assert.ok(!text.includes('wrong-secret-value'));
    assert.ok(!text.includes(Buffer.from(`${CLIENT_ID}:wrong-secret-value`).toString('base64')));
  });

  it('a scope the client is not granted: exit 7 naming invalid_scope', async () => {
    const error = await rejection(tokens({ scope: 'admin' }).token());
    assert.equal(error.exitCode, ExitCode.auth);
    assert.match(error.message, /invalid_scope: scope admin is not granted/);
    assert.match(error.suggestion ?? '', /auth\.scope/);
    assert.equal(error.data?.oauthError, 'invalid_scope');
  });

  it('a refusal without an OAuth error body quotes an excerpt of it', async () => {
    server.script({ status: 403, body: '<html>Forbidden by WAF</html>' });
    const error = await rejection(tokens().token());
    assert.equal(error.exitCode, ExitCode.auth);
    assert.match(error.message, /HTTP 403, <html>Forbidden by WAF/);
  });

  it('an endpoint failing on every attempt: exit 3 after 3 attempts', async () => {
    server.script({ status: 500, body: '' }, { status: 502, body: '' }, { status: 503, body: '' });
    const error = await rejection(tokens().token());
    assert.equal(error.exitCode, ExitCode.pipelineFailed);
    assert.match(error.message, /answered HTTP 503 \(after 3 attempts\)/);
    assert.equal(server.requests.length, 3);
  });

  it('an endpoint that does not answer in time: exit 3, timed out', async () => {
    server.delay(1_000);
    const error = await rejection(tokens({}, [], 100).token());
    assert.equal(error.exitCode, ExitCode.pipelineFailed);
    assert.match(error.message, /could not be reached: timed out/);
  });

  it('a 200 without access_token: exit 3; a token type other than Bearer: exit 2', async () => {
    server.script({ status: 200, body: { token_type: 'Bearer' } });
    assert.equal((await rejection(tokens().token())).exitCode, ExitCode.pipelineFailed);
    server.script({ status: 200, body: { access_token: 'mac-token', token_type: 'mac', expires_in: 60 } });
    const error = await rejection(tokens().token());
    assert.equal(error.exitCode, ExitCode.usage);
    assert.match(error.message, /type mac; only Bearer/);
    assert.ok(!error.message.includes('mac-token'));
  });

  it('a redirect is not followed: exit 2, the credentials never reach the other host', async () => {
    const other = await startFakeApi(() => ({ body: { access_token: 'stolen', token_type: 'Bearer' } }));
    try {
      server.script({ status: 302, body: '', headers: { location: `${other.base}/oauth/token` } });
      const error = await rejection(tokens().token());
      assert.equal(error.exitCode, ExitCode.usage);
      assert.match(error.message, /redirect \(HTTP 302\), which is not followed/);
      assert.equal(other.requests.length, 0);
    } finally {
      await other.close();
    }
  });

  it('refuses a token_url that is not https unless the operator lists its host, and one carrying credentials', () => {
    const make = (tokenUrl: string, privateHosts: string[] = []) =>
      new ClientCredentialsTokens(credentials({ tokenUrl }), { privateHosts, onSecret: () => {} });
    assert.throws(
      () => make(server.tokenUrl),
      (e: ConvergenceError) => e.exitCode === ExitCode.usage && /must be an https URL/.test(e.message),
    );
    assert.throws(() => make('ftp://auth.example.com/token', ['auth.example.com']), /must be an https URL/);
    assert.throws(() => make('https://id:pw@auth.example.com/token'), /carries credentials/);
    assert.doesNotThrow(() => make('https://auth.example.com/oauth/token'));
    assert.doesNotThrow(() => make(server.tokenUrl, ['127.0.0.1']));
  });
});

describe('resolveRestAuth: oauth2_client_credentials', () => {
  it('reads the client secret from the tenant secrets and gives an access_token provider', async () => {
    const asked: string[] = [];
    const remembered: string[] = [];
    const auth = await resolveRestAuth(
      {
        type: 'oauth2_client_credentials',
        token_url: server.tokenUrl,
        client_id: CLIENT_ID,
        client_secret: 'usage_client_secret',
        scope: 'usage:read',
      },
      {
        secret: async (name) => {
          asked.push(name);
          return CLIENT_SECRET;
        },
        url: 'https://api.example.com/v1/usage',
        access: { ...NO_SPECIAL_ACCESS, privateHosts: [server.host] },
        onSecret: (value) => remembered.push(value),
        now: clock,
      },
    );
    assert.equal(auth.type, 'access_token');
    assert.deepEqual(asked, ['usage_client_secret']);
    const token = auth.type === 'access_token' ? await auth.provider.token() : '';
    assert.ok(server.accepts(`Bearer ${token}`));
    assert.ok(remembered.includes(token));
  });
});
