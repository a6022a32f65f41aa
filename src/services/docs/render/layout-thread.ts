import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LineageGraph } from '../model.ts';
import type { LaidOutGraph } from './graph.ts';

/** The worker module beside this one: `.ts` when run from the sources, `.js` from the build. */
const WORKER = new URL(`./layout-worker${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url);

type Reply = { id: number; laid: LaidOutGraph; error?: undefined } | { id: number; error: string };

interface LayoutThread {
  worker: Worker;
  pending: Map<number, { resolve(laid: LaidOutGraph): void; reject(err: Error): void }>;
}

let thread: LayoutThread | undefined;
let nextId = 0;

/**
 * The lineage laid out on a worker thread. ELK's layout of a large graph is a second or two of
 * uninterrupted work: on its own thread it neither stalls the requests `convergence serve` answers
 * meanwhile nor waits for the metadata reads it runs beside. The thread is kept (warm, so later
 * layouts are faster) but never keeps the process alive.
 */
export function layoutLineageOffThread(graph: LineageGraph): Promise<LaidOutGraph> {
  const { worker, pending } = (thread ??= startThread());
  const id = nextId++;
  return new Promise<LaidOutGraph>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (pending.size === 1) worker.ref();
    worker.postMessage({ id, graph });
  });
}

function startThread(): LayoutThread {
  const worker = new Worker(WORKER);
  const started: LayoutThread = { worker, pending: new Map() };
  worker.unref();
  const settle = (id: number) => {
    const waiting = started.pending.get(id);
    started.pending.delete(id);
    if (started.pending.size === 0) worker.unref();
    return waiting;
  };
  worker.on('message', (reply: Reply) => {
    const waiting = settle(reply.id);
    if (reply.error === undefined) waiting?.resolve(reply.laid);
    else waiting?.reject(new Error(`laying out the lineage failed: ${reply.error}`));
  });
  // A thread that failed is dropped: whoever waited on it is told, the next layout starts a new one.
  const fail = (err: Error) => {
    if (thread === started) thread = undefined;
    for (const id of [...started.pending.keys()]) settle(id)?.reject(err);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the lineage layout thread stopped (exit ${code})`)));
  return started;
}
