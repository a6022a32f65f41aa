/** `docs serve`: the site from memory on 127.0.0.1, generated again after a config change. */
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveSite, type SiteServer } from '../../src/services/docs/serve.ts';
import { SITE_CONTENT_SECURITY_POLICY } from '../../src/services/docs/site-files.ts';
import { installExample } from '../../src/services/example.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

/** A raw request, so the Host header can be anything a browser on a rebinding page would send. */
function request(
  url: string,
  options: { method?: string; host?: string } = {},
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: options.method ?? 'GET',
        headers: options.host ? { host: options.host } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('serveSite', () => {
  let root: string;
  let ctx: TestContext;
  let server: SiteServer;
  let generations = 0;
  before(async () => {
    root = await newBootstrappedWorkspace('docs-serve');
    await installExample(root);
    ctx = await openContext(root);
    await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' });
    server = await serveSite(ctx, { tenantId: 'acme_corp', port: 0, maxAgeMs: 3_600_000, onGenerated: () => generations++ });
  });
  after(async () => {
    await server?.close();
    await ctx?.close();
  });

  it('listens on 127.0.0.1 and serves the pages under the site policy', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const index = await request(server.url);
    assert.equal(index.status, 200);
    assert.match(index.body, /acme_corp/);
    assert.equal(index.headers['content-security-policy'], SITE_CONTENT_SECURITY_POLICY);
    assert.equal((await request(`${server.url}pipelines/p_usage_daily.html`)).status, 200);
    assert.equal((await request(`${server.url}nothing.html`)).status, 404);
    assert.equal((await request(`${server.url}.convergence-site`)).status, 404);
  });

  it('answers only for 127.0.0.1 and localhost, and only GET and HEAD', async () => {
    const port = new URL(server.url).port;
    assert.equal((await request(server.url, { host: `localhost:${port}` })).status, 200);
    const rebound = await request(server.url, { host: `attacker.example:${port}` });
    assert.equal(rebound.status, 421);
    assert.ok(!rebound.body.includes('acme_corp'));
    assert.equal((await request(server.url, { method: 'POST' })).status, 405);
    assert.equal((await request(server.url, { method: 'HEAD' })).status, 200);
  });

  it('generates the site again after a file under configs/<tenant>/ changes, not before', async () => {
    const before = generations;
    await request(server.url);
    assert.equal(generations, before, 'a fresh site is reused');
    await appendFile(path.join(root, 'configs', 'acme_corp', 'pipelines', 'p_usage_daily.yml'), '# changed\n');
    let regenerated = false;
    for (let attempt = 0; attempt < 50 && !regenerated; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await request(server.url);
      regenerated = generations > before;
    }
    assert.ok(regenerated, 'the change was seen and the site generated again');
    const page = await request(`${server.url}pipelines/p_usage_daily.html`);
    assert.match(page.body, /# changed/);
  });

  it('refuses a tenant that does not exist before listening', async () => {
    await assert.rejects(serveSite(ctx, { tenantId: 'no_such_co', port: 0, maxAgeMs: 1_000 }), { code: 'NOT_FOUND' });
  });
});
