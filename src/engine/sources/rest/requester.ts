/**
 * What a REST source's requests are made of: URL with params, method and JSON body, headers with
 * credentials for the source's own origin only, the redactor of its secrets, and the redirect
 * rules that keep credentials and a POST's body with the origin they were written for.
 */
import { basicCredentials, Redactor, userinfoSecrets } from '../../../lib/redaction.ts';
import { RedirectError, safeUrl } from './errors.ts';
import { sourceFetch } from './transport.ts';
import type { AccessTokenProvider, RestAuth, RestSourceConfig } from './types.ts';

/**
 * The credentials of a config: its `auth`, else the userinfo of its URL as basic auth (fetch
 * refuses URLs that carry credentials, and a URL is shown in messages, so they never stay in it).
 */
function authOf(config: RestSourceConfig): RestAuth | undefined {
  if (config.auth) return config.auth;
  const userinfo = userinfoOf(config.url);
  return userinfo ? { type: 'basic', ...userinfo } : undefined;
}

function userinfoOf(url: string): { username: string; password: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (!parsed.username && !parsed.password) return undefined;
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  return { username: decode(parsed.username), password: decode(parsed.password) };
}

/**
 * Request headers for a config: Accept, configured headers, the body's content type, then auth
 * (auth wins). An access token is not known yet: it is added per request.
 */
function buildHeaders(config: RestSourceConfig): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json', ...(config.headers ?? {}) };
  if (bodyOf(config) !== undefined) headers['content-type'] = 'application/json';
  const auth = authOf(config);
  if (auth?.type === 'bearer') headers.authorization = `Bearer ${auth.token}`;
  else if (auth?.type === 'basic') headers.authorization = `Basic ${basicCredentials(auth.username, auth.password)}`;
  else if (auth?.type === 'header') headers[auth.name] = auth.value;
  return headers;
}

/**
 * Every secret of a source, in every spelling it may come back in: the rendered secret values,
 * the auth secret (and the base64 of basic auth) and the URL's userinfo.
 */
export function sourceRedactor(config: RestSourceConfig): Redactor {
  const redactor = new Redactor(config.secrets ?? []);
  for (const value of userinfoSecrets(config.url)) redactor.add(value);
  const auth = authOf(config);
  if (auth?.type === 'bearer') redactor.add(auth.token);
  else if (auth?.type === 'header') redactor.add(auth.value);
  else if (auth?.type === 'basic') {
    redactor.add(auth.password);
    redactor.add(basicCredentials(auth.username, auth.password));
    // Without a password the user name is the credential (`https://TOKEN@host`).
    if (!auth.password) redactor.add(auth.username);
  }
  return redactor;
}

/** The JSON text a POST sends on every page; undefined for a GET or a POST without body. */
function bodyOf(config: RestSourceConfig): string | undefined {
  return config.method === 'POST' && config.body !== undefined ? JSON.stringify(config.body) : undefined;
}

/** The base URL: config url without userinfo, with config params merged into its query. */
export function baseUrl(config: RestSourceConfig): URL {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new TypeError('rest_api url is not a valid absolute URL');
  }
  url.username = '';
  url.password = '';
  for (const [name, value] of Object.entries(config.params ?? {})) {
    url.searchParams.delete(name);
    // A list repeats its key in order (`group_by[]=model&group_by[]=api_key_id`).
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, item);
  }
  return url;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/** Redirects that keep the method and body; the others turn a request into a GET without body. */
const BODY_KEEPING_REDIRECTS = new Set([307, 308]);

/** How a source talks to its API: method, body, headers (with credentials for its own origin only) and what to hide. */
export interface Requester {
  method: 'GET' | 'POST';
  body: string | undefined;
  /** The origin of the configured URL: the only one credentials (and a POST) go to. */
  origin: string;
  /** Credentials go only to the origin of the configured URL, never to where a link or redirect points. */
  headersFor(url: URL, accessToken: string | undefined): Record<string, string>;
  /** Where an `access_token` auth gets its tokens. */
  tokens: AccessTokenProvider | undefined;
  redactor: Redactor;
  privateHosts: readonly string[] | undefined;
  /** A URL as messages show it: no userinfo, credential-looking parameters and secrets replaced. */
  show(url: URL): string;
}

export function requesterOf(config: RestSourceConfig): Requester {
  const origin = baseUrl(config).origin;
  const headers = buildHeaders(config);
  const anonymous = { accept: headers.accept ?? 'application/json' };
  const redactor = sourceRedactor(config);
  return {
    method: config.method ?? 'GET',
    body: bodyOf(config),
    origin,
    headersFor: (url, accessToken) => {
      if (url.origin !== origin) return anonymous;
      return accessToken === undefined ? headers : { ...headers, authorization: `Bearer ${accessToken}` };
    },
    tokens: config.auth?.type === 'access_token' ? config.auth.provider : undefined,
    redactor,
    privateHosts: config.private_hosts,
    show: (url) => redactor.redact(safeUrl(url)),
  };
}

/** The access token of a request, if the source has one; every token obtained is redacted from then on. */
export async function accessTokenFor(requester: Requester, signal: AbortSignal): Promise<string | undefined> {
  if (!requester.tokens) return undefined;
  const token = await requester.tokens.token(signal);
  requester.redactor.add(token);
  return token;
}

/**
 * Why a POST may not follow a redirect, or undefined when it may: only 307 and 308 keep the
 * method and body (301, 302 and 303 would silently turn it into a GET without its body), and
 * only to the source's own origin (the body may carry what the API needs kept secret).
 */
function postRedirectRefusal(status: number, next: URL, origin: string): string | undefined {
  if (!BODY_KEEPING_REDIRECTS.has(status)) {
    return `the API answered ${status} to a POST, which would turn it into a GET without its body; set url to the address the API redirects to`;
  }
  if (next.origin !== origin)
    return `a POST is not redirected to another origin (${next.origin}); set url to that address if it is trusted`;
  return undefined;
}

/** One response and the URL that gave it (after redirects). */
interface Sent {
  response: Response;
  at: URL;
}

/** fetch, following redirects itself so that credentials never follow one to another origin. */
export async function fetchFollowing(url: URL, requester: Requester, accessToken: string | undefined, signal: AbortSignal): Promise<Sent> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const response = await sourceFetch(
      current,
      {
        method: requester.method,
        headers: requester.headersFor(current, accessToken),
        ...(requester.body === undefined ? {} : { body: requester.body }),
        signal,
        redirect: 'manual',
      },
      requester.privateHosts,
    );
    const location = response.headers.get('location');
    if (!REDIRECT_STATUSES.has(response.status) || location === null) return { response, at: current };
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new RedirectError(requester.show(url), `more than ${MAX_REDIRECTS} redirects`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new RedirectError(requester.show(current), 'its Location is not a URL');
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new RedirectError(requester.show(current), `it points to a ${next.protocol} URL`);
    }
    const refusal = requester.method === 'POST' ? postRedirectRefusal(response.status, next, requester.origin) : undefined;
    if (refusal) throw new RedirectError(requester.show(current), refusal);
    current = next;
  }
}
