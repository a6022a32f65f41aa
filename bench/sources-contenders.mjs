// One contender (or one set-up task) of the sources benchmark, run in a child process by
// bench/sources.mjs so its wall time and peak RSS are its own:
//   node bench/sources-contenders.mjs <name> <spec.json>
// Prints one JSON line on stdout: `timed` (seconds of the measured work, after module loading),
// `count` (rows or records it handled) and `phases` (seconds per phase, in order).
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import pl from 'nodejs-polars';
import { loadStaged } from './staged-load.mjs';

const [name, specFile] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specFile, 'utf8'));
const seconds = (from) => (performance.now() - from) / 1000;

async function withDuckDb(file, work) {
  const instance = await DuckDBInstance.create(file);
  const conn = await instance.connect();
  try {
    return await work(conn);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const polarsSchema = () => Object.fromEntries(Object.entries(spec.columns.polars).map(([c, t]) => [c, pl[t]]));
const duckdbColumns = () =>
  Object.entries(spec.columns.duckdb)
    .map(([c, t]) => `${c} ${t}`)
    .join(', ');

/** The REST source as the product's client takes it: cursor pagination, records under `data`. */
const restConfig = () => ({
  url: spec.restUrl,
  method: 'GET',
  pagination: { type: 'cursor', cursor_path: 'next', param: 'cursor' },
  records_path: 'data',
  // The bench API listens on 127.0.0.1, which a source reaches only when the operator lists it.
  private_hosts: ['127.0.0.1'],
});

const tasks = {
  // Set-up, not measured: the Parquet input, written once by polars from the generated CSV.
  async writeParquet() {
    const started = performance.now();
    await pl.scanCSV(spec.csv, { hasHeader: true, schema: polarsSchema() }).sinkParquet(spec.parquet).collect();
    return { timed: seconds(started), count: spec.parquetRows, phases: {} };
  },

  // Set-up, not measured: the DQ table (bench.events) in a DuckDB file of its own, from the Parquet input.
  async dqTable() {
    const started = performance.now();
    await withDuckDb(spec.dqDatabase, async (conn) => {
      await conn.run('CREATE SCHEMA bench');
      await conn.run(`CREATE TABLE bench.events AS SELECT * FROM read_parquet('${spec.parquet}')`);
    });
    return { timed: seconds(started), count: spec.parquetRows, phases: {} };
  },

  // a. The two engines the product uses, glued by hand: typed polars NDJSON scan -> Parquet -> DuckDB.
  async ndjsonBare() {
    const started = performance.now();
    await pl.scanJson(spec.ndjson, { schema: polarsSchema() }).sinkParquet(spec.stagedParquet).collect();
    const staged = seconds(started);
    await withDuckDb(spec.database, async (conn) => {
      await conn.run(`CREATE TABLE t (${duckdbColumns()})`);
      await conn.run(`INSERT INTO t SELECT * FROM read_parquet('${spec.stagedParquet}')`);
    });
    const timed = seconds(started);
    return { timed, count: spec.ndjsonRows, phases: { 'polars NDJSON -> Parquet': staged, 'DuckDB insert': timed - staged } };
  },

  // b. DuckDB alone reading the Parquet input into a table.
  async parquetBare() {
    const started = performance.now();
    await withDuckDb(spec.database, (conn) => conn.run(`CREATE TABLE t AS SELECT * FROM read_parquet('${spec.parquet}')`));
    const timed = seconds(started);
    return { timed, count: spec.parquetRows, phases: { 'read_parquet into a table': timed } };
  },

  // c. The product's REST path in process: fetchPages -> stageRecords (typed Parquet parts) -> DuckDbWarehouse.load.
  async restEngine() {
    const { fetchPages } = await import('../src/engine/sources/rest/client.ts');
    const { stageRecords } = await import('../src/engine/staging/records.ts');
    await import('../src/backends/warehouse/duckdb/index.ts'); // loaded before the clock starts
    const started = performance.now();
    async function* batches() {
      for await (const page of fetchPages(restConfig())) yield page.records;
    }
    const staged = await stageRecords(batches(), { stagingDir: spec.stagingDir, sourceLabel: spec.restUrl, tableSchema: spec.tableSchema });
    const stagedAt = seconds(started);
    const result = await loadStaged(spec.database, staged);
    const timed = seconds(started);
    if (result.rowsQuarantined > 0) throw new Error(`${result.rowsQuarantined} records were quarantined`);
    return {
      timed,
      count: result.rowsLoaded,
      phases: { 'fetch pages + stage records': stagedAt, 'DuckDB load transaction': timed - stagedAt },
    };
  },

  // c. The bare loop: fetch every page, parse its JSON, count its records; nothing is stored.
  async restBare() {
    const started = performance.now();
    let count = 0;
    let url = spec.restUrl;
    while (url) {
      const response = await fetch(url, { headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`${url} answered ${response.status}`);
      const body = await response.json();
      count += body.data.length;
      url = body.next ? `${spec.restUrl}?cursor=${encodeURIComponent(body.next)}` : null;
    }
    const timed = seconds(started);
    return { timed, count, phases: { 'fetch + JSON.parse': timed } };
  },

  // d. The product's DQ step (steps/dq.ts: the rules' one aggregate statement) on the local warehouse.
  async dqStep() {
    const { runDq } = await import('../src/engine/steps/dq.ts');
    const { DuckDbWarehouse } = await import('../src/backends/warehouse/duckdb/index.ts');
    const started = performance.now();
    const warehouse = new DuckDbWarehouse({ file: spec.dqDatabase });
    // The slice of the step environment a DQ step reads.
    const env = { warehouse, dataset: 'bench', progress: () => undefined, now: () => new Date('2026-01-01T00:00:00Z') };
    const outcome = await runDq(env, { name: 'check', type: 'dq', table: 'events', rules: spec.dqRules });
    await warehouse.close();
    const timed = seconds(started);
    if (outcome.failure || outcome.dq.results.some((r) => !r.passed)) throw new Error(`a DQ rule failed: ${JSON.stringify(outcome.dq)}`);
    return { timed, count: outcome.rowsIn, phases: { 'DQ step (open, rules, aggregate, close)': timed } };
  },

  // d. The same aggregates written by hand as one DuckDB query.
  async dqBare() {
    const started = performance.now();
    const [row] = await withDuckDb(spec.dqDatabase, async (conn) => (await conn.runAndReadAll(spec.dqSql)).getRowObjects());
    const timed = seconds(started);
    const failing = Number(row.null_emails) + Number(row.cost_out_of_range) + Number(row.duplicate_ids);
    if (failing !== 0) throw new Error(`the hand-written checks found failing rows: ${JSON.stringify(row, (_, v) => String(v))}`);
    return { timed, count: Number(row.total_rows), phases: { 'one query (open, aggregate, close)': timed } };
  },
};

const task = tasks[name];
if (!task) throw new Error(`unknown sources contender "${name}" (known: ${Object.keys(tasks).join(', ')})`);
console.log(JSON.stringify(await task()));
