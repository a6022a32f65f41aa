/**
 * The HTTP server under the fakes of real JSON APIs (Anthropic, Cursor, Google Sheets): every
 * request is recorded with its body, then answered by the fake's handler with a JSON document.
 */
import { startFakeApi, type FakeApi, type RecordedRequest } from './http-api.ts';

/** A request as the fake received it, its body read as text ('' when none). */
export type JsonRequest = RecordedRequest;

export interface JsonReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type JsonApi = FakeApi;

/** The scripted HTTP server of http-api.ts, answering every request with a JSON document. */
export function startJsonApi(handler: (request: JsonRequest) => JsonReply): Promise<JsonApi> {
  return startFakeApi((request) => {
    const reply = handler(request);
    return {
      status: reply.status,
      headers: { 'content-type': 'application/json; charset=utf-8', ...reply.headers },
      body: JSON.stringify(reply.body),
    };
  });
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
