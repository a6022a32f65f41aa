import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../../../lib/private-fs.ts';

/**
 * Access to a DuckDB file shared by several processes (CLI commands, pipeline runs, `serve`).
 * DuckDB lets one process open a file for writing at a time, so a process holds the file only
 * while it works: calls in one process go through one queue per file (two instances of the same
 * file in one process would not exclude each other), and an open is retried while another
 * process has the file.
 *
 * Opening and closing cost tens of milliseconds each (the catalog is read, the WAL checkpointed),
 * and a command makes calls in bursts: a pipeline run asks for its lock, quota, run record and
 * step logs one after the other. So an instance stays open for HOLD_MS after the last queued call
 * and the next call in that window reuses it. So that a process with a steady stream of calls
 * (`serve` under load, a loop of reads) cannot starve the others, an instance open for MAX_HOLD_MS
 * is closed after its current call, and the process then leaves the file free for YIELD_MS
 * before it opens it again; waiting processes retry within that time. A sandboxed instance
 * (tenant SQL: its configuration is locked) is never reused.
 */
const HOLD_MS = 40;
const MAX_HOLD_MS = 250;
const YIELD_MS = 60;
const MAX_RETRY_MS = YIELD_MS / 2;
const BUSY = /Could not set lock on file|Conflicting lock/i;

interface Held {
  instance: DuckDBInstance;
  openedAt: number;
  timer?: NodeJS.Timeout;
}

const queues = new Map<string, Promise<unknown>>();
const held = new Map<string, Held>();
const prepared = new Set<string>();
/** When a file released after MAX_HOLD_MS may be opened again by this process. */
const yieldUntil = new Map<string, number>();
let exitHookInstalled = false;

function enqueue<T>(key: string, task: () => Promise<T>): Promise<T> {
  const result = (queues.get(key) ?? Promise.resolve()).then(task, task);
  const tail = result.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return result;
}

function release(file: string): void {
  const entry = held.get(file);
  if (!entry) return;
  held.delete(file);
  clearTimeout(entry.timer);
  entry.instance.closeSync();
}

/** A process that ends while holding a file closes it, so the next opener finds a checkpointed file. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const file of [...held.keys()]) release(file);
  });
}

async function openFile(file: string, busyTimeoutMs: number): Promise<DuckDBInstance> {
  if (!prepared.has(file)) await ensurePrivateDir(path.dirname(file));
  const wait = (yieldUntil.get(file) ?? 0) - Date.now();
  if (wait > 0) await sleep(wait);
  const deadline = Date.now() + busyTimeoutMs;
  let delay = 5;
  for (;;) {
    try {
      const instance = await DuckDBInstance.create(file);
      if (!prepared.has(file)) {
        // DuckDB creates the file with the process umask; the warehouse holds every tenant's data.
        await chmod(file, PRIVATE_FILE_MODE);
        prepared.add(file);
      }
      return instance;
    } catch (err) {
      const message = (err as Error).message ?? '';
      if (!BUSY.test(message)) {
        throw new ConvergenceError('WAREHOUSE_OPEN', ExitCode.unexpected, `cannot open warehouse ${file}: ${message}`, { cause: err });
      }
      if (Date.now() >= deadline) {
        const pid = /PID (\d+)/.exec(message)?.[1];
        throw new ConvergenceError(
          'WAREHOUSE_BUSY',
          ExitCode.unexpected,
          `warehouse ${file} stayed locked for ${busyTimeoutMs / 1000} s${pid ? ` (held by PID ${pid})` : ''}`,
          {
            suggestion: 'another convergence process holds the warehouse; retry',
            data: { file, pid: pid ? Number(pid) : null },
            cause: err,
          },
        );
      }
      // Randomised waits keep a crowd of waiting processes from retrying in lockstep; they stay
      // shorter than YIELD_MS, so a waiting process tries within the window a busy one leaves free.
      await sleep(Math.min(delay * (0.5 + Math.random() / 2), deadline - Date.now()));
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }
}

/** Keeps the instance for the next call, closing it after HOLD_MS without one. */
function hold(file: string, entry: Held): void {
  installExitHook();
  entry.timer = setTimeout(() => void enqueue(file, async () => held.get(file) === entry && release(file)), HOLD_MS);
  entry.timer.unref();
  held.set(file, entry);
}

/**
 * Runs `work` on an instance of `file`, in the file's queue. A plain call reuses the held instance
 * (or opens one and holds it); a `fresh` call gets an instance of its own, closed when it ends.
 * A failed call closes its instance: DuckDB may have invalidated it.
 */
export function withInstance<T>(
  file: string,
  options: { fresh: boolean; busyTimeoutMs: number },
  work: (instance: DuckDBInstance) => Promise<T>,
): Promise<T> {
  return enqueue(file, async () => {
    const reused = options.fresh ? undefined : held.get(file);
    if (options.fresh) release(file);
    if (reused) clearTimeout(reused.timer);
    const instance = reused?.instance ?? (await openFile(file, options.busyTimeoutMs));
    const openedAt = reused?.openedAt ?? Date.now();
    let ok = false;
    try {
      const result = await work(instance);
      ok = true;
      return result;
    } finally {
      if (held.get(file)?.instance === instance) held.delete(file);
      if (!ok || options.fresh) instance.closeSync();
      else if (Date.now() - openedAt >= MAX_HOLD_MS) {
        instance.closeSync();
        yieldUntil.set(file, Date.now() + YIELD_MS);
      } else hold(file, { instance, openedAt });
    }
  });
}

/** Waits for the file's queued calls and closes a held instance. */
export async function closeFile(file: string): Promise<void> {
  await enqueue(file, async () => release(file));
}
