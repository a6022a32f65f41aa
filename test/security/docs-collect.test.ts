/**
 * The docs site shows tenant configs to whoever gets the site: a REST source's credentials (user
 * info and query values in its URL, its headers) never reach the model, the pipeline file's text
 * has credential-looking values masked, and a tenant id that is not one is refused before the
 * warehouse is asked anything.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServiceContext } from '../../src/services/context.ts';
import { collectSiteModel } from '../../src/services/docs/collect.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newBootstrappedWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const TENANT = 'leaky_co';
const SECRETS = ['hunter2-url-password', 'tok-query-7f3a9c', 'hdr-bearer-91b2c4', 'x-key-55e1d0', 'yaml-bearer-3c8d7e6f'];

let root: string;

before(async () => {
  root = await newBootstrappedWorkspace('docs-collect-security');
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'Leaky', plan: 'scale' }));
  const dir = path.join(root, 'configs', TENANT);
  await writeFile(
    path.join(dir, 'sources', 'leaky_api.yml'),
    `source_id: leaky_api
type: rest_api
url: https://reporter:hunter2-url-password@api.example.com/v1/usage?token=tok-query-7f3a9c&limit=10
params: { api_token: tok-query-7f3a9c }
headers: { Authorization: Bearer hdr-bearer-91b2c4, X-Api-Key: x-key-55e1d0 }
`,
  );
  await writeFile(
    path.join(dir, 'pipelines', 'p_leaky.yml'),
    `# called by hand with: curl -H "Authorization: Bearer yaml-bearer-3c8d7e6f" ...
pipeline_id: p_leaky
steps:
  - { name: ingest, type: ingest, source_config: sources/leaky_api.yml, destination: { table: raw_leaky } }
`,
  );
});
after(cleanupAll);

describe('docs site model security', () => {
  it('never holds a REST source credential; the pipeline text is masked', async () => {
    const model = await withContext(root, (ctx) => collectSiteModel(ctx, TENANT));
    const page = model.pipelines.find((p) => p.pipelineId === 'p_leaky');
    assert.equal(page?.error, null, 'the pipeline parsed, so its source is in the model');
    const source = model.lineage.nodes.find((n) => n.id === 'source:leaky_api');
    assert.equal(source?.detail, 'GET https://api.example.com/v1/usage');
    assert.ok(page?.yaml?.includes('[REDACTED]'), 'the bearer literal is masked');
    const text = JSON.stringify(model);
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `the model holds ${secret}`);
    assert.ok(!text.includes('reporter'), 'nor the URL user');
  });

  it('refuses a tenant id that is not one before any warehouse call', async () => {
    await withContext(root, async (ctx) => {
      const calls: string[] = [];
      const backends = Object.create(ctx.backends) as ServiceContext['backends'];
      Object.defineProperty(backends, 'warehouse', {
        value: async () => {
          calls.push('warehouse');
          return ctx.backends.warehouse();
        },
      });
      for (const bad of ["leaky_co' OR '1'='1", '../leaky_co', 'LEAKY', '']) {
        await rejectsWith(collectSiteModel({ ...ctx, backends }, bad), 2);
      }
      assert.deepEqual(calls, [], 'no warehouse was opened');
    });
  });
});
