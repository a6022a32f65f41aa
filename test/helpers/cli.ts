import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { BIN, MANIFEST, REPO_ROOT } from './paths.ts';

/** The JSON envelope of --json (see src/cli/base-command.ts). */
export interface Envelope<R = unknown> {
  status: number;
  result?: R;
  error?: { name: string; code: string; message: string; exitCode: number; suggestion?: string; data?: unknown };
  warnings: string[];
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Every line of stdout and stderr together, for "never printed anywhere" checks. */
  all: string;
}

export interface RunOptions {
  cwd: string;
  /** Written to the child's stdin; without it stdin is /dev/null. */
  input?: string;
  /** Extra variables; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

let checkedBuild = false;
function assertBuilt(): void {
  if (checkedBuild) return;
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'commands')) || !existsSync(path.join(REPO_ROOT, 'oclif.manifest.json'))) {
    throw new Error(`the CLI is not built: run \`npm run build\` in ${REPO_ROOT} before the black-box tests`);
  }
  checkedBuild = true;
}

/** The environment of every spawned CLI: non-interactive, no colours, no inherited convergence settings. */
function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = { ...process.env, CI: '1', NO_COLOR: '1', FORCE_COLOR: '0', ...extra };
  for (const name of ['CONVERGENCE_ENV', 'CONVERGENCE_HEADLESS', 'DEBUG', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT']) {
    if (!(name in extra)) delete env[name];
  }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env as Record<string, string>;
}

/** Runs `node bin/run.js ...args` (the built CLI) in `cwd`; never throws on a non-zero exit. */
export async function runCli(args: string[], options: RunOptions): Promise<CliResult> {
  assertBuilt();
  const result = await execa(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    timeout: options.timeoutMs ?? 120_000,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
  });
  if (result.timedOut) throw new Error(`convergence ${args.join(' ')} timed out\n${result.stderr}`);
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  return { exitCode: result.exitCode ?? -1, stdout, stderr, all: `${stdout}\n${stderr}` };
}

/**
 * Parses stdout as exactly one JSON document (the --json contract: nothing else on stdout).
 * Throws with the raw output when it does not parse, so a failing test shows what was printed.
 */
export function parseEnvelope<R = unknown>(r: CliResult, args: string[] = []): Envelope<R> {
  try {
    const value = JSON.parse(r.stdout) as Envelope<R>;
    if (value === null || typeof value !== 'object' || typeof value.status !== 'number' || !Array.isArray(value.warnings)) {
      throw new Error('not an envelope {status, warnings, result|error}');
    }
    return value;
  } catch (err) {
    throw new Error(
      `stdout of \`convergence ${args.join(' ')}\` is not one JSON envelope (${(err as Error).message})\n--- exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
      { cause: err },
    );
  }
}

export interface JsonResult<R> extends CliResult {
  envelope: Envelope<R>;
}

/** Runs the command with --json appended and parses its envelope. */
export async function runJson<R = unknown>(args: string[], options: RunOptions): Promise<JsonResult<R>> {
  const full = [...args, '--json'];
  const r = await runCli(full, options);
  return { ...r, envelope: parseEnvelope<R>(r, full) };
}

/** Describes a run for assertion messages. */
export const show = (r: CliResult) => `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** Runs `fn` over `items` with at most `limit` in flight (CI has 2 cores), results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Command ids of the built CLI as oclif lists them ("keys:admin:create"), read from oclif.manifest.json. */
export async function manifestCommandIds(): Promise<string[]> {
  assertBuilt();
  const manifest = JSON.parse(await readFile(MANIFEST, 'utf8')) as { commands: Record<string, unknown> };
  return Object.keys(manifest.commands).sort();
}

/** Starts the built CLI without waiting, for tests that signal or kill it mid-run. */
export function spawnCli(args: string[], options: Omit<RunOptions, 'input'> & { keepFinalNewline?: boolean }) {
  assertBuilt();
  return execa(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: childEnv(options.env),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    stripFinalNewline: !options.keepFinalNewline,
    timeout: options.timeoutMs ?? 120_000,
  });
}

export interface ServeProcess {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Sends `signal` (default SIGTERM) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
}

/** Starts `convergence serve --port 0 ...args` and waits until it says where it listens. */
export async function startServe(
  cwd: string,
  args: string[] = [],
  env?: Record<string, string | undefined>,
  /** The serving command: `serve`, or e.g. `docs serve --tenant t`. */
  command: string[] = ['serve'],
): Promise<ServeProcess> {
  const child = spawnCli([...command, '--port', '0', ...args], {
    cwd,
    ...(env ? { env } : {}),
    timeoutMs: 300_000,
    keepFinalNewline: true,
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    void child.then((r) =>
      reject(new Error(`serve exited before listening (exit ${r.exitCode})\n${String(r.stderr)}\n${String(r.stdout)}`)),
    );
  });
  return {
    url,
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      const r = await child;
      const stdout = String(r.stdout ?? '');
      const err = String(r.stderr ?? '');
      return { exitCode: r.exitCode ?? -1, stdout, stderr: err, all: `${stdout}\n${err}` };
    },
  };
}
