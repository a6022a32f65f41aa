/**
 * HTTP health probes of a revision. The URL is the revision's tag URL (or the service URL),
 * with the environment's health_path. Where those URLs are not reachable from here (local
 * fakes, a VPC-only service reached through a proxy), CONVERGENCE_PROBE_URL rewrites them:
 *
 *   CONVERGENCE_PROBE_URL=http://127.0.0.1:8080            every probe goes to that origin
 *   CONVERGENCE_PROBE_URL=http://127.0.0.1:8080/{tag}      {tag}, {revision} and {service} are filled in
 *
 * The health path is appended to the rewritten URL. Code can inject its own mapping instead.
 */
import type { ProbeHeaders } from './probe-auth.ts';

const PROBE_URL_VAR = 'CONVERGENCE_PROBE_URL';

interface ProbeTarget {
  service: string;
  revision: string;
  tag: string | undefined;
  /** The URL Run gives the tag (or the service URL). */
  uri: string;
}

export type ProbeUrlOf = (target: ProbeTarget) => string;

export function probeUrlFromEnv(vars: Record<string, string | undefined> = process.env): ProbeUrlOf {
  const template = vars[PROBE_URL_VAR];
  if (!template) return (target) => target.uri;
  return (target) =>
    template
      .replaceAll('{tag}', target.tag ?? '')
      .replaceAll('{revision}', target.revision)
      .replaceAll('{service}', target.service)
      .replace(/\/$/, '');
}

export interface ProbeResult {
  ok: boolean;
  status: number | undefined;
  latencyMs: number;
  error: string | undefined;
  at: number;
}

/**
 * One GET with `headers` (the ID token of a private service); a 2xx within the timeout is
 * healthy, anything else (5xx, 4xx, refused, timeout, no token) is not.
 */
export async function probeOnce(url: string, timeoutMs: number, headers?: ProbeHeaders): Promise<ProbeResult> {
  const started = performance.now();
  try {
    const identity = headers ? await headers() : {};
    const response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
      headers: { 'user-agent': 'convergence-deploy-probe', ...identity },
    });
    await response.arrayBuffer().catch(() => undefined);
    const ok = response.status >= 200 && response.status < 300;
    return {
      ok,
      status: response.status,
      latencyMs: performance.now() - started,
      error: ok ? undefined : `HTTP ${response.status}`,
      at: Date.now(),
    };
  } catch (err) {
    const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    return { ok: false, status: undefined, latencyMs: performance.now() - started, error: message, at: Date.now() };
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Health gate: probes until `needed` consecutive healthy answers, or fails after `attempts`
 * probes. A new revision may need a moment after Run calls it ready.
 */
export async function healthGate(
  url: string,
  options: { attempts: number; needed: number; periodMs: number; timeoutMs: number; headers?: ProbeHeaders },
): Promise<{ ok: boolean; probes: ProbeResult[] }> {
  const probes: ProbeResult[] = [];
  let streak = 0;
  for (let i = 0; i < options.attempts; i++) {
    const result = await probeOnce(url, options.timeoutMs, options.headers);
    probes.push(result);
    streak = result.ok ? streak + 1 : 0;
    if (streak >= options.needed) return { ok: true, probes };
    if (i + 1 < options.attempts) await sleep(options.periodMs);
  }
  return { ok: false, probes };
}

export { sleep };
