// Start-up benchmark: median wall time of `convergence --version` and `convergence --help`
// against bare `node -e 0`, measured in the same run, interleaved so drift hits all alike.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
const node = process.execPath;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 25);

const subjects = [
  { name: 'node -e 0', args: ['-e', '0'] },
  { name: 'convergence --version', args: [bin, '--version'] },
  { name: 'convergence --help', args: [bin, '--help'] },
  { name: 'convergence tenant create --help', args: [bin, 'tenant', 'create', '--help'] },
];

function time(args) {
  const started = process.hrtime.bigint();
  const out = spawnSync(node, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  if (out.status !== 0) throw new Error(`${args.join(' ')} exited ${out.status}: ${out.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function run() {
  for (const s of subjects) time(s.args); // warm the file cache
  const samples = new Map(subjects.map((s) => [s.name, []]));
  for (let i = 0; i < ROUNDS; i++) for (const s of subjects) samples.get(s.name).push(time(s.args));
  const base = median(samples.get('node -e 0'));
  console.log(`\nstart-up (${ROUNDS} rounds, median wall time, Node ${process.version})`);
  console.log(`${'command'.padEnd(34)} ${'median ms'.padStart(10)} ${'p90 ms'.padStart(8)} ${'x bare node'.padStart(12)}`);
  for (const s of subjects) {
    const xs = samples.get(s.name);
    const sorted = [...xs].sort((a, b) => a - b);
    const p90 = sorted[Math.floor(sorted.length * 0.9)];
    const m = median(xs);
    console.log(`${s.name.padEnd(34)} ${m.toFixed(1).padStart(10)} ${p90.toFixed(1).padStart(8)} ${(m / base).toFixed(2).padStart(12)}`);
  }
  const ratio = median(samples.get('convergence --version')) / base;
  console.log(`goal: --version <= 3.00x bare node — ${ratio <= 3 ? 'met' : 'NOT met'} (${ratio.toFixed(2)}x)`);
}
