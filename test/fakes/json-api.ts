/**
 * The HTTP server under the fakes of real JSON APIs (Anthropic, Cursor, Google Sheets): every
 * request is recorded with its body, then answered by the fake's handler. A fake of a plain
 * scripted API (no body, no rules) is test/fakes/http-api.ts.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface JsonRequest {
  method: string;
  url: URL;
  headers: http.IncomingHttpHeaders;
  /** The request body as text ('' when none). */
  body: string;
}

export interface JsonReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface JsonApi {
  /** Base URL, e.g. http://127.0.0.1:12345 */
  base: string;
  requests: JsonRequest[];
  close(): Promise<void>;
}

export async function startJsonApi(handler: (request: JsonRequest) => JsonReply): Promise<JsonApi> {
  const requests: JsonRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: JsonRequest = {
        method: req.method ?? 'GET',
        url: new URL(req.url ?? '/', 'http://127.0.0.1'),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(request);
      let reply: JsonReply;
      try {
        reply = handler(request);
      } catch (error) {
        reply = { status: 500, body: { error: String(error) } };
      }
      res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...reply.headers });
      res.end(JSON.stringify(reply.body));
    });
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

/** A stable pseudo-random integer in [0, max) for a key, so the fakes serve the same data on every run. */
export function stableInt(key: string, max: number): number {
  let hash = 2166136261;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0) % max;
}

export const DAY_MS = 86_400_000;

/** The UTC days (YYYY-MM-DD) whose midnight is in [fromMs, toMs). */
export function daysBetween(fromMs: number, toMs: number): string[] {
  const days: string[] = [];
  for (let t = Math.ceil(fromMs / DAY_MS) * DAY_MS; t < toMs; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}
