/**
 * The HTTP front of the Cloud Run fake: what answers a service's URLs. Run serves a private
 * service (the default) only to a request carrying an ID token minted for the service's URL:
 * without one it answers 403, with an invalid, expired or wrongly-audienced one 401, and 403 again
 * when the token's account lacks roles/run.invoker. A service with invokerIamDisabled (`public`)
 * takes anyone. Allowed requests go to the test's app.
 *
 * Its URLs are `<base>/<service id>/<revision>/<path>`: the revision stands for the tag URL (or
 * the traffic split) Run would route by host, so CONVERGENCE_PROBE_URL=<base>/{service}/{revision}
 * points deploy's probes here.
 */
import { startFakeApi, type FakeApi, type FakeReply, type RecordedRequest } from '../http-api.ts';
import type { Message } from './run-common.ts';
import type { RunFake } from './run.ts';

/** A request the front let through, as the test's app sees it. */
export interface FrontRequest {
  service: string;
  revision: string;
  /** The path after the revision, with the query. */
  path: string;
  /** The ID token's email; undefined for a public service called without one. */
  caller: string | undefined;
  request: RecordedRequest;
}

export interface RunFrontOptions {
  run: RunFake;
  /** projects/P/locations/L of the services it fronts. */
  location: string;
  /** The ID token check of the OAuth fake: its email when signed for `audience` and not expired. */
  verifyIdToken(token: string, audience: string): { email: string } | undefined;
  app(request: FrontRequest): FakeReply | Promise<FakeReply>;
}

export interface RunFront {
  /** http://127.0.0.1:<port>; a service's URLs are under <base>/<service>/<revision>. */
  base: string;
  /** Every request that reached the front, and how it was answered. */
  answered: Array<{ path: string; status: number }>;
  /** Accounts holding roles/run.invoker on the services; undefined: every account does. */
  invokers: Set<string> | undefined;
  close(): Promise<void>;
}

const forbidden = (path: string): FakeReply => ({
  status: 403,
  headers: { 'content-type': 'text/html; charset=UTF-8' },
  body: `<html><head><title>403 Forbidden</title></head><body><h1>Error: Forbidden</h1><h2>Your client does not have permission to get URL <code>${path}</code> from this server.</h2></body></html>`,
});
const unauthorized = (): FakeReply => ({
  status: 401,
  headers: { 'content-type': 'text/html; charset=UTF-8', 'www-authenticate': 'Bearer error="invalid_token"' },
  body: '<html><head><title>401 Unauthorized</title></head><body><h1>Error: Unauthorized</h1><h2>Your client does not have permission to the requested URL.</h2></body></html>',
});
const notFound = (): FakeReply => ({ status: 404, headers: { 'content-type': 'text/html' }, body: 'Error: Page not found' });

export async function startRunFront(options: RunFrontOptions): Promise<RunFront> {
  const api: FakeApi = await startFakeApi(async (request) => {
    const reply = await answer(options, front.invokers, request);
    front.answered.push({ path: request.path, status: reply.status ?? 200 });
    return reply;
  });
  const front: RunFront = { base: api.base, answered: [], invokers: undefined, close: () => api.close() };
  return front;
}

async function answer(options: RunFrontOptions, invokers: Set<string> | undefined, request: RecordedRequest): Promise<FakeReply> {
  const [, serviceId, revision, rest = '/'] = /^\/([^/]+)\/([^/]+)(\/.*)?$/.exec(request.path) ?? [];
  const service = serviceId && options.run.service(`${options.location}/services/${serviceId}`);
  if (!service || !revision || !hasRevision(options, service, revision)) return notFound();
  let caller: string | undefined;
  if (!service.invokerIamDisabled) {
    const header = String(request.headers.authorization ?? '');
    if (!header) return forbidden(rest);
    const token = /^Bearer (\S+)$/.exec(header)?.[1];
    const identity = token
      ? audiencesOf(service)
          .map((aud) => options.verifyIdToken(token, aud))
          .find(Boolean)
      : undefined;
    if (!identity) return unauthorized();
    if (invokers && !invokers.has(identity.email)) return forbidden(rest);
    caller = identity.email;
  }
  return options.app({ service: serviceId, revision, path: rest, caller, request });
}

function hasRevision(options: RunFrontOptions, service: Message, revision: string): boolean {
  return options.run.revisions(String(service.name)).some((r) => String(r.name).endsWith(`/revisions/${revision}`));
}

/** Run takes a token minted for the service's URL on any of its URLs (tag URLs included). */
function audiencesOf(service: Message): string[] {
  const urls = (service.urls as string[] | undefined) ?? [];
  const tagUrls = ((service.trafficStatuses as Message[] | undefined) ?? []).map((t) => String(t.uri ?? '')).filter(Boolean);
  return [String(service.uri ?? ''), ...urls, ...tagUrls].filter(Boolean);
}
