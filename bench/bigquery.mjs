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
// For pipeline run, the ingest step's load is also read on its own: the bytes of staged Parquet the
// adapter uploads per landed row (the fake's uploadBytes) and the BigQuery requests during the load.
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

/**
 * Notes, for every load of staged Parquet (an ingest step's), the requests the BigQuery fake
 * received while it ran and the rows it landed. The adapter's load is wrapped, not changed: the
 * wrapper only marks where a load starts and ends in the fake's request log.
 */
async function watchStagedLoads(bigquery) {
  const { BigQueryWarehouse } = await import('../src/backends/warehouse/bigquery/index.ts');
  const original = BigQueryWarehouse.prototype.load;
  const loads = [];
  BigQueryWarehouse.prototype.load = async function load(request) {
    const first = bigquery.requests.length;
    const result = await original.call(this, request);
    if (request.source.kind === 'parquet')
      loads.push({ table: request.table, sent: bigquery.requests.slice(first), rows: result.rowsLoaded });
    return result;
  };
  return {
    loads,
    stop: () => {
      BigQueryWarehouse.prototype.load = original;
    },
  };
}

/** Staged bytes per landed row and requests per load, over the staged loads that landed rows. */
function printStagedLoads(loads) {
  const landed = loads.filter((l) => l.rows > 0);
  console.log(`\npipeline run, the ingest step's load of staged Parquet (${landed.length} of ${loads.length} loads landed rows):`);
  if (landed.length === 0) return;
  const bytes = landed.map((l) => l.sent.reduce((sum, r) => sum + (r.uploadBytes ?? 0), 0));
  const rows = landed.reduce((sum, l) => sum + l.rows, 0);
  const uploaded = bytes.reduce((a, b) => a + b, 0);
  const uploads = landed.reduce((n, l) => n + l.sent.filter((r) => r.uploadBytes !== undefined).length, 0);
  console.log(
    `  staged bytes per landed row: ${(uploaded / rows).toFixed(1)} (${uploaded.toLocaleString('en-US')} bytes of Parquet uploaded ` +
      `for ${rows.toLocaleString('en-US')} rows in ${uploads} upload${uploads === 1 ? '' : 's'})`,
  );
  const routes = [...new Set(landed.flatMap((l) => l.sent.map((r) => r.route)))].sort();
  const perRoute = routes.map((route) => `${route} ${median(landed.map((l) => l.sent.filter((r) => r.route === route).length))}`);
  console.log(`  requests per load: ${median(landed.map((l) => l.sent.length))} (median; ${perRoute.join(', ')})`);
  const empty = loads.filter((l) => l.rows === 0);
  // A later run finds no rows past the incremental cursor: its load is shown apart, not mixed into the median.
  if (empty.length > 0) console.log(`  requests per load that landed no rows: ${median(empty.map((l) => l.sent.length))} (median)`);
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
    const stagedLoads = await watchStagedLoads(fakes.bigquery);
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
    stagedLoads.stop();

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
    printStagedLoads(stagedLoads.loads);
  } finally {
    await fakes.stop();
    await cleanupAll();
  }
}
