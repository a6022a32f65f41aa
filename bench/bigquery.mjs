// BigQuery benchmark: how many HTTP requests the warehouse adapter sends to BigQuery per command,
// and how long each command takes, on a cloud environment whose Google services are the in-process
// fakes of the test suite (BigQuery translated to DuckDB, every statement analyzed by ZetaSQL).
//   tenant show           showTenant on acme_corp
//   keys create           createKey for acme_corp
//   pipeline run          the demo pipeline p_usage_daily (local files loaded into BigQuery)
//   serve key-cache miss  the API's key check after its cache was emptied
// Each request to the real BigQuery costs a round trip and, for a job, its scheduling (around a
// second per metadata query through jobs.insert + jobs.get + jobs.getQueryResults): the request
// count is the figure that carries over to BigQuery; the wall time is the fakes' and this machine's.
// Runs in process on the TypeScript sources (node strips the types). Options: --rounds=N (default 3).
import { appendFile } from 'node:fs/promises';
import path from 'node:path';

const ROUTES = ['jobs.insert', 'jobs.get', 'jobs.getQueryResults', 'jobs.query'];

function rounds() {
  const raw = process.argv.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length);
  const value = Number(raw ?? 3);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--rounds must be a positive integer, got ${raw}`);
  return value;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs `work` `times` times, counting the requests the BigQuery fake received during each. */
async function measure(bigquery, times, work) {
  const samples = [];
  for (let i = 0; i < times; i++) {
    const first = bigquery.requests.length;
    const started = process.hrtime.bigint();
    await work(i);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const sent = bigquery.requests.slice(first);
    const byRoute = Object.fromEntries(ROUTES.map((route) => [route, sent.filter((r) => r.route === route).length]));
    samples.push({ ms, total: sent.length, byRoute, other: sent.length - ROUTES.reduce((n, route) => n + byRoute[route], 0) });
  }
  const mid = (pick) => median(samples.map(pick));
  return {
    ms: mid((s) => s.ms),
    total: mid((s) => s.total),
    other: mid((s) => s.other),
    byRoute: Object.fromEntries(ROUTES.map((route) => [route, mid((s) => s.byRoute[route])])),
  };
}

function print(results, times) {
  const columns = [
    ['requests', (r) => r.total],
    ...ROUTES.map((route) => [route.replace('jobs.', ''), (r) => r.byRoute[route]]),
    ['other', (r) => r.other],
    ['wall ms', (r) => r.ms.toFixed(0)],
  ];
  console.log(`\nBigQuery requests per command (median of ${times} rounds; fakes in process, Node ${process.version})`);
  console.log(['command'.padEnd(22), ...columns.map(([name]) => name.padStart(name.length < 8 ? 8 : name.length + 1))].join(''));
  for (const [name, r] of results) {
    console.log(
      [name.padEnd(22), ...columns.map(([label, pick]) => String(pick(r)).padStart(label.length < 8 ? 8 : label.length + 1))].join(''),
    );
  }
}

export async function run() {
  const times = rounds();
  const { startCloudFakes } = await import('../test/fakes/cloud.ts');
  const { newWorkspace, withContext, openContext } = await import('../test/helpers/context.ts');
  const { cleanupAll } = await import('../test/helpers/tmp.ts');
  const { bootstrap } = await import('../src/services/bootstrap.ts');
  const { installExample } = await import('../src/services/example.ts');
  const { createTenant, showTenant } = await import('../src/services/tenants.ts');
  const { createKey } = await import('../src/services/keys.ts');
  const { runPipeline } = await import('../src/services/pipelines/run.ts');
  const { buildServer, DEFAULT_SERVER_OPTIONS } = await import('../src/server/app.ts');

  const fakes = await startCloudFakes({ pointProcess: true });
  const tenantId = 'acme_corp';
  try {
    const root = await newWorkspace('bench-bigquery');
    await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
    await installExample(root);
    const cloud = { env: 'cloud' };
    await withContext(
      root,
      async (ctx) => {
        await bootstrap(ctx);
        await createTenant(ctx, { tenantId, name: 'ACME', plan: 'scale' });
      },
      cloud,
    );

    const results = [];
    results.push(['tenant show', await measure(fakes.bigquery, times, () => withContext(root, (ctx) => showTenant(ctx, tenantId), cloud))]);
    const keys = [];
    results.push([
      'keys create',
      await measure(fakes.bigquery, times, (i) =>
        withContext(root, async (ctx) => keys.push(await createKey(ctx, { tenantId, description: `bench ${i}` })), cloud),
      ),
    ]);
    results.push([
      'pipeline run',
      await measure(fakes.bigquery, times, (i) =>
        withContext(
          root,
          async (ctx) => {
            const summary = await runPipeline(ctx, {
              tenantId,
              pipelineId: 'p_usage_daily',
              runDate: `2025-01-${String(20 + i).padStart(2, '0')}`,
            });
            if (summary.status === 'FAILED') throw new Error(`the demo run failed (exit ${summary.exitCode})`);
          },
          cloud,
        ),
      ),
    ]);

    const ctx = await openContext(root, { env: 'cloud', actor: 'serve' });
    const { app, parts } = await buildServer(ctx, {
      ...DEFAULT_SERVER_OPTIONS,
      version: 'bench',
      logLevel: 'silent',
      defaultMetrics: false,
    });
    try {
      await app.ready();
      const apiKey = keys[0].apiKey;
      await parts.auth.tenant(apiKey);
      results.push([
        'serve key-cache miss',
        await measure(fakes.bigquery, times * 3, async () => {
          await parts.auth.forgetAll();
          await parts.auth.tenant(apiKey);
        }),
      ]);
    } finally {
      await app.close();
      await ctx.close();
    }
    print(results, times);
  } finally {
    await fakes.stop();
    await cleanupAll();
  }
}
