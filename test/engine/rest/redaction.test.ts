import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { SourceHttpError } from '../../../src/engine/sources/rest/errors.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { Redactor, basicCredentials, spellingsOf, userinfoSecrets } from '../../../src/lib/redaction.ts';
import { startFakeApi, type Handler } from '../../fakes/http-api.ts';
import { collect } from './pages-and-clock.ts';

/** A secret with characters that every encoding changes. */
const SECRET = 'tok/en+with space&"quote"=Ω';

describe('Redactor', () => {
  it('replaces the plain, URL-encoded, form-encoded, path-encoded and JSON-escaped spellings', () => {
    const r = new Redactor([SECRET]);
    const spellings = [
      SECRET,
      encodeURIComponent(SECRET),
      new URLSearchParams({ a: SECRET }).toString().slice(2),
      new URL(`http://h/${SECRET}`).pathname.slice(1),
      JSON.stringify(SECRET).slice(1, -1),
      encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()),
    ];
    for (const spelling of spellings) assert.equal(r.redact(`<${spelling}>`), '<[REDACTED]>', spelling);
    assert.ok(spellingsOf(SECRET).length >= 5);
  });

  it('replaces a value containing another one whole, and leaves too-short values alone', () => {
    const r = new Redactor(['abcd', 'abcdefgh', 'xy']);
    assert.equal(r.redact('abcdefgh abcd xy'), '[REDACTED] [REDACTED] xy');
  });

  it('redacts an error in place: message, stack, own fields and every cause', () => {
    const inner = new Error(`inner ${SECRET}`);
    const outer = Object.assign(new Error(`outer ${encodeURIComponent(SECRET)}`, { cause: inner }), { url: `http://h/?t=${SECRET}` });
    const same = new Redactor([SECRET]).redactError(outer);
    assert.equal(same, outer);
    for (const text of [outer.message, outer.stack ?? '', outer.url, inner.message, inner.stack ?? '']) {
      assert.ok(!text.includes(SECRET) && !text.includes(encodeURIComponent(SECRET)), text);
    }
    assert.match(outer.message, /outer \[REDACTED\]/);
  });

  it('redacts strings inside plain objects and arrays, keeping other values', () => {
    const r = new Redactor([SECRET]);
    const at = new Date(0);
    assert.deepEqual(r.redactDeep({ a: [`x${SECRET}`, 1], b: { c: SECRET }, at }), { a: ['x[REDACTED]', 1], b: { c: '[REDACTED]' }, at });
  });

  it('takes the password of a URL, or the user name when it stands alone', () => {
    assert.deepEqual(userinfoSecrets('https://ann:p%40ss@h/'), ['p%40ss', 'p@ss']);
    assert.deepEqual(userinfoSecrets('https://ghp_token123@h/'), ['ghp_token123', 'ghp_token123']);
    assert.deepEqual(userinfoSecrets('https://h/'), []);
  });
});

const TOKEN = 'sk-live-HEADERSECRET-12ab';
const PARAM = 'p4ram-s3cret/+=';
const PATH = 'pathSECRET9z';
const PASSWORD = 'pa55:w@rd/x';

/** Echoes the request (URL and headers), as many APIs' error bodies do. */
const echo =
  (status: number): Handler =>
  (req) => ({ status, body: { error: 'denied', request: { url: req.path, headers: req.headers } } });

async function failure(handler: Handler, config: (base: string) => RestSourceConfig) {
  const api = await startFakeApi(handler);
  const requested: string[] = [];
  try {
    const error = await collect(fetchPages(config(api.base), { sleep: async () => {}, onRequest: (i) => requested.push(i.url) })).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    return { error, requests: api.requests, requested };
  } finally {
    await api.close();
  }
}

function assertClean(error: Error | undefined, requested: string[], secrets: string[]): void {
  assert.ok(error instanceof Error, 'expected an error');
  const texts: string[] = [...requested, JSON.stringify({ ...error })];
  for (let e: unknown = error; e instanceof Error; e = e.cause) texts.push(e.message, e.stack ?? '');
  for (const secret of secrets) {
    for (const spelling of spellingsOf(secret)) {
      for (const text of texts) assert.ok(!text.includes(spelling), `"${spelling}" leaked in: ${text}`);
    }
  }
}

describe('rest_api secrets in requests', () => {
  it('redacts secrets rendered into headers, params and the URL path when the error body echoes the request', async () => {
    const { error, requests, requested } = await failure(echo(401), (b) => ({
      url: `${b}/v1/${PATH}/usage`,
      params: { api_token: PARAM, plain: 'kept' },
      headers: { 'X-Custom-Key': TOKEN },
      secrets: [PARAM, TOKEN, PATH],
      pagination: { type: 'none' },
    }));
    // The request really carried them.
    assert.equal(requests[0]!.headers['x-custom-key'], TOKEN);
    assert.equal(requests[0]!.url.searchParams.get('api_token'), PARAM);
    assertClean(error, requested, [PARAM, TOKEN, PATH]);
    assert.ok(error instanceof SourceHttpError);
    assert.match(error.message, /HTTP 401/);
    assert.match(error.bodyExcerpt, /\[REDACTED\]/);
    assert.match(error.message, /plain=kept/);
  });

  it('sends URL userinfo as basic auth, never in the URL, and redacts it and its base64', async () => {
    const { error, requests, requested } = await failure(echo(403), (b) => ({
      url: b.replace('http://', `http://ann:${encodeURIComponent(PASSWORD)}@`) + '/v1',
      pagination: { type: 'none' },
    }));
    assert.equal(requests[0]!.headers.authorization, `Basic ${basicCredentials('ann', PASSWORD)}`);
    assert.ok(!requests[0]!.path.includes('ann'));
    assertClean(error, requested, [PASSWORD, basicCredentials('ann', PASSWORD)]);
  });

  it('redacts bearer and basic auth secrets echoed back', async () => {
    for (const auth of [
      { type: 'bearer', token: TOKEN },
      { type: 'basic', username: 'ann', password: PASSWORD },
    ] as const) {
      const { error, requested } = await failure(echo(400), (b) => ({ url: `${b}/v1`, auth, pagination: { type: 'none' } }));
      assertClean(error, requested, auth.type === 'bearer' ? [TOKEN] : [PASSWORD, basicCredentials('ann', PASSWORD)]);
    }
  });

  it('redacts a secret cut by the body excerpt, not just whole ones', async () => {
    // The secret straddles the 200-character excerpt limit.
    const { error } = await failure(
      () => ({ status: 400, body: `${'x'.repeat(190)}${TOKEN}` }),
      (b) => ({ url: `${b}/v1`, headers: { 'X-Key': TOKEN }, secrets: [TOKEN], pagination: { type: 'none' } }),
    );
    assert.ok(error instanceof SourceHttpError);
    assert.ok(!error.message.includes(TOKEN.slice(0, 8)), error.message);
  });

  it('sends no credentials where a redirect points to another origin, and keeps them on the same origin', async () => {
    const elsewhere = await startFakeApi(() => ({ body: [{ id: 1 }] }));
    try {
      const api = await startFakeApi((req) =>
        req.path === '/start'
          ? { status: 302, headers: { location: '/moved' } }
          : req.path === '/moved'
            ? { status: 307, headers: { location: `${elsewhere.base}/there` } }
            : { status: 404 },
      );
      try {
        const pages = await collect(
          fetchPages({
            url: `${api.base}/start`,
            headers: { 'X-Key': TOKEN },
            auth: { type: 'bearer', token: TOKEN },
            pagination: { type: 'none' },
          }),
        );
        assert.deepEqual(pages[0]!.records, [{ id: 1 }]);
        assert.equal(api.requests[1]!.headers['x-key'], TOKEN, 'same-origin redirect keeps the credentials');
        const there = elsewhere.requests[0]!;
        assert.equal(there.headers['x-key'], undefined);
        assert.equal(there.headers.authorization, undefined);
      } finally {
        await api.close();
      }
    } finally {
      await elsewhere.close();
    }
  });

  it('sends no credentials to a next-page link on another origin', async () => {
    const elsewhere = await startFakeApi(() => ({ body: { data: [{ id: 2 }], next: null } }));
    try {
      const api = await startFakeApi(() => ({ body: { data: [{ id: 1 }], next: `${elsewhere.base}/page2` } }));
      try {
        const pages = await collect(
          fetchPages({
            url: `${api.base}/p`,
            auth: { type: 'bearer', token: TOKEN },
            records_path: 'data',
            pagination: { type: 'next_url', next_url_path: 'next' },
          }),
        );
        assert.equal(pages.length, 2);
        assert.equal(api.requests[0]!.headers.authorization, `Bearer ${TOKEN}`);
        assert.equal(elsewhere.requests[0]!.headers.authorization, undefined);
      } finally {
        await api.close();
      }
    } finally {
      await elsewhere.close();
    }
  });

  it('gives up on a redirect loop with a clear error', async () => {
    const { error } = await failure(
      () => ({ status: 302, headers: { location: '/again' } }),
      (b) => ({ url: `${b}/again`, pagination: { type: 'none' }, retry: { max_attempts: 1 } }),
    );
    assert.ok(error instanceof Error);
    assert.match(error.message, /cannot follow the redirect .*more than 10 redirects/);
  });
});
