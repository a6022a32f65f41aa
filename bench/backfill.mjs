// Backfill and run-statistics benchmark, each contender a child process (wall time, peak RSS).
//
// backfill: `pipeline backfill` of --dates=N run dates (default 30) in one process, against the
//   same dates as N `pipeline run --run-date` processes one after another (how dates were rerun
//   before backfill existed), on a one-step transform pipeline: the figures are the cost of
//   running a date, not of moving data. Goal: backfill <= 0.75 x the N runs.
// stats: `pipeline runs --stats` over a history of --runs=N runs (default 100,000, 20 pipelines)
//   against `pipeline runs` listing the newest 20 and a bare DuckDB script running the same
//   aggregate on the same file. Goal: --stats <= 1.25 x the listing, i.e. the answer costs about
//   what a look at the runs does.
// --rounds=N (default 3): contenders interleaved round by round, medians reported.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { cli, TENANT, timeChild } from './children.mjs';

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const GOALS = { backfillVsRuns: 0.75, statsVsList: 1.25 };
const PIPELINES = 20;

class Refusal extends Error {}
const option = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(`--${name}=`.length);
const wholeOption = (name, fallback, min) => {
  const text = option(name);
  const value = Number(text ?? fallback);
  if (!Number.isSafeInteger(value) || value < min) throw new Refusal(`--${name}=${text}: give a whole number, at least ${min}`);
  return value;
};
const fmt = (n, digits = 1) => n.toFixed(digits);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const judge = (label, ratio, goal) =>
  console.log(`${ratio <= goal ? 'PASS' : 'FAIL'}  ${label} = ${fmt(ratio, 2)} (goal <= ${fmt(goal, 2)})`);
const day = (i) => new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString().slice(0, 10);

/** A bootstrapped workspace whose pipeline p_daily writes one row per run date (append). */
async function dailyWorkspace(root) {
  cli(['init', root], path.dirname(root));
  cli(['bootstrap'], root);
  cli(['tenant', 'create', TENANT, '--name', 'Bench', '--plan', 'scale'], root);
  const dir = path.join(root, 'configs', TENANT);
  await writeFile(path.join(dir, 'sql', 'daily.sql'), 'SELECT CAST({{ run_date }} AS DATE) AS day, 1 AS n\n');
  await writeFile(
    path.join(dir, 'pipelines', 'p_daily.yml'),
    'pipeline_id: p_daily\nsteps:\n  - { name: build, type: transform, sql: sql/daily.sql, destination: { table: daily, write_mode: append } }\n',
  );
}

/** Medians of each contender's wall time and peak RSS over `rounds`, contenders interleaved; `fresh` prepares a round. */
async function interleave(contenders, rounds, fresh) {
  const samples = contenders.map(() => ({ seconds: [], rssMb: [] }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, contender] of contenders.entries()) {
      const cwd = await fresh(round, i);
      const measured = await contender.run(cwd);
      samples[i].seconds.push(measured.seconds);
      samples[i].rssMb.push(measured.rssMb);
    }
  }
  return contenders.map((c, i) => ({ name: c.name, seconds: median(samples[i].seconds), rssMb: median(samples[i].rssMb) }));
}

function printTable(results) {
  console.log(`${'contender'.padEnd(44)} ${'median s'.padStart(9)} ${'peak RSS MiB'.padStart(13)}`);
  for (const r of results) console.log(`${r.name.padEnd(44)} ${fmt(r.seconds, 2).padStart(9)} ${fmt(r.rssMb, 0).padStart(13)}`);
}

async function backfillBench(tmp, { dates, rounds }) {
  console.log(`\n== backfill: ${dates} run dates of a one-step transform pipeline, ${rounds} round${rounds === 1 ? '' : 's'} ==`);
  const rssFile = path.join(tmp, 'rss');
  const from = day(0);
  const to = day(dates - 1);
  const contenders = [
    {
      name: `pipeline backfill (1 process, ${dates} dates)`,
      run: async (cwd) => {
        const measured = await timeChild(
          [bin, 'pipeline', 'backfill', 'p_daily', '--tenant', TENANT, '--from', from, '--to', to, '--json'],
          {
            cwd,
            rssFile,
          },
        );
        const { result } = JSON.parse(measured.stdout);
        if (result.counts.complete !== dates) throw new Error(`backfill completed ${result.counts.complete} of ${dates} dates`);
        return measured;
      },
    },
    {
      name: `pipeline run --run-date x ${dates} processes`,
      run: async (cwd) => {
        let seconds = 0;
        let rssMb = 0;
        for (let i = 0; i < dates; i++) {
          const measured = await timeChild([bin, 'pipeline', 'run', 'p_daily', '--tenant', TENANT, '--run-date', day(i), '--json'], {
            cwd,
            rssFile,
          });
          seconds += measured.seconds;
          rssMb = Math.max(rssMb, measured.rssMb);
        }
        return { seconds, rssMb };
      },
    },
  ];
  // Every contender starts from a fresh workspace: no date is already complete.
  const results = await interleave(contenders, rounds, async (round, i) => {
    const ws = path.join(tmp, `backfill-${round}-${i}`);
    await dailyWorkspace(ws);
    return ws;
  });
  printTable(results);
  const [backfill, runs] = results;
  console.log(
    `per date: backfill ${fmt((backfill.seconds / dates) * 1000, 0)} ms, separate runs ${fmt((runs.seconds / dates) * 1000, 0)} ms`,
  );
  judge('pipeline backfill / separate pipeline runs', backfill.seconds / runs.seconds, GOALS.backfillVsRuns);
}

/** `runs` finished runs of bench_co over PIPELINES pipelines, one a minute back from now; 2 % FAILED, 1 % TIMEOUT. */
async function seedHistory(database, runs) {
  const instance = await DuckDBInstance.create(database);
  const conn = await instance.connect();
  try {
    await conn.run(
      `INSERT INTO tenants.tenant_pipeline_runs BY NAME
       SELECT CAST(uuid() AS VARCHAR) AS pipeline_logging_id, '${TENANT}' AS tenant_id, 'p_' || CAST(i % ${PIPELINES} AS VARCHAR) AS pipeline_id,
         CASE WHEN i % 50 = 0 THEN 'FAILED' WHEN i % 97 = 0 THEN 'TIMEOUT' ELSE 'COMPLETE' END AS status,
         'scheduled' AS trigger_type, DATE '2024-01-01' + CAST(i % 365 AS INTEGER) AS run_date,
         now() - to_minutes(i) AS start_time, now() - to_minutes(i) + to_milliseconds(1000 + (i * 7919) % 60000) AS end_time,
         1000 + (i * 7919) % 60000 AS duration_ms, i % 5000 AS rows_processed,
         CASE WHEN i % 50 = 0 OR i % 97 = 0 THEN 'step build failed: run ' || CAST(i AS VARCHAR) END AS error_message,
         CASE WHEN i % 50 = 0 OR i % 97 = 0 THEN 3 ELSE 0 END AS exit_code, false AS cancel_requested,
         now() - to_minutes(i) AS created_at, now() - to_minutes(i) AS updated_at
       FROM range(${runs}) AS t(i)`,
    );
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The aggregate --stats answers, written by hand for DuckDB: the bare-engine contender. */
const BARE_STATS = `
import { DuckDBInstance } from '@duckdb/node-api';
const instance = await DuckDBInstance.create(process.argv.at(-1));
const conn = await instance.connect();
const reader = await conn.runAndReadAll(\`
  SELECT pipeline_id, count(*) AS runs, count_if(status = 'COMPLETE') AS succeeded,
    count_if(status IN ('FAILED', 'TIMEOUT')) AS failed,
    quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.95) AS p95, sum(rows_processed) AS rows,
    arg_max(pipeline_logging_id, created_at) FILTER (WHERE status IN ('FAILED', 'TIMEOUT')) AS last_failure
  FROM tenants.tenant_pipeline_runs WHERE tenant_id = $1 AND created_at >= now() - INTERVAL 3650 DAY
  GROUP BY pipeline_id ORDER BY pipeline_id\`, ['${TENANT}']);
console.log(reader.getRows().length);
conn.closeSync();
instance.closeSync();
`;

async function statsBench(tmp, { runs, rounds }) {
  console.log(`\n== stats: ${runs.toLocaleString('en-US')} runs of ${PIPELINES} pipelines, ${rounds} round${rounds === 1 ? '' : 's'} ==`);
  const ws = path.join(tmp, 'stats');
  await dailyWorkspace(ws);
  const database = path.join(ws, '.convergence', 'warehouse.duckdb');
  await seedHistory(database, runs);
  const rssFile = path.join(tmp, 'rss');
  const bareScript = path.join(ws, 'bare-stats.mjs');
  // Resolved from the repository, where @duckdb/node-api is installed.
  await writeFile(bareScript, BARE_STATS.replace('@duckdb/node-api', import.meta.resolve('@duckdb/node-api')));
  const expectPipelines = (stdout) => {
    const { result } = JSON.parse(stdout);
    if (result.length !== PIPELINES) throw new Error(`--stats answered ${result.length} pipelines, not ${PIPELINES}`);
  };
  const contenders = [
    { name: 'DuckDB alone (the same aggregate)', run: (cwd) => timeChild([bareScript, database], { cwd, rssFile }) },
    {
      name: 'pipeline runs (newest 20)',
      run: (cwd) => timeChild([bin, 'pipeline', 'runs', '--tenant', TENANT, '--json'], { cwd, rssFile }),
    },
    {
      name: 'pipeline runs --stats',
      run: async (cwd) => {
        const measured = await timeChild([bin, 'pipeline', 'runs', '--tenant', TENANT, '--stats', '--since', '3650d', '--json'], {
          cwd,
          rssFile,
        });
        expectPipelines(measured.stdout);
        return measured;
      },
    },
  ];
  const results = await interleave(contenders, rounds, async () => ws);
  printTable(results);
  const [, list, stats] = results;
  judge('pipeline runs --stats / pipeline runs', stats.seconds / list.seconds, GOALS.statsVsList);
}

export async function run() {
  try {
    const dates = wholeOption('dates', 30, 1);
    const runs = wholeOption('runs', 100_000, PIPELINES);
    const rounds = wholeOption('rounds', 3, 1);
    const started = performance.now();
    const cpu = os.cpus();
    console.log(`\nbackfill and run statistics`);
    console.log(`machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), load average ${fmt(os.loadavg()[0], 2)}, Node ${process.version}`);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'convergence-bench-backfill-'));
    try {
      await backfillBench(tmp, { dates, rounds });
      await statsBench(tmp, { runs, rounds });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    console.log(
      `\nbackfill benchmark took ${fmt((performance.now() - started) / 1000)} s in all, load average now ${fmt(os.loadavg()[0], 2)}`,
    );
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    console.error(`backfill benchmark: ${err.message}`);
    process.exitCode = 2;
  }
}
