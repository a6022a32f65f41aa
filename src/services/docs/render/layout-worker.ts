/** Worker of layoutLineageOffThread: lays out each graph it is sent and posts the result back under the request's id. */
import { parentPort } from 'node:worker_threads';
import type { LineageGraph } from '../model.ts';
import { layoutLineage } from './graph.ts';

parentPort!.on('message', (request: { id: number; graph: LineageGraph }) => {
  layoutLineage(request.graph).then(
    (laid) => parentPort!.postMessage({ id: request.id, laid }),
    (err: unknown) => parentPort!.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
