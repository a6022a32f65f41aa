/**
 * A scripted HTTP API on 127.0.0.1: each request is recorded and answered by the test's handler
 * (status, headers, JSON or text body, or no answer at all). Stands in for the REST sources a
 * pipeline pulls from, for the health endpoints deploy probes, and for any other plain HTTP peer.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path with query, as received. */
  path: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  /** The request body as text ('' when none); set before the handler runs. */
  body: string;
}

export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  /** JSON-serialised unless a string. */
  body?: unknown;
  /** Never answer (the socket stays open until the server closes). */
  hang?: boolean;
}

export type Handler = (req: RecordedRequest, index: number) => FakeReply | Promise<FakeReply>;

export interface FakeApi {
  /** Base URL, e.g. http://127.0.0.1:12345 */
  base: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** A scripted HTTP API on 127.0.0.1 (random port) that records every request. */
export async function startFakeApi(handler: Handler): Promise<FakeApi> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', url, headers: req.headers, body: '' };
    const index = requests.length;
    requests.push(recorded);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    const received = once(req, 'end').then(() => {
      recorded.body = Buffer.concat(chunks).toString('utf8');
    });
    received
      .then(() => handler(recorded, index))
      .then(
        (reply) => {
          if (reply.hang) return;
          const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
          res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
          res.end(body);
        },
        (error: unknown) => {
          res.writeHead(500);
          res.end(String(error));
        },
      );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
