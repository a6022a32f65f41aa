// Sources benchmark: each source of the product measured beside its bare engine, in the same run,
// rounds interleaved, with the ratio and a PASS/FAIL line against the goal:
//   a. NDJSON file   `convergence pipeline run` vs polars scanJson -> Parquet -> DuckDB (a script)
//   b. Parquet file  `convergence pipeline run` vs DuckDB CREATE TABLE AS SELECT * FROM read_parquet
//   c. REST API      fetchPages + stageRecords + DuckDbWarehouse.load vs a bare fetch() loop that only
//                    parses and counts (both against one paginated API on 127.0.0.1 served by this process)
//   d. DQ            the DQ step (three rules) vs the same aggregates as one hand-written DuckDB query
// Every contender is a child process (bench/sources-contenders.mjs, or the CLI) with bench/rss-probe.mjs
// for its peak RSS. Options: --rounds=N (default 3, median), --ndjson-rows=N (2,000,000),
// --parquet-rows=N (10,000,000; also the DQ table's rows), --rest-pages=N (200), --rest-page-size=N (5,000),
// --sources=ndjson,parquet,rest,dq (default all).
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { cliWorkspace, pipelineRunArgs, TENANT, timeChild } from './children.mjs';
import { COLUMNS, usageRecord } from './csv-input.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const contenderScript = here('./sources-contenders.mjs');

const csvLine = (i) => `${Object.values(usageRecord(i)).join(',')}\n`;
const ndjsonLine = (i) => `${JSON.stringify(usageRecord(i))}\n`;

// Three rules of the kinds the DQ step supports, all passing on the generated rows, and the same
// aggregates (total, nulls, out of range, rows in duplicate groups) as one hand-written query.
const DQ_RULES = [
  { check: 'not_null', columns: ['user_email'] },
  { check: 'range', column: 'cost_usd', min: 0, max: 100 },
  { check: 'unique', columns: ['id'] },
];
const DQ_SQL = `SELECT count(*) AS total_rows,
  count(*) FILTER (WHERE user_email IS NULL) AS null_emails,
  count(*) FILTER (WHERE cost_usd < 0 OR cost_usd > 100) AS cost_out_of_range,
  (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM bench.events WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1)) AS duplicate_ids
FROM bench.events`;

const SOURCE_NAMES = ['ndjson', 'parquet', 'rest', 'dq'];

function option(name, fallback) {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

function options() {
  const raw = process.argv.find((a) => a.startsWith('--sources='))?.slice('--sources='.length);
  const sources = raw ? raw.split(',') : SOURCE_NAMES;
  const unknown = sources.filter((s) => !SOURCE_NAMES.includes(s));
  if (unknown.length) throw new Error(`unknown --sources ${unknown.join(', ')} (known: ${SOURCE_NAMES.join(', ')})`);
  return {
    rounds: option('rounds', 3),
    ndjsonRows: option('ndjson-rows', 2_000_000),
    parquetRows: option('parquet-rows', 10_000_000),
    restPages: option('rest-pages', 200),
    restPageSize: option('rest-page-size', 5_000),
    sources,
  };
}

/** Rows [0, rows) as text lines (after an optional header), written in 64k-row strings. */
async function writeLines(file, rows, line, header) {
  const out = createWriteStream(file);
  if (header) out.write(header);
  for (let start = 0; start < rows; start += 65_536) {
    let text = '';
    for (let i = start; i < Math.min(start + 65_536, rows); i++) text += line(i);
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return out.bytesWritten;
}

/** One run of sources-contenders.mjs: its JSON line plus wall and peak RSS. */
async function runTask(name, spec, work) {
  await mkdir(work, { recursive: true });
  const specFile = path.join(work, 'spec.json');
  await writeFile(specFile, JSON.stringify({ ...spec, dir: work }));
  const measured = await timeChild([contenderScript, name, specFile], { cwd: work, rssFile: path.join(work, 'rss') });
  return { ...measured, ...JSON.parse(measured.stdout.trim().split('\n').at(-1)) };
}

async function countRows(database, table) {
  const instance = await DuckDBInstance.create(database);
  const conn = await instance.connect();
  try {
    return Number((await conn.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRows()[0][0]);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** `convergence pipeline run` of a fresh workspace ingesting `file`; the figure is the CLI process's wall time. */
async function pipelineRun(work, file, format, rows) {
  const ws = path.join(work, 'ws');
  await mkdir(work, { recursive: true });
  await cliWorkspace(ws, { input: file, format, tableSchema: COLUMNS.map(([name, type]) => ({ name, type })) });
  const measured = await timeChild(pipelineRunArgs, {
    cwd: ws,
    rssFile: path.join(work, 'rss'),
  });
  const envelope = JSON.parse(measured.stdout);
  if (envelope.status !== 0 || envelope.result?.status !== 'COMPLETE' || envelope.result.rowsProcessed !== rows) {
    throw new Error(`pipeline run did not load ${rows} rows: ${measured.stdout}`);
  }
  const loaded = await countRows(path.join(ws, '.convergence', 'warehouse.duckdb'), `${TENANT}.events`);
  if (loaded !== rows) throw new Error(`pipeline run landed ${loaded} rows, expected ${rows}`);
  return {
    figure: measured.seconds,
    wall: measured.seconds,
    rssMb: measured.rssMb,
    count: rows,
    // The run's own clock; around the ingest step are the lock, quota, run and step records.
    notes: [
      `pipeline run ${fmt(envelope.result.durationMs / 1000)} s`,
      `of which ingest step ${fmt(envelope.result.steps[0].durationMs / 1000)} s`,
    ],
  };
}

/**
 * A contender of sources-contenders.mjs. `figure` is the child's wall time for a whole program,
 * or the work it timed itself (`timed`, after module loading) for the in-process paths.
 */
async function contenderRun(work, name, spec, { figure, expect, table }) {
  const database = path.join(work, 'warehouse.duckdb'); // the catalog is named after the file: not 'bench', the dataset
  const result = await runTask(name, { ...spec, database, stagingDir: path.join(work, 'staging') }, work);
  if (result.count !== expect) throw new Error(`${name} handled ${result.count} rows, expected ${expect}`);
  if (table) {
    const loaded = await countRows(database, table);
    if (loaded !== expect) throw new Error(`${name} loaded ${loaded} rows, expected ${expect}`);
  }
  return {
    figure: figure === 'wall' ? result.seconds : result.timed,
    wall: result.seconds,
    rssMb: result.rssMb,
    count: result.count,
    notes: Object.entries(result.phases).map(([phase, s]) => `${phase} ${fmt(s, 2)} s`),
  };
}

/** The four comparisons; each has the product first, its bare engine second, and the goal on their ratio. */
function comparisons(input, spec) {
  const { ndjsonRows, parquetRows, restRecords } = input;
  return {
    ndjson: {
      title: `a. NDJSON file: ${n(ndjsonRows)} lines, ${COLUMNS.length} columns (${mb(input.ndjsonBytes)} MB) -> DuckDB`,
      how: 'both are whole programs: s is the child process wall time',
      unit: 'rows',
      goal: { kind: 'time', limit: 1.25, text: 'pipeline run <= 1.25x the bare script' },
      contenders: [
        { name: 'convergence pipeline run (CLI)', run: (w) => pipelineRun(w, input.ndjson, 'ndjson', ndjsonRows) },
        {
          name: 'polars scanJson -> Parquet -> DuckDB (script)',
          run: (w) =>
            contenderRun(
              w,
              'ndjsonBare',
              { ...spec, stagedParquet: path.join(w, 'staged.parquet') },
              { figure: 'wall', expect: ndjsonRows, table: 't' },
            ),
        },
      ],
    },
    parquet: {
      title: `b. Parquet file: ${n(parquetRows)} rows (${mb(input.parquetBytes)} MB, written once by polars) -> DuckDB`,
      how: 'both are whole programs: s is the child process wall time',
      unit: 'rows',
      goal: { kind: 'time', limit: 1.25, text: 'pipeline run <= 1.25x DuckDB read_parquet' },
      contenders: [
        { name: 'convergence pipeline run (CLI)', run: (w) => pipelineRun(w, input.parquet, 'parquet', parquetRows) },
        {
          name: 'DuckDB CREATE TABLE AS read_parquet',
          run: (w) => contenderRun(w, 'parquetBare', spec, { figure: 'wall', expect: parquetRows, table: 't' }),
        },
      ],
    },
    rest: {
      title: `c. REST API on 127.0.0.1: ${n(input.restPages)} pages x ${n(input.restPageSize)} records (${mb(input.restBytes)} MB of JSON, cursor pagination) -> DuckDB`,
      how:
        'each side in a child process of its own, its product path in process; s is timed inside it from the first request to the end ' +
        '(module loading excluded); the bare loop stores nothing, the engine stages Parquet and loads DuckDB',
      unit: 'records',
      goal: { kind: 'rate', limit: 0.5, text: "engine >= 0.5x the bare fetch loop's records/s" },
      contenders: [
        {
          name: 'engine: fetchPages+stage+load',
          run: (w) => contenderRun(w, 'restEngine', spec, { figure: 'timed', expect: restRecords, table: 'bench.events' }),
        },
        { name: 'bare fetch loop (parse, count)', run: (w) => contenderRun(w, 'restBare', spec, { figure: 'timed', expect: restRecords }) },
      ],
    },
    dq: {
      title: `d. DQ on a ${n(parquetRows)}-row DuckDB table: not_null(user_email), range(cost_usd 0..100), unique(id)`,
      how:
        'each side in a child process of its own, the DQ step in process (runDq, no pipeline run around it); s is timed inside it ' +
        'from opening the DuckDB file to closing it (module loading excluded)',
      unit: 'rows',
      goal: { kind: 'time', limit: 1.5, text: 'DQ step <= 1.5x the hand-written query' },
      contenders: [
        { name: 'DQ step (steps/dq.ts)', run: (w) => contenderRun(w, 'dqStep', spec, { figure: 'timed', expect: parquetRows }) },
        { name: 'hand-written DuckDB query', run: (w) => contenderRun(w, 'dqBare', spec, { figure: 'timed', expect: parquetRows }) },
      ],
    },
  };
}

const version = (pkg) => JSON.parse(readFileSync(here(`../node_modules/${pkg}/package.json`), 'utf8')).version;
const fmt = (x, digits = 1) => x.toFixed(digits);
const n = (x) => x.toLocaleString('en-US');
const mb = (bytes) => fmt(bytes / 2 ** 20, bytes < 2 ** 24 ? 1 : 0);
// The lower median for an even count: a real measurement, not an average of two.
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Generates the inputs the chosen sources read, in `dir`; returns their paths and sizes. */
async function makeInputs(dir, opts, spec) {
  const input = { ndjsonRows: opts.ndjsonRows, parquetRows: opts.parquetRows, restPages: opts.restPages, restPageSize: opts.restPageSize };
  const t = performance.now();
  if (opts.sources.includes('ndjson')) {
    input.ndjson = path.join(dir, 'events.ndjson');
    input.ndjsonBytes = await writeLines(input.ndjson, opts.ndjsonRows, ndjsonLine);
  }
  if (opts.sources.includes('parquet') || opts.sources.includes('dq')) {
    const csv = path.join(dir, 'events.csv');
    await writeLines(csv, opts.parquetRows, csvLine, `${COLUMNS.map((c) => c[0]).join(',')}\n`);
    input.parquet = path.join(dir, 'events.parquet');
    await runTask('writeParquet', { ...spec, csv, parquet: input.parquet }, path.join(dir, 'write-parquet'));
    await rm(csv);
    input.parquetBytes = (await stat(input.parquet)).size;
  }
  if (opts.sources.includes('dq')) {
    input.dqDatabase = path.join(dir, 'dq.duckdb');
    await runTask('dqTable', { ...spec, parquet: input.parquet, dqDatabase: input.dqDatabase }, path.join(dir, 'dq-table'));
  }
  if (opts.sources.includes('rest')) {
    // Every page serialized up front, so serving one costs the client-side contenders next to nothing.
    input.restBodies = [];
    for (let p = 0; p < opts.restPages; p++) {
      const data = Array.from({ length: opts.restPageSize }, (_, j) => usageRecord(p * opts.restPageSize + j));
      input.restBodies.push(JSON.stringify({ data, next: p + 1 < opts.restPages ? String(p + 1) : null }));
    }
    input.restBytes = input.restBodies.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
    input.restRecords = opts.restPages * opts.restPageSize;
  }
  console.log(`input: generated in ${fmt((performance.now() - t) / 1000)} s; it stays in the page cache for every contender`);
  return input;
}

/** The paginated API both REST contenders read: page `cursor` (0 without one) of the prepared bodies. */
async function startPagesApi(bodies) {
  const { startFakeApi } = await import('../test/fakes/http-api.ts');
  return startFakeApi((req) => {
    const body = bodies[Number(req.url.searchParams.get('cursor') ?? 0)];
    return body === undefined ? { status: 404, body: { error: 'no such page' } } : { body };
  });
}

function summarize(comparison, runs) {
  const results = comparison.contenders.map((c, i) => {
    const all = runs[i].map((r) => r.figure);
    const figure = median(all);
    const middle = runs[i].find((r) => r.figure === figure);
    return {
      name: c.name,
      figure,
      range: `${fmt(Math.min(...all), 2)}-${fmt(Math.max(...all), 2)}`,
      rate: middle.count / figure,
      wall: middle.wall,
      rssMb: Math.max(...runs[i].map((r) => r.rssMb)),
      notes: middle.notes,
    };
  });
  const [product, bare] = results;
  const { goal } = comparison;
  const ratio = goal.kind === 'time' ? product.figure / bare.figure : product.rate / bare.rate;
  const passed = goal.kind === 'time' ? ratio <= goal.limit : ratio >= goal.limit;
  return { results, ratio, passed };
}

function print(comparison, summary) {
  const { results, ratio, passed } = summary;
  const rate = `${comparison.unit}/s`;
  console.log(`\n${comparison.title}\n  (${comparison.how})`);
  console.log(
    `  ${'contender'.padEnd(46)} ${'s'.padStart(7)} ${'range s'.padStart(11)} ${rate.padStart(13)} ${'child wall s'.padStart(13)} ${'peak RSS MB'.padStart(12)}`,
  );
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(46)} ${fmt(r.figure, 2).padStart(7)} ${r.range.padStart(11)} ${n(Math.round(r.rate)).padStart(13)} ` +
        `${fmt(r.wall, 2).padStart(13)} ${fmt(r.rssMb, 0).padStart(12)}`,
    );
  }
  for (const r of results) console.log(`    ${r.name}: ${r.notes.join(', ')}`);
  const what = comparison.goal.kind === 'time' ? 'time ratio product/bare' : `${rate} ratio product/bare`;
  console.log(`  ${what}: ${fmt(ratio, 2)}x; goal ${comparison.goal.text}: ${passed ? 'PASS' : 'FAIL'}`);
}

export async function run() {
  const opts = options();
  const benchStarted = performance.now();
  const cpu = os.cpus();
  console.log(
    `\nsources: ${opts.sources.join(', ')}, each beside its bare engine; ${opts.rounds} round${opts.rounds === 1 ? '' : 's'}, contenders interleaved`,
  );
  console.log(
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${fmt(os.totalmem() / 2 ** 30)} GiB RAM, load average ${fmt(os.loadavg()[0], 2)}, ` +
      `Node ${process.version}, @duckdb/node-api ${version('@duckdb/node-api')}, nodejs-polars ${version('nodejs-polars')}`,
  );
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'convergence-bench-sources-'));
  let api;
  try {
    const base = {
      columns: {
        duckdb: Object.fromEntries(COLUMNS.map(([c, , d]) => [c, d])),
        polars: Object.fromEntries(COLUMNS.map(([c, , , p]) => [c, p])),
      },
      tableSchema: COLUMNS.map(([name, type]) => ({ name, type })),
    };
    const dataDir = path.join(tmp, 'data');
    await mkdir(dataDir);
    const input = await makeInputs(dataDir, opts, base);
    if (input.restBodies) api = await startPagesApi(input.restBodies);
    const spec = {
      ...base,
      ndjson: input.ndjson,
      ndjsonRows: input.ndjsonRows,
      parquet: input.parquet,
      parquetRows: input.parquetRows,
      dqDatabase: input.dqDatabase,
      dqRules: DQ_RULES,
      dqSql: DQ_SQL,
      restUrl: api ? `${api.base}/usage` : undefined,
    };
    const all = comparisons(input, spec);
    const chosen = opts.sources.map((s) => all[s]);
    // Interleaved rounds, so a noisy neighbour or drift hits every contender alike.
    const runs = chosen.map((c) => c.contenders.map(() => []));
    for (let round = 0; round < opts.rounds; round++) {
      for (const [s, comparison] of chosen.entries()) {
        for (const [i, contender] of comparison.contenders.entries()) {
          const work = path.join(tmp, `run-${round}-${opts.sources[s]}-${i}`);
          runs[s][i].push(await contender.run(work));
          await rm(work, { recursive: true, force: true }); // one contender's output on disk at a time
        }
      }
    }
    const summaries = chosen.map((c, s) => summarize(c, runs[s]));
    chosen.forEach((c, s) => print(c, summaries[s]));
    console.log(
      `\ns: median of ${opts.rounds} run${opts.rounds === 1 ? '' : 's'}; range: fastest-slowest; ` +
        `peak RSS: highest of ${opts.rounds}, whole child process with its native polars and DuckDB threads`,
    );
    console.log('\ngoals:');
    chosen.forEach((c, s) =>
      console.log(`  ${summaries[s].passed ? 'PASS' : 'FAIL'}  ${c.title.slice(0, 2)} ${c.goal.text} (${fmt(summaries[s].ratio, 2)}x)`),
    );
  } finally {
    await api?.close();
    await rm(tmp, { recursive: true, force: true });
  }
  console.log(
    `sources benchmark took ${fmt((performance.now() - benchStarted) / 1000)} s in all, load average now ${fmt(os.loadavg()[0], 2)}`,
  );
}
