// Tenant site benchmark: `docs generate` for a tenant of --pipelines=N pipelines (default 100)
// and --runs=N recorded runs (default 10,000) with three rule results each, each contender a
// child process (wall time, peak RSS).
//
// Every pipeline ingests one of ten file sources, checks its table and builds two tables from it
// (one also reading the previous pipeline's table), so the lineage has ~4 nodes per pipeline.
// Contenders: a bare DuckDB script reading the same runs and rule results the site charts (the
// floor for the data), `pipeline runs --stats` (a look at the same history through the CLI) and
// `docs generate`. Goal: the site in at most 10 s ("seconds, not minutes"); the ratio to
// --stats is printed for scale.
// --rounds=N (default 3): contenders interleaved round by round, medians reported.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { cli, TENANT, timeChild } from './children.mjs';

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const GOAL_SECONDS = 10;
const SOURCES = 10;
const RULES = ['not_null_id', 'unique_id', 'row_count'];

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

/** Pipeline i: ingest source s_(i % 10) into t_i, check it, build f_i (reading t_i and f_(i-1)) and v_i. */
function pipelineYaml(i) {
  return `pipeline_id: p_${i}
description: Pipeline ${i} of the site benchmark
schedule: { cron: '${i % 60} 6 * * *', timezone: UTC }
steps:
  - { name: ingest, type: ingest, source_config: sources/s_${i % SOURCES}.yml, destination: { table: t_${i}, write_mode: append } }
  - name: check
    type: dq
    table: t_${i}
    rules:
      - { name: not_null_id, check: not_null, columns: [id] }
      - { name: unique_id, check: unique, columns: [id] }
      - { name: row_count, check: row_count, min: 1 }
  - { name: build, type: transform, sql: sql/f_${i}.sql, destination: { table: f_${i}, write_mode: replace } }
  - { name: view, type: transform, sql: sql/v_${i}.sql, destination: { table: v_${i}, write_mode: view } }
`;
}

async function siteWorkspace(root, pipelines) {
  cli(['init', root], path.dirname(root));
  cli(['bootstrap'], root);
  cli(['tenant', 'create', TENANT, '--name', 'Bench', '--plan', 'scale'], root);
  const dir = path.join(root, 'configs', TENANT);
  for (let s = 0; s < SOURCES; s++) {
    await writeFile(
      path.join(dir, 'sources', `s_${s}.yml`),
      `source_id: s_${s}\ntype: file\npath: data/${TENANT}/s_${s}/*.csv\nformat: csv\n`,
    );
  }
  for (let i = 0; i < pipelines; i++) {
    const previous = i > 0 ? ` JOIN {{ ref('f_${i - 1}') }} AS p ON p.id = t.id` : '';
    await writeFile(
      path.join(dir, 'sql', `f_${i}.sql`),
      `SELECT t.id, COUNT(*) AS n FROM {{ ref('t_${i}') }} AS t${previous} GROUP BY t.id\n`,
    );
    await writeFile(path.join(dir, 'sql', `v_${i}.sql`), `SELECT id, n FROM {{ ref('f_${i}') }} WHERE n > 1\n`);
    await writeFile(path.join(dir, 'pipelines', `p_${i}.yml`), pipelineYaml(i));
  }
}

/** `runs` runs spread over the pipelines, one a minute back from now (2 % FAILED), each with three rule results. */
async function seedHistory(database, { runs, pipelines }) {
  const instance = await DuckDBInstance.create(database);
  const conn = await instance.connect();
  try {
    await conn.run(
      `CREATE TEMP TABLE bench_runs AS
       SELECT CAST(uuid() AS VARCHAR) AS id, 'p_' || CAST(i % ${pipelines} AS VARCHAR) AS pipeline_id, i,
         now() - to_minutes(i) AS made_at, CASE WHEN i % 50 = 0 THEN 'FAILED' ELSE 'COMPLETE' END AS status
       FROM range(${runs}) AS t(i)`,
    );
    await conn.run(
      `INSERT INTO tenants.tenant_pipeline_runs BY NAME
       SELECT id AS pipeline_logging_id, '${TENANT}' AS tenant_id, pipeline_id, status, 'scheduled' AS trigger_type,
         CAST(made_at AS DATE) AS run_date, made_at AS start_time, made_at + to_milliseconds(1000 + (i * 7919) % 60000) AS end_time,
         1000 + (i * 7919) % 60000 AS duration_ms, i % 5000 AS rows_processed,
         CASE WHEN status = 'FAILED' THEN 'step check failed' END AS error_message,
         CASE WHEN status = 'FAILED' THEN 4 ELSE 0 END AS exit_code, false AS cancel_requested, made_at AS created_at, made_at AS updated_at
       FROM bench_runs`,
    );
    await conn.run(
      `INSERT INTO tenants.tenant_dq_results BY NAME
       SELECT CAST(uuid() AS VARCHAR) AS dq_result_id, r.id AS pipeline_logging_id, '${TENANT}' AS tenant_id, r.pipeline_id,
         'check' AS step_name, 't_' || substr(r.pipeline_id, 3) AS table_name, rule AS rule_name, rule AS check_type, 'id' AS column_name,
         'error' AS severity, NOT (r.status = 'FAILED' AND rule = 'unique_id') AS passed,
         CASE WHEN r.status = 'FAILED' AND rule = 'unique_id' THEN 3 ELSE 0 END AS failing_count, 100 AS total_count, r.made_at AS checked_at
       FROM bench_runs AS r, (SELECT unnest(${JSON.stringify(RULES).replaceAll('"', "'")}) AS rule)`,
    );
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The runs and daily rule results the site charts, read by hand: the bare-engine floor. */
const BARE_READ = `
import { DuckDBInstance } from '@duckdb/node-api';
const instance = await DuckDBInstance.create(process.argv.at(-1));
const conn = await instance.connect();
const runs = await conn.runAndReadAll(\`SELECT pipeline_id, pipeline_logging_id, created_at, status, duration_ms, rows_processed
  FROM tenants.tenant_pipeline_runs WHERE tenant_id = $1 ORDER BY pipeline_id, created_at\`, ['${TENANT}']);
const dq = await conn.runAndReadAll(\`SELECT pipeline_id, rule_name, CAST(checked_at AS DATE) AS day, count(*), count_if(passed)
  FROM tenants.tenant_dq_results WHERE tenant_id = $1 GROUP BY ALL\`, ['${TENANT}']);
console.log(runs.getRows().length + dq.getRows().length);
conn.closeSync();
instance.closeSync();
`;

async function interleave(contenders, rounds, cwd) {
  const samples = contenders.map(() => ({ seconds: [], rssMb: [] }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, contender] of contenders.entries()) {
      const measured = await contender.run(cwd);
      samples[i].seconds.push(measured.seconds);
      samples[i].rssMb.push(measured.rssMb);
    }
  }
  return contenders.map((c, i) => ({ name: c.name, seconds: median(samples[i].seconds), rssMb: median(samples[i].rssMb) }));
}

export async function run() {
  try {
    const pipelines = wholeOption('pipelines', 100, 1);
    const runs = wholeOption('runs', 10_000, 1);
    const rounds = wholeOption('rounds', 3, 1);
    const cpu = os.cpus();
    console.log(
      `\n== tenant site: ${pipelines} pipelines, ${runs.toLocaleString('en-US')} runs, ${rounds} round${rounds === 1 ? '' : 's'} ==`,
    );
    console.log(`machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), load average ${fmt(os.loadavg()[0], 2)}, Node ${process.version}`);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'convergence-bench-docs-'));
    try {
      const ws = path.join(tmp, 'ws');
      await siteWorkspace(ws, pipelines);
      const database = path.join(ws, '.convergence', 'warehouse.duckdb');
      await seedHistory(database, { runs, pipelines });
      const rssFile = path.join(tmp, 'rss');
      const bareScript = path.join(ws, 'bare-read.mjs');
      await writeFile(bareScript, BARE_READ.replace('@duckdb/node-api', import.meta.resolve('@duckdb/node-api')));
      let site;
      const results = await interleave(
        [
          { name: 'DuckDB alone (the charted runs and rule days)', run: (cwd) => timeChild([bareScript, database], { cwd, rssFile }) },
          {
            name: 'pipeline runs --stats',
            run: (cwd) =>
              timeChild([bin, 'pipeline', 'runs', '--tenant', TENANT, '--stats', '--since', '3650d', '--json'], { cwd, rssFile }),
          },
          {
            name: 'docs generate',
            run: async (cwd) => {
              const measured = await timeChild([bin, 'docs', 'generate', '--tenant', TENANT, '--json'], { cwd, rssFile });
              site = JSON.parse(measured.stdout).result;
              if (site.pipelines !== pipelines) throw new Error(`the site shows ${site.pipelines} pipelines, not ${pipelines}`);
              return measured;
            },
          },
        ],
        rounds,
        ws,
      );
      console.log(`${'contender'.padEnd(48)} ${'median s'.padStart(9)} ${'peak RSS MiB'.padStart(13)}`);
      for (const r of results) console.log(`${r.name.padEnd(48)} ${fmt(r.seconds, 2).padStart(9)} ${fmt(r.rssMb, 0).padStart(13)}`);
      console.log(
        `site: ${site.files} files, ${site.tables} tables and views, lineage ${site.lineageNodes} nodes / ${site.lineageEdges} edges, ${site.runsCharted} runs charted`,
      );
      const [bare, stats, docs] = results;
      console.log(
        `docs generate / pipeline runs --stats = ${fmt(docs.seconds / stats.seconds, 2)}; / DuckDB alone = ${fmt(docs.seconds / bare.seconds, 2)}`,
      );
      console.log(
        `${docs.seconds <= GOAL_SECONDS ? 'PASS' : 'FAIL'}  docs generate = ${fmt(docs.seconds, 2)} s (goal <= ${GOAL_SECONDS} s)`,
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    console.error(`docs benchmark: ${err.message}`);
    process.exitCode = 2;
  }
}
