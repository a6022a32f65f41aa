/** The tenant sites at /docs/<tenant>/ of `convergence serve`: admin key only, the site's own policy, nothing outside it. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SITE_CONTENT_SECURITY_POLICY } from '../../src/services/docs/site-files.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { apiHarness, type ApiHarness } from './helpers.ts';

after(cleanupAll);

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('GET /docs/<tenant>/', () => {
  let h: ApiHarness;
  before(async () => {
    h = await apiHarness();
  });
  after(() => h.close());

  it('asks a browser for the admin key and refuses tenant keys, junk and missing keys alike', async () => {
    for (const headers of [
      {},
      { 'x-api-key': h.keys.acme },
      { authorization: basic('admin', h.keys.acme) },
      { authorization: basic('admin', 'admin_not-a-real-key') },
      { authorization: 'Bearer whatever' },
      { authorization: 'Basic %%%' },
    ]) {
      const res = await h.call({ method: 'GET', url: '/docs/acme_corp/', headers });
      assert.equal(res.statusCode, 401, `${JSON.stringify(headers)}: ${res.body}`);
      assert.equal(res.headers['www-authenticate'], 'Basic realm="convergence docs", charset="UTF-8"');
      assert.equal(res.json().error.code, 'AUTH');
      assert.ok(!res.body.includes('<html'), 'nothing of the site is shown');
    }
  });

  it('serves the site with the admin key as X-Admin-Key or as the Basic password, under the site policy', async () => {
    for (const headers of [{ 'x-admin-key': h.keys.admin }, { authorization: basic('ops', h.keys.admin) }]) {
      const res = await h.call({ method: 'GET', url: '/docs/acme_corp/', headers });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.equal(res.headers['content-security-policy'], SITE_CONTENT_SECURITY_POLICY);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.match(res.body, /acme_corp/);
    }
    const css = await h.call({ method: 'GET', url: '/docs/acme_corp/assets/site.css', admin: h.keys.admin });
    assert.equal(css.statusCode, 200);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    const page = await h.call({ method: 'GET', url: '/docs/acme_corp/pipelines/p_usage_daily.html', admin: h.keys.admin });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /p_usage_daily/);
  });

  it('redirects /docs/<tenant> to the folder, so relative links resolve', async () => {
    const res = await h.call({ method: 'GET', url: '/docs/acme_corp', admin: h.keys.admin });
    assert.equal(res.statusCode, 302);
    assert.equal(res.headers.location, '/docs/acme_corp/');
  });

  it('answers 404 for a tenant that does not exist, 400 for a malformed id, 404 outside the site', async () => {
    assert.equal((await h.call({ method: 'GET', url: '/docs/no_such_co/', admin: h.keys.admin })).statusCode, 404);
    assert.equal((await h.call({ method: 'GET', url: '/docs/ACME;drop/', admin: h.keys.admin })).statusCode, 400);
    for (const url of [
      '/docs/acme_corp/..%2F..%2Fconvergence.yaml',
      '/docs/acme_corp/%2e%2e%2fother_co%2findex.html',
      '/docs/acme_corp/.convergence-site',
      '/docs/acme_corp/tables/no_such_table.html',
    ]) {
      const res = await h.call({ method: 'GET', url, admin: h.keys.admin });
      assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
      assert.ok(!res.body.includes('environments'), url);
    }
  });

  it("keeps each tenant's site to its own tables and runs", async () => {
    const other = await h.call({ method: 'GET', url: '/docs/other_co/', admin: h.keys.admin });
    assert.equal(other.statusCode, 200, other.body);
    assert.ok(!other.body.includes('raw_usage'), "another tenant's tables are not on other_co's site");
  });
});
