import http from 'node:http';
import https from 'node:https';
import { assertPublicLiteral, publicOnlyLookup } from './address-guard.ts';
import { SendFailure, shownUrl } from './port.ts';

/** The most of an answer's body read (it is only drained, never shown). */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The longest Retry-After honoured; a longer one fails the attempt as it is. */
const MAX_RETRY_AFTER_MS = 30_000;

export interface PostOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** Loopback and private addresses allowed (operator targets); else the connection refuses them. */
  allowPrivate: boolean;
  signal: AbortSignal;
}

/** Milliseconds an HTTP Retry-After asks for (seconds or a date), when it is a sane value. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_RETRY_AFTER_MS ? ms : undefined;
}

/**
 * One POST of a JSON body, redirects not followed (a 3xx could lead a tenant's target to an
 * internal address), the answer drained and described by its status. Failures are SendFailures
 * that say whether another attempt may help.
 */
export function postJson(options: PostOptions): Promise<string> {
  const url = new URL(options.url);
  const shown = shownUrl(options.url);
  if (!options.allowPrivate) assertPublicLiteral(url);
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(options.body)), ...options.headers },
        signal: options.signal,
        ...(options.allowPrivate ? {} : { lookup: publicOnlyLookup }),
      },
      (response) => {
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) response.destroy();
        });
        response.on('error', () => undefined);
        response.on('close', () => {
          const code = response.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve(`HTTP ${code}`);
          else reject(statusFailure(shown, code, response.headers['retry-after']));
        });
        response.resume();
      },
    );
    request.on('error', (err: Error) => reject(err instanceof SendFailure ? err : connectionFailure(shown, err, options.signal)));
    request.end(options.body);
  });
}

function statusFailure(shown: string, code: number, retryAfter: string | undefined): SendFailure {
  const message = `${shown} answered HTTP ${code}`;
  if (code === 429 || code === 408 || code >= 500) {
    const wait = retryAfterMs(retryAfter);
    return new SendFailure(message, { retryable: true, ...(wait !== undefined ? { retryAfterMs: wait } : {}) });
  }
  return new SendFailure(code >= 300 && code < 400 ? `${message} (a redirect, which is not followed)` : message, {
    retryable: false,
    auth: code === 401 || code === 403,
  });
}

function connectionFailure(shown: string, err: Error, signal: AbortSignal): SendFailure {
  // The lookup refusal arrives wrapped by the socket on some Node versions: keep its own words.
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof SendFailure) return cause;
  if (signal.aborted) return new SendFailure(`${shown} did not answer in time`, { retryable: true });
  const code = (err as NodeJS.ErrnoException).code;
  return new SendFailure(`could not reach ${shown}: ${code ?? err.message}`, {
    retryable: code !== 'ENOTFOUND' && code !== 'ERR_INVALID_URL',
  });
}
