// npm run bench — runs every benchmark part and prints its figures. Parts can be picked by name,
// and options go to the parts:
//   npm run bench -- startup
//   npm run bench -- engine --rows=1000000
//   npm run bench -- serve --duration=5
//   npm run bench -- bigquery --rounds=3
//   npm run bench -- sources --ndjson-rows=100000 --parquet-rows=200000 --rounds=1
//   npm run bench -- backfill --dates=30 --runs=100000 --rounds=3
//   npm run bench -- docs --pipelines=100 --runs=10000 --rounds=3
const parts = {
  startup: () => import('./startup.mjs'),
  engine: () => import('./engine.mjs'),
  serve: () => import('./serve.mjs'),
  bigquery: () => import('./bigquery.mjs'),
  sources: () => import('./sources.mjs'),
  backfill: () => import('./backfill.mjs'),
  docs: () => import('./docs.mjs'),
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(parts)) {
  const part = parts[name];
  if (!part) {
    console.error(`unknown benchmark part "${name}" (known: ${Object.keys(parts).join(', ')})`);
    process.exit(2);
  }
  const { run } = await part();
  await run();
}
