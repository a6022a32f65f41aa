// Engine benchmark: the same N-row CSV input (default 10,000,000 rows over 4 files) loaded into
// DuckDB four ways — DuckDB alone, polars + DuckDB glued by hand, the product's engine in process,
// and `convergence pipeline run` end to end — each in its own child process, so wall time and peak
// RSS are that contender's alone. Rows: `--rows=N` or BENCH_ROWS (e.g. npm run bench -- engine --rows=1e6);
// rounds (median reported): `--rounds=N` or BENCH_ENGINE_ROUNDS, default 3.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const node = process.execPath;
const bin = here('../bin/run.js');
const contenderScript = here('./engine-contenders.mjs');
const probe = new URL('./rss-probe.mjs', import.meta.url).href;
const FILES = 4;
const TENANT = 'bench_co';

function rowCount() {
  const arg = process.argv.find((a) => a.startsWith('--rows='))?.slice('--rows='.length);
  const rows = Number(arg ?? process.env.BENCH_ROWS ?? 10_000_000);
  if (!Number.isSafeInteger(rows) || rows < FILES) throw new Error(`bad row count ${arg ?? process.env.BENCH_ROWS}`);
  return rows;
}

// name, BigQuery type (schema file), DuckDB type, polars type
const COLUMNS = [
  ['id', 'INT64', 'BIGINT', 'Int64'],
  ['usage_date', 'DATE', 'DATE', 'Date'],
  ['provider', 'STRING', 'VARCHAR', 'Utf8'],
  ['model', 'STRING', 'VARCHAR', 'Utf8'],
  ['user_email', 'STRING', 'VARCHAR', 'Utf8'],
  ['input_tokens', 'INT64', 'BIGINT', 'Int64'],
  ['output_tokens', 'INT64', 'BIGINT', 'Int64'],
  ['cost_usd', 'FLOAT64', 'DOUBLE', 'Float64'],
];

const DAYS = Array.from({ length: 365 }, (_, d) => new Date(Date.UTC(2025, 0, 1 + d)).toISOString().slice(0, 10));
const PROVIDERS = ['anthropic', 'openai', 'cursor'];
const MODELS = ['claude-sonnet-4', 'claude-haiku-4', 'gpt-4.1', 'gpt-4.1-mini', 'cursor-small'];

function row(i) {
  const input = (i * 7919) % 100_000;
  const output = (i * 104_729) % 20_000;
  const cost = (input * 3 + output * 15) / 1e6;
  return `${i + 1},${DAYS[i % 365]},${PROVIDERS[i % 3]},${MODELS[i % 5]},user${i % 5000}@example.com,${input},${output},${cost}\n`;
}

/** Rows [from, to) as one CSV file, built in 64k-row strings so the stream gets few, large writes. */
async function writeCsv(file, from, to) {
  const out = createWriteStream(file);
  out.write(`${COLUMNS.map((c) => c[0]).join(',')}\n`);
  for (let start = from; start < to; start += 65_536) {
    let text = '';
    for (let i = start; i < Math.min(start + 65_536, to); i++) text += row(i);
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Runs `node --import rss-probe <args>`; returns wall seconds, peak RSS (MB) and stdout. */
async function timeChild(args, { cwd, rssFile }) {
  const started = performance.now();
  const child = spawn(node, ['--import', probe, ...args], {
    cwd,
    env: { ...process.env, BENCH_RSS_FILE: rssFile, CI: '1', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'close' (all output read) can come in the same tick as 'exit': listen for both up front.
  const closed = once(child, 'close');
  const [code] = await once(child, 'exit');
  const seconds = (performance.now() - started) / 1000;
  await closed;
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}\n${stdout}\n${stderr}`);
  return { seconds, rssMb: Number(await readFile(rssFile, 'utf8')) / 1024, stdout };
}

function cli(args, cwd) {
  const out = spawnSync(node, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1', NO_COLOR: '1' } });
  if (out.status !== 0) throw new Error(`convergence ${args.join(' ')} exited ${out.status}: ${out.stdout}${out.stderr}`);
}

/** A bootstrapped workspace whose pipeline p_bench ingests the CSV files into bench_co.events, nothing else. */
async function cliWorkspace(root, csvGlob, tableSchema) {
  cli(['init', root], path.dirname(root));
  // The input lives outside the workspace (shared by every contender): the operator lists its folder.
  const config = path.join(root, 'convergence.yaml');
  await writeFile(
    config,
    (await readFile(config, 'utf8')).replace(
      '    backend: local\n',
      `    backend: local\n    file_roots: [${JSON.stringify(path.dirname(csvGlob))}]\n`,
    ),
  );
  cli(['bootstrap'], root);
  cli(['tenant', 'create', TENANT, '--name', 'Bench', '--plan', 'scale'], root);
  const dir = path.join(root, 'configs', TENANT);
  await writeFile(path.join(dir, 'schemas', 'events.json'), JSON.stringify(tableSchema, null, 2));
  // JSON strings are valid YAML scalars: the absolute path needs no further quoting rules.
  const source = `source_id: events\ntype: file\npath: ${JSON.stringify(csvGlob)}\nformat: csv\nschema: schemas/events.json\n`;
  await writeFile(path.join(dir, 'sources', 'events.yml'), source);
  const pipeline = [
    'pipeline_id: p_bench',
    'steps:',
    '  - { name: ingest, type: ingest, source_config: sources/events.yml, destination: { table: events, write_mode: append } }',
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'pipelines', 'p_bench.yml'), pipeline);
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

const version = (pkg) => JSON.parse(readFileSync(here(`../node_modules/${pkg}/package.json`), 'utf8')).version;
const fmt = (n, digits = 1) => n.toFixed(digits);
// The lower median for an even count: a real measurement, not an average of two.
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const CONTENDERS = [
  { name: 'DuckDB alone (read_csv)', script: 'duckdb', table: 't' },
  { name: 'polars + DuckDB script', script: 'polarsDuckdb', table: 't' },
  { name: 'convergence engine in process', script: 'engine', table: 'bench.events' },
  { name: 'convergence pipeline run (CLI)', table: `${TENANT}.events` },
];

/** One timed run of a contender in a fresh work folder; fails unless exactly `input.rows` rows landed. */
async function measure(contender, work, input) {
  await mkdir(work, { recursive: true });
  const rssFile = path.join(work, 'rss');
  let measured;
  let database;
  let notes;
  if (contender.script) {
    database = path.join(work, 'warehouse.duckdb'); // the catalog is named after the file: not 'bench', the dataset
    const spec = {
      ...input,
      dir: work,
      database,
      parquet: path.join(work, 'events.parquet'),
      stagingDir: path.join(work, 'staging'),
      columns: {
        duckdb: Object.fromEntries(COLUMNS.map(([n, , d]) => [n, d])),
        polars: Object.fromEntries(COLUMNS.map(([n, , , p]) => [n, p])),
      },
    };
    await writeFile(path.join(work, 'spec.json'), JSON.stringify(spec));
    measured = await timeChild([contenderScript, contender.script, path.join(work, 'spec.json')], { cwd: work, rssFile });
    const phases = JSON.parse(measured.stdout.trim().split('\n').at(-1));
    notes = Object.entries(phases).map(([phase, seconds]) => `${phase} ${fmt(seconds)} s`);
  } else {
    // A fresh workspace each time, so every run appends to an empty table like the other contenders.
    const ws = path.join(work, 'ws');
    await cliWorkspace(ws, input.csvGlob, input.tableSchema);
    database = path.join(ws, '.convergence', 'warehouse.duckdb');
    measured = await timeChild([bin, 'pipeline', 'run', 'p_bench', '--tenant', TENANT, '--json'], { cwd: ws, rssFile });
    const envelope = JSON.parse(measured.stdout);
    if (envelope.status !== 0 || envelope.result?.status !== 'COMPLETE' || envelope.result.rowsProcessed !== input.rows) {
      throw new Error(`pipeline run did not load ${input.rows} rows: ${measured.stdout}`);
    }
    // The run's own clock; around the ingest step (stage + load) are the lock, quota, run and step records.
    notes = [
      `pipeline run ${fmt(envelope.result.durationMs / 1000)} s`,
      `of which ingest step ${fmt(envelope.result.steps[0].durationMs / 1000)} s`,
    ];
  }
  const loaded = await countRows(database, contender.table);
  if (loaded !== input.rows) throw new Error(`${contender.name} loaded ${loaded} rows, expected ${input.rows}`);
  await rm(work, { recursive: true, force: true }); // one contender's output on disk at a time
  return { seconds: measured.seconds, rssMb: measured.rssMb, notes };
}

export async function run() {
  const rows = rowCount();
  const rounds = Number(
    process.argv.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? process.env.BENCH_ENGINE_ROUNDS ?? 3,
  );
  const benchStarted = performance.now();
  const cpu = os.cpus();
  console.log(
    `\nengine: ${rows.toLocaleString('en-US')} CSV rows over ${FILES} files -> DuckDB; ${rounds} round${rounds === 1 ? '' : 's'}, contenders interleaved`,
  );
  console.log(
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${fmt(os.totalmem() / 2 ** 30)} GiB RAM, load average ${fmt(os.loadavg()[0], 2)}, ` +
      `Node ${process.version}, @duckdb/node-api ${version('@duckdb/node-api')}, nodejs-polars ${version('nodejs-polars')}`,
  );

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'convergence-bench-engine-'));
  try {
    const dataDir = path.join(tmp, 'data');
    await mkdir(dataDir);
    const t = performance.now();
    const csvFiles = [];
    for (let f = 0; f < FILES; f++) {
      const file = path.join(dataDir, `events_${f}.csv`);
      await writeCsv(file, Math.floor((rows * f) / FILES), Math.floor((rows * (f + 1)) / FILES));
      csvFiles.push(file);
    }
    console.log(`input: generated in ${fmt((performance.now() - t) / 1000)} s; it stays in the page cache for every contender`);
    const input = {
      rows,
      csvFiles,
      csvGlob: path.join(dataDir, 'events_*.csv'),
      tableSchema: COLUMNS.map(([name, type]) => ({ name, type })),
    };

    // Interleaved rounds, so a noisy neighbour or drift hits every contender alike.
    const runs = CONTENDERS.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, c] of CONTENDERS.entries()) runs[i].push(await measure(c, path.join(tmp, `run-${round}-${i}`), input));
    }
    const results = CONTENDERS.map((c, i) => {
      const seconds = median(runs[i].map((r) => r.seconds));
      // Phases of the median run; peak RSS is the highest seen.
      const all = runs[i].map((r) => r.seconds);
      return {
        ...c,
        seconds,
        range: `${fmt(Math.min(...all))}-${fmt(Math.max(...all))}`,
        rssMb: Math.max(...runs[i].map((r) => r.rssMb)),
        notes: runs[i].find((r) => r.seconds === seconds).notes,
      };
    });

    const base = results[0].seconds;
    const glued = results[1].seconds;
    console.log(
      `\n${'contender'.padEnd(32)} ${'wall s'.padStart(8)} ${'range s'.padStart(10)} ${'rows/s'.padStart(12)} ${'peak RSS MB'.padStart(12)} ${'x DuckDB'.padStart(9)} ${'x polars+DuckDB'.padStart(16)}`,
    );
    for (const r of results) {
      console.log(
        `${r.name.padEnd(32)} ${fmt(r.seconds, 2).padStart(8)} ${r.range.padStart(10)} ${Math.round(rows / r.seconds)
          .toLocaleString('en-US')
          .padStart(12)} ` +
          `${fmt(r.rssMb, 0).padStart(12)} ${fmt(r.seconds / base, 2).padStart(9)} ${fmt(r.seconds / glued, 2).padStart(16)}`,
      );
    }
    console.log(
      `(wall s: median of ${rounds} runs, child process start to exit; range: fastest-slowest run; peak RSS: highest of ${rounds}; x: wall-time ratios)`,
    );
    console.log('\nwhere the median run spent its time (the rest of the wall time is Node start-up and module loading):');
    for (const r of results) console.log(`  ${r.name}: ${r.notes.join(', ')}`);
    console.log(`every run of every contender loaded exactly ${rows.toLocaleString('en-US')} rows (counted in DuckDB)`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  console.log(
    `engine benchmark took ${fmt((performance.now() - benchStarted) / 1000)} s in all, load average now ${fmt(os.loadavg()[0], 2)}`,
  );
}
