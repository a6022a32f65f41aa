import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildServer, DEFAULT_SERVER_OPTIONS } from '../../src/server/app.ts';
import type { ServerOptions, ServerParts } from '../../src/server/types.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { installExample } from '../../src/services/example.ts';
import { createAdminKey, createKey } from '../../src/services/keys.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type Clock, type TestContext } from '../helpers/context.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';

export interface ApiHarness {
  root: string;
  ctx: TestContext;
  app: FastifyInstance;
  parts: ServerParts;
  /** Every log line the server wrote. */
  logs: string[];
  keys: { acme: string; other: string; admin: string };
  call(options: InjectOptions & { key?: string; admin?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * A bootstrapped workspace with the demo tenant acme_corp and a second tenant other_co, a key for
 * each, the admin key, and the API built on it (requests go through Fastify's inject, no socket).
 */
export async function apiHarness(
  options: Partial<ServerOptions> = {},
  clock?: Clock,
  /** What the server sees of the context, e.g. a warehouse that counts or holds its queries. */
  serverContext: (ctx: TestContext) => ServiceContext = (ctx) => ctx,
): Promise<ApiHarness> {
  const root = await newBootstrappedWorkspace('api');
  await allowFakeApis(root);
  await installExample(root);
  const ctx = await openContext(root, clock ? { clock } : {});
  await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'scale' });
  await createTenant(ctx, { tenantId: 'other_co', name: 'Other', plan: 'starter' });
  const keys = {
    acme: (await createKey(ctx, { tenantId: 'acme_corp' })).apiKey,
    other: (await createKey(ctx, { tenantId: 'other_co' })).apiKey,
    admin: (await createAdminKey(ctx)).adminKey,
  };
  const logs: string[] = [];
  const logStream = new (await import('node:stream')).Writable({
    write(chunk, _enc, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const { app, parts } = await buildServer(serverContext(ctx), {
    ...DEFAULT_SERVER_OPTIONS,
    version: '9.9.9-test',
    logLevel: 'info',
    logStream,
    defaultMetrics: false,
    ...options,
  });
  return {
    root,
    ctx,
    app,
    parts,
    logs,
    keys,
    call: ({ key, admin, headers, ...rest }) =>
      app.inject({
        ...rest,
        headers: { ...(headers ?? {}), ...(key ? { 'x-api-key': key } : {}), ...(admin ? { 'x-admin-key': admin } : {}) },
      }),
    close: async () => {
      await parts.runs.shutdown(10_000);
      await app.close();
      await ctx.close();
    },
  };
}

/** A REST source whose API answers only when `release()` is called: a run that stays RUNNING on demand. */
export async function heldPipeline(
  root: string,
  tenantId = 'acme_corp',
  pipelineId = 'p_held',
): Promise<{ api: FakeApi; release(): void }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const api = await startFakeApi(async () => {
    await released;
    return { body: { data: [{ id: 1 }] } };
  });
  // The fake API listens on 127.0.0.1, which the workspace lists as an operator lists an internal API.
  await allowFakeApis(root);
  const dir = path.join(root, 'configs', tenantId);
  await writeFile(path.join(dir, 'sources', 'held.yml'), `source_id: held\ntype: rest_api\nurl: ${api.base}/rows\nrecords_path: data\n`);
  await writeFile(
    path.join(dir, 'pipelines', `${pipelineId}.yml`),
    `pipeline_id: ${pipelineId}\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/held.yml, destination: { table: held } }\n`,
  );
  return { api, release };
}

export async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
