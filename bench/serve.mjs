// Serve benchmark: `convergence serve` under autocannon load, beside a bare node:http server that
// answers the same JSON as /health, measured in the same run with the same settings.
//   GET /health and GET /api/v1/pipelines/runs/{id} (X-API-Key), each at a fixed 1,000 requests/s
//   (latency percentiles, achieved rate, non-2xx), paced two ways (autocannon's per-second bursts,
//   and spread out over many staggered instances), and at full speed (requests/s, p99); then the
//   seed SLOs and the run-status goal judged from those figures; then, in process, the time an
//   API-key rejection takes when the presented key shares 0, half or all but one character with
//   the stored one (the comparison must not leak where the keys differ).
//   Junk-key flood: the tenant's run-status p99 at a steady rate, alone and while a flood of
//   well-formed junk keys (half with the tenant's prefix, half with unknown ones) arrives from many
//   local addresses at >= 200 requests/s; goal: within 2x of the p99 without the flood.
// Options: --duration=N seconds per measured run (default 10), --warmup=N seconds per target (default 2).
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { clearInterval, setInterval } from 'node:timers';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { execa } from 'execa';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const node = process.execPath;
const bin = here('../bin/run.js');
const apiKeysModule = new URL('../dist/domain/api-keys.js', import.meta.url).href;
const TENANT = 'acme_corp';
const PIPELINE = 'p_usage_daily';
const RATE = 1_000;
const RATE_CONNECTIONS = 20;
const SPREAD_INSTANCES = 50;
const MAX_CONNECTIONS = 50;
// autocannon paces a rate per connection and second: each connection sends its share of a second
// back to back, then waits for the next second. One instance with 20 connections therefore sends
// 1,000 requests as one burst at the start of each second; 50 one-connection instances at 20
// requests/s each, started 20 ms apart, come close to evenly spaced requests.
const PACINGS = [
  {
    key: 'burst',
    name: 'burst',
    about: `one autocannon instance, ${RATE_CONNECTIONS} connections, overallRate ${RATE}: each second's requests go out back to back`,
    load: { connections: RATE_CONNECTIONS, overallRate: RATE },
  },
  {
    key: 'spread',
    name: 'spread',
    about: `${SPREAD_INSTANCES} autocannon instances of 1 connection at ${RATE / SPREAD_INSTANCES} requests/s, started ${1000 / SPREAD_INSTANCES} ms apart`,
    load: { connections: 1, overallRate: RATE / SPREAD_INSTANCES, instances: SPREAD_INSTANCES },
  },
];
const SEED_SLOS = [
  { name: 'P50 < 100 ms', key: 'p50', limitMs: 100 },
  { name: 'P95 < 500 ms', key: 'p95', limitMs: 500 },
  { name: 'P99 < 1000 ms', key: 'p99', limitMs: 1_000 },
];
const GOAL_P99_MS = 20;
// The junk-key flood case: the tenant's steady load, the flood's rate and where it comes from.
const FLOOD = {
  tenantRate: 200,
  tenantInstances: 10,
  junkRate: 250,
  /** Source addresses 127.0.0.2 … 127.0.0.65: a flood from many clients, not one the per-address limit stops alone. */
  addresses: Array.from({ length: 64 }, (_, i) => `127.0.0.${i + 2}`),
  goalRatio: 2,
};
const childEnv = { ...process.env, CI: '1', NO_COLOR: '1' };

function seconds(name, fallback) {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const value = Number(raw ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number of seconds, got ${raw}`);
  return value;
}

const version = (pkg) => JSON.parse(readFileSync(here(`../node_modules/${pkg}/package.json`), 'utf8')).version;
const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
const int = (n) => Math.round(n).toLocaleString('en-US');
/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted, p) => (sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);
const median = (xs) => percentile(Float64Array.from(xs).sort(), 50);

async function cli(args, cwd) {
  const out = await execa(node, [bin, ...args], { cwd, env: childEnv, reject: false });
  if (out.exitCode !== 0) throw new Error(`convergence ${args.join(' ')} exited ${out.exitCode}: ${out.stdout}${out.stderr}`);
  return out.stdout;
}

/** A workspace from `init --example` with tenant acme_corp, one API key and one finished run. */
async function workspace(root) {
  await cli(['init', root, '--example'], path.dirname(root));
  await cli(['bootstrap'], root);
  await cli(['tenant', 'create', TENANT, '--name', 'ACME', '--plan', 'scale'], root);
  const apiKey = JSON.parse(await cli(['keys', 'create', '--tenant', TENANT, '--json'], root)).result.apiKey;
  const run = JSON.parse(await cli(['pipeline', 'run', PIPELINE, '--tenant', TENANT, '--json'], root)).result;
  if (!apiKey || !run?.runId) throw new Error('the workspace gave no API key or run id');
  return { apiKey, runId: run.runId, runStatus: run.status };
}

/** Starts a child and resolves with the first match of `pattern` in its output stream `from`. */
function startChild(command, args, { cwd, from, pattern, what }) {
  const child = execa(command, args, { cwd, env: childEnv, reject: false, buffer: false, stdin: 'ignore' });
  const lines = { stdout: [], stderr: [] };
  let text = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 60 s:\n${text}`)), 60_000);
    for (const stream of ['stdout', 'stderr']) {
      let partial = '';
      child[stream].on('data', (chunk) => {
        const s = chunk.toString();
        if (stream === from && text.length < 100_000) {
          text += s;
          const match = pattern.exec(text);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        }
        partial += s;
        const parts = partial.split('\n');
        partial = parts.pop();
        // Keep what the child logs (bounded): warnings from the server under load are worth showing.
        for (const line of parts) if (line.trim() && lines[stream].length < 1_000) lines[stream].push(line);
      });
    }
    child.then((result) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${result.exitCode ?? result.signal}) before it was ready:\n${text}`));
    });
  });
  return { child, lines, ready };
}

/** Stops a child with `signal`, then SIGKILL after `graceMs`; resolves with how it ended. */
async function stopChild(child, signal, graceMs = 15_000) {
  if (child.exitCode !== null && child.exitCode !== undefined) return { exitCode: child.exitCode };
  child.kill(signal);
  const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const result = await child;
  clearTimeout(killer);
  return { exitCode: result.exitCode, signal: result.signal };
}

// The bare contender: node:http answering the JSON shape of /health, nothing else.
const BARE_SERVER = `
const http = require('node:http');
const version = process.argv[1];
const server = http.createServer((req, res) => {
  const body = JSON.stringify({ status: 'healthy', service: 'convergence-data-pipeline', version, environment: 'local', timestamp: new Date().toISOString() });
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + server.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * One measured load: `instances` autocannon instances (`connections` each), started evenly over the
 * first second. Every response time is kept (autocannon's own histogram has 1 ms steps and no p95),
 * so the percentiles below are exact, in ms, over all responses, 2xx or not.
 */
async function load(target, { duration, connections, overallRate, instances = 1 }) {
  const times = [];
  const arrivals = [];
  const started = performance.now();
  const one = async (delayMs) => {
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    let responses = 0;
    const instance = autocannon({
      url: target.url,
      headers: target.headers ?? {},
      connections,
      duration,
      ...(overallRate ? { overallRate } : {}),
    });
    instance.on('response', (_client, _statusCode, _bytes, responseTime) => {
      responses++;
      times.push(responseTime);
      arrivals.push(performance.now() - started);
    });
    const result = await instance;
    return { ...result, responses };
  };
  const results = await Promise.all(Array.from({ length: instances }, (_, i) => one((i * 1000) / instances)));
  const sorted = Float64Array.from(times).sort();
  const codes = {};
  for (const r of results) for (const [code, c] of Object.entries(r.statusCodeStats)) codes[code] = (codes[code] ?? 0) + c.count;
  // How evenly the load came: the busiest 10 ms windows (99th percentile of all windows), as requests/s.
  const windows = new Map();
  for (const t of arrivals) windows.set(Math.floor(t / 10), (windows.get(Math.floor(t / 10)) ?? 0) + 1);
  return {
    times,
    responses: times.length,
    // At a fixed rate, the responses that came in the asked duration: autocannon may start one more
    // second's share just before it stops, which would overstate the rate if counted.
    rate: overallRate
      ? arrivals.filter((t) => t < duration * 1000).length / duration
      : results.reduce((sum, r) => sum + r.responses / r.duration, 0),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
    errors: results.reduce((sum, r) => sum + r.errors + r.timeouts, 0),
    statusCodes: Object.entries(codes)
      .map(([code, count]) => `${code}x${count}`)
      .join(' '),
    peakRate: percentile(Float64Array.from(windows.values()).sort(), 99) * 100,
  };
}

/** Whether this machine lets a client bind 127.0.0.2 (Linux does; others may not). */
async function canBind(address, url) {
  return new Promise((resolve) => {
    const req = http.get(url, { localAddress: address }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
  });
}

/**
 * A flood of well-formed junk keys at `rate` requests/s, spread over `addresses`: even requests
 * carry the real tenant's prefix (each must be verified unless refused from memory), odd ones a
 * random tenant that does not exist. Paced on the wall clock; every answer's status is counted.
 */
function startFlood({ url, rate, addresses, tenant, randomKeyBody }) {
  const agents = addresses.map((localAddress) => new http.Agent({ keepAlive: true, localAddress, maxSockets: 8 }));
  const statuses = {};
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let inFlight = 0;
  const started = performance.now();
  const fire = () => {
    const i = sent++;
    const prefix = i % 2 === 0 ? tenant : `junk_${randomKeyBody().slice(0, 10).toLowerCase()}`;
    inFlight++;
    const req = http.get(url, { agent: agents[i % agents.length], headers: { 'x-api-key': `${prefix}_api_${randomKeyBody()}` } }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        answered++;
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      });
    });
    req.on('error', () => {
      inFlight--;
      errors++;
    });
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate) - sent;
    for (let k = 0; k < due; k++) fire();
  }, 5);
  return {
    async stop() {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      const deadline = Date.now() + 10_000;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const agent of agents) agent.destroy();
      return { sent, answered, errors, seconds, rate: answered / seconds, statuses };
    },
  };
}

/**
 * The junk-key case: the tenant's run-status reads at a steady, spread-out rate, measured alone and
 * while the flood runs, twice each, interleaved; percentiles over all responses of each condition.
 */
async function junkFlood({ url, apiKey, duration, randomKeyBody }) {
  const bindable = await canBind(FLOOD.addresses[0], url.replace(/\/api\/.*/, '/health'));
  const addresses = bindable ? FLOOD.addresses : ['127.0.0.1'];
  const tenantLoad = {
    duration,
    connections: 1,
    overallRate: FLOOD.tenantRate / FLOOD.tenantInstances,
    instances: FLOOD.tenantInstances,
  };
  const target = { url, headers: { 'x-api-key': apiKey } };
  const quiet = [];
  const flooded = [];
  const floods = [];
  for (let round = 0; round < 2; round++) {
    quiet.push(await load(target, tenantLoad));
    const flood = startFlood({ url, rate: FLOOD.junkRate, addresses, tenant: TENANT, randomKeyBody });
    flooded.push(await load(target, tenantLoad));
    floods.push(await flood.stop());
  }
  const pooled = (runs) => {
    const times = Float64Array.from(runs.flatMap((r) => r.times)).sort();
    return {
      p50: percentile(times, 50),
      p99: percentile(times, 99),
      max: times.length ? times[times.length - 1] : NaN,
      rate: runs.reduce((sum, r) => sum + r.rate, 0) / runs.length,
      failed: runs.reduce((sum, r) => sum + r.non2xx + r.errors, 0),
    };
  };
  const without = pooled(quiet);
  const withFlood = pooled(flooded);
  const junk = {
    rate: floods.reduce((sum, f) => sum + f.rate, 0) / floods.length,
    sent: floods.reduce((sum, f) => sum + f.sent, 0),
    errors: floods.reduce((sum, f) => sum + f.errors, 0),
    statuses: Object.entries(
      floods.reduce((all, f) => {
        for (const [code, n] of Object.entries(f.statuses)) all[code] = (all[code] ?? 0) + n;
        return all;
      }, {}),
    )
      .map(([code, n]) => `${code}x${n}`)
      .join(' '),
  };

  console.log(
    `\njunk-key flood: ${TENANT}'s GET /runs/{id} at ${FLOOD.tenantRate} req/s (${FLOOD.tenantInstances} spread instances), ` +
      `${duration} s alone and ${duration} s under the flood, twice each, interleaved`,
  );
  console.log(
    `  flood: ${int(FLOOD.junkRate)} req/s asked of well-formed junk keys (half "${TENANT}_api_…", half unknown tenants) from ` +
      `${addresses.length === 1 ? '127.0.0.1 only (this machine cannot bind 127.0.0.2)' : `${addresses.length} addresses ${addresses[0]}–${addresses.at(-1)}`}`,
  );
  console.log(`  flood achieved ${fmt(junk.rate, 0)} answered req/s (${junk.sent} sent, ${junk.errors} errors); answers: ${junk.statuses}`);
  console.log(
    `${'  run-status reads'.padEnd(30)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(8)} ${'req/s'.padStart(7)} ${'failed'.padStart(7)}`,
  );
  for (const [name, f] of [
    ['without the flood', without],
    ['during the flood', withFlood],
  ]) {
    console.log(
      `  ${name.padEnd(28)} ${fmt(f.p50).padStart(7)} ${fmt(f.p99).padStart(7)} ${fmt(f.max).padStart(8)} ${int(f.rate).padStart(7)} ${String(f.failed).padStart(7)}`,
    );
  }
  const ratio = withFlood.p99 / without.p99;
  const pass = ratio <= FLOOD.goalRatio && junk.rate >= 200 && withFlood.failed === 0 && without.failed === 0;
  console.log(
    `  goal: p99 during a flood of >= 200 junk req/s within ${FLOOD.goalRatio}x of the p99 without it: ` +
      `${fmt(withFlood.p99)} ms vs ${fmt(without.p99)} ms = ${fmt(ratio)}x, flood ${fmt(junk.rate, 0)} req/s, ${withFlood.failed} failed reads  ${pass ? 'PASS' : 'FAIL'}`,
  );
}

async function getJson(url, headers = {}) {
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.json() };
}

/** Median ns per call of `fn(item)` over interleaved batches, for each class of items. */
function timeClasses(classes, fn, { rounds, batch }) {
  const samples = classes.map(() => []);
  let sink = 0;
  for (let round = -10; round < rounds; round++) {
    // Rotate the order each round so no class always runs first (or right after a GC).
    for (let k = 0; k < classes.length; k++) {
      const c = (round + 10 + k) % classes.length;
      const items = classes[c].items;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < batch; i++) if (fn(items[i % items.length])) sink++;
      const ns = Number(process.hrtime.bigint() - t0) / batch;
      if (round >= 0) samples[c].push(ns);
    }
  }
  if (sink !== 0) throw new Error('a presented key that differs from the stored one was accepted');
  return classes.map((c, i) => ({ name: c.name, ns: median(samples[i]) }));
}

async function constantTime({ hashKey, digestsEqual, newTenantKey }) {
  const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_';
  const stored = newTenantKey(TENANT);
  const storedDigest = hashKey(stored);
  if (!digestsEqual(storedDigest, hashKey(stored))) throw new Error('a key does not match itself');
  // `count` strings that equal `base` in their first `shared` characters and differ at every later one.
  const variants = (base, shared, alphabet, count) =>
    Array.from({ length: count }, (_, v) => {
      let out = base.slice(0, shared);
      for (let i = shared; i < base.length; i++) {
        let j = (alphabet.indexOf(base[i]) + 1 + ((v * 7 + i) % (alphabet.length - 1))) % alphabet.length;
        if (alphabet[j] === base[i]) j = (j + 1) % alphabet.length;
        out += alphabet[j];
      }
      return out;
    });
  const POOL = 64;
  const keyClasses = [
    { name: 'shares 0 characters', shared: 0 },
    { name: `shares ${Math.floor(stored.length / 2)} of ${stored.length} (half)`, shared: Math.floor(stored.length / 2) },
    { name: `shares ${stored.length - 1} of ${stored.length} (all but one)`, shared: stored.length - 1 },
  ].map((c) => ({ name: c.name, items: variants(stored, c.shared, ALPHABET, POOL) }));
  const keyTimes = timeClasses(keyClasses, (presented) => digestsEqual(hashKey(stored), hashKey(presented)), { rounds: 300, batch: 400 });
  // The same question one level down: digests (hex) that share 0, 16 or 31 of their 32 bytes.
  const HEX = '0123456789abcdef';
  const digestClasses = [0, 16, 31].map((bytes) => ({
    name: `digest shares ${bytes} of 32 bytes`,
    items: variants(storedDigest, bytes * 2, HEX, POOL),
  }));
  const digestTimes = timeClasses(digestClasses, (presented) => digestsEqual(storedDigest, presented), { rounds: 300, batch: 2_000 });

  console.log(
    `\nAPI-key rejection, in process (dist/domain/api-keys.js): median ns per check over 300 interleaved batches, ${POOL} different keys per class`,
  );
  for (const [title, times] of [
    [
      'digestsEqual(hashKey(stored), hashKey(presented)), as the admin-key check; tenant keys meet digestsEqual after a lookup by digest',
      keyTimes,
    ],
    ['digestsEqual on the digests alone (hex to bytes, timingSafeEqual)', digestTimes],
  ]) {
    console.log(`  ${title}:`);
    for (const t of times) console.log(`    ${t.name.padEnd(36)} ${fmt(t.ns, 0).padStart(8)} ns`);
    const ns = times.map((t) => t.ns);
    console.log(`    max/min ratio of the medians: ${fmt(Math.max(...ns) / Math.min(...ns), 3)}`);
  }
}

export async function run() {
  if (!existsSync(new URL(apiKeysModule))) throw new Error('dist/ is missing: run `npm run build` before the serve benchmark');
  // Loaded now, while dist/ is known to be there, for the in-process part at the end.
  const apiKeys = await import(apiKeysModule);
  const duration = seconds('duration', 10);
  const warmup = seconds('warmup', 2);
  const benchStarted = performance.now();
  const cpu = os.cpus();
  const pkgVersion = JSON.parse(readFileSync(here('../package.json'), 'utf8')).version;
  console.log(
    `\nserve: autocannon ${version('autocannon')} against convergence serve (fastify ${version('fastify')}) and a bare node:http server; ` +
      `${duration} s per measured run after ${warmup} s of warm-up per target`,
  );
  console.log(
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim()}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, load average ${fmt(os.loadavg()[0])}, ` +
      `Node ${process.version}; load generator and servers share these cores`,
  );

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'convergence-bench-serve-'));
  let server;
  let bare;
  try {
    const ws = path.join(tmp, 'ws');
    const t = performance.now();
    const { apiKey, runId, runStatus } = await workspace(ws);
    console.log(
      `workspace: init --example, bootstrap, tenant ${TENANT} (scale), one key, one ${PIPELINE} run (${runStatus}) in ${fmt((performance.now() - t) / 1000, 1)} s`,
    );

    const serveArgs = ['serve', '--port', '0', '--log-level', 'warn', '--tenant-rate-limit', '10000000', '--rate-limit', '0'];
    server = startChild(node, [bin, ...serveArgs], {
      cwd: ws,
      from: 'stderr',
      pattern: /listening on (http:\/\/\S+)/,
      what: 'convergence serve',
    });
    bare = startChild(node, ['-e', BARE_SERVER, pkgVersion], {
      cwd: tmp,
      from: 'stdout',
      pattern: /listening on (http:\/\/\S+)/,
      what: 'the bare node:http server',
    });
    const [serverUrl, bareUrl] = await Promise.all([server.ready, bare.ready]);
    console.log(`convergence ${serveArgs.join(' ')} (other flags at their defaults) -> ${serverUrl}; bare node:http -> ${bareUrl}`);

    const targets = [
      { name: 'bare node:http, health JSON', url: `${bareUrl}/health` },
      { name: 'convergence GET /health', url: `${serverUrl}/health` },
      {
        name: 'convergence GET /runs/{id} + key',
        url: `${serverUrl}/api/v1/pipelines/runs/${runId}`,
        headers: { 'x-api-key': apiKey },
      },
    ];
    // Each target must answer 200 with what it should before it is timed.
    const [bareHealth, health, status] = await Promise.all(targets.map((tg) => getJson(tg.url, tg.headers)));
    const shape = (body) => Object.keys(body).sort().join(',');
    if (bareHealth.status !== 200 || health.status !== 200 || shape(bareHealth.body) !== shape(health.body)) {
      throw new Error(`health answers differ: ${JSON.stringify(health)} vs ${JSON.stringify(bareHealth)}`);
    }
    if (status.status !== 200 || !JSON.stringify(status.body).includes(runId)) {
      throw new Error(`run status read failed: ${status.status} ${JSON.stringify(status.body).slice(0, 300)}`);
    }

    for (const target of targets) await load(target, { duration: warmup, connections: MAX_CONNECTIONS });
    // Interleaved: every target at the fixed rate (both pacings), then every target at full speed.
    for (const pacing of PACINGS) for (const target of targets) target[pacing.key] = await load(target, { duration, ...pacing.load });
    for (const target of targets) target.max = await load(target, { duration, connections: MAX_CONNECTIONS });

    console.log(`\nfixed rate: ${int(RATE)} requests/s asked; latency in ms over every response (exact, not autocannon's 1 ms histogram)`);
    for (const pacing of PACINGS) console.log(`  ${pacing.name}: ${pacing.about}`);
    console.log(
      `${'target'.padEnd(34)} ${'pacing'.padEnd(7)} ${'p50'.padStart(7)} ${'p95'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(8)} ` +
        `${'req/s'.padStart(7)} ${'peak/s'.padStart(7)} ${'non-2xx'.padStart(8)} ${'errors'.padStart(7)}`,
    );
    for (const pacing of PACINGS) {
      for (const tg of targets) {
        const f = tg[pacing.key];
        console.log(
          `${tg.name.padEnd(34)} ${pacing.name.padEnd(7)} ${fmt(f.p50).padStart(7)} ${fmt(f.p95).padStart(7)} ${fmt(f.p99).padStart(7)} ${fmt(f.max).padStart(8)} ` +
            `${int(f.rate).padStart(7)} ${int(f.peakRate).padStart(7)} ${String(f.non2xx).padStart(8)} ${String(f.errors).padStart(7)}`,
        );
      }
    }
    console.log(
      '(req/s: responses received within the asked duration, per second; peak/s: the busiest 10 ms windows, 99th percentile, as requests/s)',
    );

    console.log(`\nfull speed: ${MAX_CONNECTIONS} connections, one autocannon instance, no rate on the load`);
    console.log(
      `${'target'.padEnd(34)} ${'req/s'.padStart(8)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(8)} ${'non-2xx'.padStart(8)} ${'errors'.padStart(7)}`,
    );
    for (const tg of targets) {
      const m = tg.max;
      console.log(
        `${tg.name.padEnd(34)} ${int(m.rate).padStart(8)} ${fmt(m.p50).padStart(7)} ${fmt(m.p99).padStart(7)} ${fmt(m.max).padStart(8)} ` +
          `${String(m.non2xx).padStart(8)} ${String(m.errors).padStart(7)}`,
      );
    }
    for (const tg of targets) {
      const runs = [...PACINGS.map((p) => [p.name, tg[p.key]]), ['full speed', tg.max]];
      if (runs.some(([, r]) => r.non2xx || r.errors)) {
        console.log(`  status codes of ${tg.name}: ${runs.map(([name, r]) => `${name} ${r.statusCodes} (${r.errors} errors)`).join('; ')}`);
      }
    }

    const [base, ...ours] = targets;
    console.log('\nconvergence / bare node:http (same run, same settings; lower is better for p99, higher for requests/s)');
    for (const tg of ours) {
      const p99s = PACINGS.map((p) => `p99 at ${int(RATE)} req/s ${p.name} ${fmt(tg[p.key].p99 / base[p.key].p99).padStart(5)}x`);
      console.log(
        `  ${tg.name.padEnd(34)} ${p99s.join('   ')}   full-speed req/s ${fmt(tg.max.rate / base.max.rate).padStart(4)}x   ` +
          `full-speed p99 ${fmt(tg.max.p99 / base.max.p99).padStart(5)}x`,
      );
    }

    const verdict = (ok) => (ok ? 'met' : 'NOT met');
    console.log(`\nobjectives, judged on the ${int(RATE)} requests/s runs above (ms; ${PACINGS.map((p) => p.name).join(' | ')})`);
    for (const tg of ours) {
      for (const slo of SEED_SLOS) {
        const cells = PACINGS.map((p) => {
          const value = tg[p.key][slo.key];
          return `${fmt(value).padStart(7)} ${verdict(value < slo.limitMs).padEnd(7)}`;
        });
        console.log(`  seed SLO ${slo.name.padEnd(14)} ${tg.name.padEnd(34)} ${cells.join(' | ')}`);
      }
    }
    // The goal needs the rate to have been delivered, and every response to have succeeded.
    for (const p of PACINGS) {
      const s = targets[2][p.key];
      const ok = s.p99 < GOAL_P99_MS && s.rate >= RATE * 0.99 && s.non2xx === 0 && s.errors === 0;
      console.log(
        `  goal: run-status reads p99 < ${GOAL_P99_MS} ms at ${int(RATE)} req/s, ${p.name.padEnd(6)}: p99 ${fmt(s.p99)} ms, ${int(s.rate)} req/s achieved, ` +
          `${s.non2xx} non-2xx, ${s.errors} errors  ${verdict(ok)}`,
      );
    }
    console.log('  (the goal counts as met only with p99 under the limit, at least 99% of the rate achieved and no failed response)');
    await junkFlood({ url: `${serverUrl}/api/v1/pipelines/runs/${runId}`, apiKey, duration, randomKeyBody: apiKeys.randomKeyBody });

    const serverLog = [...server.lines.stdout, ...server.lines.stderr].filter((l) => !/listening on/.test(l));
    if (serverLog.length) {
      console.log(`\nconvergence serve wrote ${serverLog.length} line(s) besides its listening line (log level warn), e.g.:`);
      for (const line of serverLog.slice(0, 3)) console.log(`  ${line.slice(0, 300)}`);
    }
  } finally {
    const stops = [];
    if (server) stops.push(stopChild(server.child, 'SIGTERM').then((r) => ['convergence serve', r]));
    if (bare) stops.push(stopChild(bare.child, 'SIGTERM').then((r) => ['bare server', r]));
    for (const [name, r] of await Promise.all(stops)) {
      if (name === 'convergence serve' && r.exitCode !== 0)
        console.log(`note: convergence serve ended with ${r.exitCode ?? r.signal} on SIGTERM`);
    }
    await rm(tmp, { recursive: true, force: true });
  }

  await constantTime(apiKeys);
  console.log(
    `\nserve benchmark took ${fmt((performance.now() - benchStarted) / 1000, 1)} s in all, load average now ${fmt(os.loadavg()[0])}`,
  );
}
