// Engine benchmark: the same CSV input (default 10,000,000 rows over 4 files) loaded into DuckDB
// four ways — DuckDB alone, polars + DuckDB glued by hand, the product's engine in process, and
// `convergence pipeline run` end to end — each in its own child process, so wall time and peak RSS
// are that contender's alone.
//
// Variants (`--variant=clean|bad|both`, default both, run one after the other):
//   clean  every row well formed; every contender must land every row.
//   bad    0.1 % bad rows in every file: half ragged lines (a field too many or too few), half
//          values their column's type cannot hold (n/a in an INT64 column, 2025-13-45 in a DATE
//          one). Each contender handles them as its users would (engine-contenders.mjs): DuckDB
//          alone rejects the lines into its reject tables, polars nulls or cuts what it cannot
//          read; both are described, not failed. The product (in process and CLI) must land
//          exactly the good rows in the table and every bad row in <table>__quarantine, counted
//          in DuckDB against the generator's own numbers, or the bench fails (engine-landed.mjs).
// Options: `--rows=N` or BENCH_ROWS (e.g. npm run bench -- engine --rows=1e6); `--rounds=N` or
// BENCH_ENGINE_ROUNDS, default 3: contenders interleaved round by round, medians reported.
//
// Goals, a PASS or FAIL line each at the end of each variant, on median wall times (the CLI is the
// contender judged): pipeline run <= 1.25 x DuckDB alone, and <= 1.0 x the polars + DuckDB script.
//
// Bounded memory: `--gb=G` instead generates at least G GiB of clean CSV (same rows, more of
// them, over max(4, G) files; refused unless twice that is free in the temp folder), runs only
// `pipeline run` and DuckDB alone, once each, and judges the CLI's peak RSS: < 1.5 GiB (1536 MiB).
// The input is deleted at the end either way.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliWorkspace, pipelineRunArgs, TENANT, timeChild } from './children.mjs';
import { BAD_EVERY, COLUMNS, freeSpaceShortfall, rowsForBytes, writeInput } from './csv-input.mjs';
import { countLanded, duckdbAccount, polarsAccount, productAccount } from './engine-landed.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const contenderScript = here('./engine-contenders.mjs');
const FILES = 4;

const GOALS = {
  /** `pipeline run` wall time over DuckDB alone's (read_csv straight into a table). */
  vsDuckdb: 1.25,
  /** `pipeline run` wall time over the polars + DuckDB script's: the product must not lose to its own engines glued by hand. */
  vsPolarsDuckdb: 1.0,
  /** Peak RSS of `pipeline run` on --gb input, in MiB (1.5 GiB). */
  peakRssMb: 1536,
};

const VARIANTS = {
  clean: { name: 'clean', title: 'clean rows', withBadRows: false },
  bad: { name: 'bad', title: '0.1% bad rows', withBadRows: true },
};

const TABLE_SCHEMA = COLUMNS.map(([name, type]) => ({ name, type }));

/** Options or a machine the bench cannot run with: said in one line, exit code 2, no stack. */
class Refusal extends Error {}

const option = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(`--${name}=`.length);

function benchOptions() {
  const rowsText = option('rows') ?? process.env.BENCH_ROWS;
  const rows = Number(rowsText ?? 10_000_000);
  if (!Number.isSafeInteger(rows) || rows < FILES) throw new Refusal(`--rows=${rowsText}: give a whole number of rows, at least ${FILES}`);
  const roundsText = option('rounds') ?? process.env.BENCH_ENGINE_ROUNDS;
  const rounds = Number(roundsText ?? 3);
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Refusal(`--rounds=${roundsText}: give a whole number of rounds, at least 1`);
  const variant = option('variant') ?? 'both';
  if (variant !== 'both' && !VARIANTS[variant]) throw new Refusal(`--variant=${variant}: pick clean, bad or both`);
  const variants = variant === 'both' ? Object.values(VARIANTS) : [VARIANTS[variant]];
  if (variants.some((v) => v.withBadRows) && rows < BAD_EVERY) {
    throw new Refusal(
      `--rows=${rows} is too few for the bad variant (one row in ${BAD_EVERY} is bad): give at least ${BAD_EVERY}, or --variant=clean`,
    );
  }
  const gbText = option('gb');
  const gb = gbText === undefined ? undefined : Number(gbText);
  if (gb !== undefined && !(gb > 0 && gb <= 1024)) throw new Refusal(`--gb=${gbText}: give the input size in GiB, e.g. --gb=5`);
  return { rows, rounds, variants, gb };
}

const version = (pkg) => JSON.parse(readFileSync(here(`../node_modules/${pkg}/package.json`), 'utf8')).version;
const fmt = (n, digits = 1) => n.toFixed(digits);
// The lower median for an even count: a real measurement, not an average of two.
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const CONTENDERS = [
  { name: 'DuckDB alone (read_csv)', script: 'duckdb', table: 't', account: duckdbAccount },
  { name: 'polars + DuckDB script', script: 'polarsDuckdb', table: 't', account: polarsAccount },
  { name: 'convergence engine in process', script: 'engine', dataset: 'bench', table: 'events', account: productAccount },
  { name: 'convergence pipeline run (CLI)', dataset: TENANT, table: 'events', account: productAccount },
];
const [DUCKDB_ALONE, POLARS_DUCKDB, , PIPELINE_RUN] = CONTENDERS;

/** One timed run of a contender in a fresh work folder; its account of the rows it landed (checked: see engine-landed.mjs). */
async function measure(contender, work, input) {
  await mkdir(work, { recursive: true });
  const rssFile = path.join(work, 'rss');
  let measured;
  let database;
  let notes;
  let counts = {};
  if (contender.script) {
    database = path.join(work, 'warehouse.duckdb'); // the catalog is named after the file: not 'bench', the dataset
    const spec = {
      ...input,
      dir: work,
      database,
      parquet: path.join(work, 'events.parquet'),
      stagingDir: path.join(work, 'staging'),
      tableSchema: TABLE_SCHEMA,
      columns: {
        duckdb: Object.fromEntries(COLUMNS.map(([n, , d]) => [n, d])),
        polars: Object.fromEntries(COLUMNS.map(([n, , , p]) => [n, p])),
      },
    };
    await writeFile(path.join(work, 'spec.json'), JSON.stringify(spec));
    measured = await timeChild([contenderScript, contender.script, path.join(work, 'spec.json')], { cwd: work, rssFile });
    let phases;
    ({ phases, counts } = JSON.parse(measured.stdout.trim().split('\n').at(-1)));
    notes = Object.entries(phases).map(([phase, seconds]) => `${phase} ${fmt(seconds)} s`);
  } else {
    // A fresh workspace each time, so every run appends to an empty table like the other contenders.
    const ws = path.join(work, 'ws');
    await cliWorkspace(ws, { input: input.csvGlob, format: 'csv', tableSchema: TABLE_SCHEMA });
    database = path.join(ws, '.convergence', 'warehouse.duckdb');
    measured = await timeChild(pipelineRunArgs, { cwd: ws, rssFile });
    const envelope = JSON.parse(measured.stdout);
    if (envelope.status !== 0 || envelope.result?.status !== 'COMPLETE' || envelope.result.rowsProcessed !== input.good) {
      throw new Error(`pipeline run did not load ${input.good} rows: ${measured.stdout}`);
    }
    // The run's own clock; around the ingest step (stage + load) are the lock, quota, run and step records.
    notes = [
      `pipeline run ${fmt(envelope.result.durationMs / 1000)} s`,
      `of which ingest step ${fmt(envelope.result.steps[0].durationMs / 1000)} s`,
    ];
  }
  const account = contender.account(contender, await countLanded(database, contender), input, counts);
  await rm(work, { recursive: true, force: true }); // one contender's output on disk at a time
  return { seconds: measured.seconds, rssMb: measured.rssMb, notes, account };
}

/** A ratio of median wall times against its goal, as one PASS or FAIL line. */
function judge(label, ratio, goal) {
  console.log(`${ratio <= goal ? 'PASS' : 'FAIL'}  ${label} = ${fmt(ratio, 2)} (goal <= ${fmt(goal, 2)})`);
}

async function generate(dir, { rows, files, withBadRows }) {
  await mkdir(dir);
  const t = performance.now();
  const input = await writeInput(dir, { rows, files, withBadRows });
  const bad = withBadRows
    ? `, ${input.badRows.toLocaleString('en-US')} of them bad (${Object.entries(input.bad)
        .map(([kind, n]) => `${n.toLocaleString('en-US')} ${kind}`)
        .join(', ')})`
    : '';
  console.log(
    `input: ${rows.toLocaleString('en-US')} rows${bad} in ${files} files, ${fmt(input.bytes / 2 ** 30, 2)} GiB, ` +
      `generated in ${fmt((performance.now() - t) / 1000)} s; it stays in the page cache for every contender`,
  );
  return input;
}

/** One variant: the four contenders in interleaved rounds, the table of medians, what each landed, and the goals. */
async function runVariant(tmp, variant, { rows, rounds }) {
  console.log(`\n== variant: ${variant.title} ==`);
  const dataDir = path.join(tmp, `data-${variant.name}`);
  const input = await generate(dataDir, { rows, files: FILES, withBadRows: variant.withBadRows });

  // Interleaved rounds, so a noisy neighbour or drift hits every contender alike.
  const runs = CONTENDERS.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of CONTENDERS.entries()) runs[i].push(await measure(c, path.join(tmp, `run-${round}-${i}`), input));
  }
  await rm(dataDir, { recursive: true, force: true });
  const results = CONTENDERS.map((c, i) => {
    const all = runs[i].map((r) => r.seconds);
    const seconds = median(all);
    return {
      ...c,
      seconds,
      range: `${fmt(Math.min(...all))}-${fmt(Math.max(...all))}`,
      // Peak RSS is the highest seen; phases are those of the median run.
      rssMb: Math.max(...runs[i].map((r) => r.rssMb)),
      notes: runs[i].find((r) => r.seconds === seconds).notes,
      accounts: [...new Set(runs[i].map((r) => r.account))],
    };
  });

  const seconds = (c) => results[CONTENDERS.indexOf(c)].seconds;
  printTable(results, {
    rows,
    rounds,
    against: [
      ['DuckDB', seconds(DUCKDB_ALONE)],
      ['polars+DuckDB', seconds(POLARS_DUCKDB)],
    ],
  });
  console.log('\nwhere the median run spent its time (the rest of the wall time is Node start-up and module loading):');
  for (const r of results) console.log(`  ${r.name}: ${r.notes.join(', ')}`);
  console.log(`\nwhat every run landed (counted in DuckDB):`);
  for (const r of results) console.log(`  ${r.name}: ${r.accounts.join('; ')}`);
  console.log(`\ngoals (${variant.title}, median wall times):`);
  judge('pipeline run / DuckDB alone', seconds(PIPELINE_RUN) / seconds(DUCKDB_ALONE), GOALS.vsDuckdb);
  judge('pipeline run / polars + DuckDB', seconds(PIPELINE_RUN) / seconds(POLARS_DUCKDB), GOALS.vsPolarsDuckdb);
}

/** The results table; `against` names the wall times the ratio columns divide by. */
function printTable(results, { rows, rounds, against }) {
  const ratioHeads = against.map(([label]) => ` x ${label}`).join('');
  console.log(
    `\n${'contender'.padEnd(32)} ${'wall s'.padStart(8)} ${'range s'.padStart(10)} ${'rows/s'.padStart(12)} ${'peak RSS MB'.padStart(12)}${ratioHeads}`,
  );
  for (const r of results) {
    const ratios = against.map(([label, seconds]) => ` ${fmt(r.seconds / seconds, 2).padStart(label.length + 2)}`).join('');
    console.log(
      `${r.name.padEnd(32)} ${fmt(r.seconds, 2).padStart(8)} ${r.range.padStart(10)} ${Math.round(rows / r.seconds)
        .toLocaleString('en-US')
        .padStart(12)} ${fmt(r.rssMb, 0).padStart(12)}${ratios}`,
    );
  }
  const runs = rounds === 1 ? 'one run' : `median of ${rounds} runs`;
  console.log(
    `(wall s: ${runs}, child process start to exit; range: fastest-slowest run; peak RSS: highest of ${rounds}; x: wall-time ratios)`,
  );
}

/**
 * --gb: input of at least that many GiB, loaded once by `pipeline run` (and once by DuckDB alone,
 * for the ratio): the CLI's peak RSS must stay under the bound whatever the input size.
 */
async function runBoundedMemory(tmp, gb) {
  const bytes = gb * 2 ** 30;
  console.log(`\n== bounded memory: at least ${gb} GiB of CSV, one run each ==`);
  const shortfall = await freeSpaceShortfall(tmp, bytes);
  if (shortfall) throw new Refusal(shortfall);
  const rows = rowsForBytes(bytes);
  // Files of about 1 GiB at most, 4 at least: more input means more files as well as larger ones.
  const files = Math.max(FILES, Math.ceil(gb));
  const dataDir = path.join(tmp, 'data-gb');
  const input = await generate(dataDir, { rows, files, withBadRows: false });
  if (input.bytes < bytes) throw new Error(`generated ${input.bytes} bytes, fewer than the ${bytes} asked for`);
  const results = [];
  for (const [i, c] of [PIPELINE_RUN, DUCKDB_ALONE].entries()) {
    const measured = await measure(c, path.join(tmp, `run-gb-${i}`), input);
    results.push({ ...c, ...measured, range: fmt(measured.seconds), accounts: [measured.account] });
  }
  await rm(dataDir, { recursive: true, force: true });
  const [cliRun, duckdb] = results;
  printTable(results, { rows, rounds: 1, against: [['DuckDB', duckdb.seconds]] });
  for (const r of results) console.log(`  ${r.name}: ${r.notes.join(', ')}; landed ${r.accounts.join('; ')}`);
  console.log(`\ngoals (${fmt(input.bytes / 2 ** 30, 2)} GiB of CSV, one run each):`);
  judge('pipeline run / DuckDB alone', cliRun.seconds / duckdb.seconds, GOALS.vsDuckdb);
  const limit = GOALS.peakRssMb;
  console.log(
    `${cliRun.rssMb < limit ? 'PASS' : 'FAIL'}  peak RSS of pipeline run = ${fmt(cliRun.rssMb, 0)} MiB (goal < ${limit} MiB = ${fmt(limit / 1024, 1)} GiB)`,
  );
}

export async function run() {
  try {
    await runEngineBench();
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    console.error(`engine benchmark: ${err.message}`);
    process.exitCode = 2;
  }
}

async function runEngineBench() {
  const { rows, rounds, variants, gb } = benchOptions();
  const benchStarted = performance.now();
  const cpu = os.cpus();
  const what = gb
    ? `at least ${gb} GiB of CSV over ${Math.max(FILES, Math.ceil(gb))} files -> DuckDB; pipeline run and DuckDB alone, one run each`
    : `${rows.toLocaleString('en-US')} CSV rows over ${FILES} files -> DuckDB, variants ${variants.map((v) => v.name).join(' then ')}; ` +
      `${rounds} round${rounds === 1 ? '' : 's'}, contenders interleaved`;
  console.log(`\nengine: ${what}`);
  console.log(
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${fmt(os.totalmem() / 2 ** 30)} GiB RAM, load average ${fmt(os.loadavg()[0], 2)}, ` +
      `Node ${process.version}, @duckdb/node-api ${version('@duckdb/node-api')}, nodejs-polars ${version('nodejs-polars')}`,
  );

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'convergence-bench-engine-'));
  try {
    if (gb) await runBoundedMemory(tmp, gb);
    else for (const variant of variants) await runVariant(tmp, variant, { rows, rounds });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  console.log(
    `\nengine benchmark took ${fmt((performance.now() - benchStarted) / 1000)} s in all, load average now ${fmt(os.loadavg()[0], 2)}`,
  );
}
