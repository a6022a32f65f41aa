// What the benchmarks share to run contenders as child processes: a timed child with its peak
// RSS (bench/rss-probe.mjs), and a bootstrapped CLI workspace whose one pipeline ingests a file.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const node = process.execPath;
const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const probe = new URL('./rss-probe.mjs', import.meta.url).href;

/** The tenant of every benchmark workspace. */
export const TENANT = 'bench_co';

/** Runs `node --import rss-probe <args>`; returns wall seconds, peak RSS (MB) and stdout. */
export async function timeChild(args, { cwd, rssFile }) {
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

/** `convergence <args>` in `cwd`, waited for; a non-zero exit throws with its output. */
export function cli(args, cwd) {
  const out = spawnSync(node, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: '1', NO_COLOR: '1' } });
  if (out.status !== 0) throw new Error(`convergence ${args.join(' ')} exited ${out.status}: ${out.stdout}${out.stderr}`);
}

/** `convergence pipeline run p_bench` in `root`, timed, with its JSON envelope's result. */
export const pipelineRunArgs = [bin, 'pipeline', 'run', 'p_bench', '--tenant', TENANT, '--json'];

/**
 * A bootstrapped workspace whose pipeline p_bench ingests `input` (a path or glob of csv, ndjson or
 * parquet) into bench_co.events with `tableSchema`, nothing else. The input lives outside the
 * workspace (shared by every contender): the operator lists its folder as a file root.
 */
export async function cliWorkspace(root, { input, format, tableSchema }) {
  cli(['init', root], path.dirname(root));
  const config = path.join(root, 'convergence.yaml');
  await writeFile(
    config,
    (await readFile(config, 'utf8')).replace(
      '    backend: local\n',
      `    backend: local\n    file_roots: [${JSON.stringify(path.dirname(input))}]\n`,
    ),
  );
  cli(['bootstrap'], root);
  cli(['tenant', 'create', TENANT, '--name', 'Bench', '--plan', 'scale'], root);
  const dir = path.join(root, 'configs', TENANT);
  await writeFile(path.join(dir, 'schemas', 'events.json'), JSON.stringify(tableSchema, null, 2));
  // JSON strings are valid YAML scalars: the absolute path needs no further quoting rules.
  const source = `source_id: events\ntype: file\npath: ${JSON.stringify(input)}\nformat: ${format}\nschema: schemas/events.json\n`;
  await writeFile(path.join(dir, 'sources', 'events.yml'), source);
  const pipeline = [
    'pipeline_id: p_bench',
    'steps:',
    '  - { name: ingest, type: ingest, source_config: sources/events.yml, destination: { table: events, write_mode: append } }',
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'pipelines', 'p_bench.yml'), pipeline);
}
