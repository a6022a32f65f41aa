import { watch, type FSWatcher } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ServiceContext } from '../context.ts';
import type { GeneratedSite } from './site.ts';
import { SiteCache } from './site-cache.ts';
import { siteFile, SITE_CONTENT_SECURITY_POLICY } from './site-files.ts';

export interface SiteServerOptions {
  tenantId: string;
  port: number;
  /** A generated site is reused this long before a page request generates it again (new runs). */
  maxAgeMs: number;
  onGenerated?(site: GeneratedSite, ms: number): void;
  onError?(err: unknown): void;
}

export interface SiteServer {
  url: string;
  close(): Promise<void>;
}

/** Headers of every site answer: the page policy, no sniffing, no framing, no caching, no referrer. */
export const SITE_HEADERS = {
  'content-security-policy': SITE_CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/**
 * `docs serve`: the tenant's site on 127.0.0.1 only, generated in memory (nothing is written),
 * again when a file under configs/<tenant>/ changes or the site is older than maxAgeMs. Requests
 * naming another host are refused, so a web page cannot reach the site through DNS rebinding.
 */
export async function serveSite(ctx: ServiceContext, options: SiteServerOptions): Promise<SiteServer> {
  const cache = new SiteCache(ctx, options.tenantId, { maxAgeMs: options.maxAgeMs, onGenerated: options.onGenerated });
  // Generated before listening: an unknown tenant or a broken config is reported, not served.
  await cache.files();
  const allowedHosts = new Set<string>();
  const server = http.createServer((request, response) => {
    answer(cache, request, response, allowedHosts).catch((err: unknown) => {
      options.onError?.(err);
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', ...SITE_HEADERS });
      response.end('The site could not be generated; see the terminal of `convergence docs serve`.\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  allowedHosts.add(`127.0.0.1:${port}`).add(`localhost:${port}`);
  const watcher = watchConfigs(ctx.workspace.root, options.tenantId, () => cache.markStale());
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      watcher?.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function answer(cache: SiteCache, request: http.IncomingMessage, response: http.ServerResponse, hosts: Set<string>) {
  const plain = (status: number, text: string, extra: Record<string, string> = {}) => {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...SITE_HEADERS, ...extra });
    response.end(`${text}\n`);
  };
  if (!hosts.has(request.headers.host ?? '')) return plain(421, 'This site answers only to 127.0.0.1 and localhost.');
  if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, 'Only GET and HEAD.', { allow: 'GET, HEAD' });
  const file = siteFile(await cache.files(), (request.url ?? '/').slice(1));
  if (!file) return plain(404, 'No such page.');
  response.writeHead(200, { 'content-type': file.contentType, ...SITE_HEADERS });
  response.end(request.method === 'HEAD' ? undefined : file.body);
}

/** Watches the tenant's config folder when it exists (a pushed-only tenant has none). */
function watchConfigs(root: string, tenantId: string, onChange: () => void): FSWatcher | undefined {
  try {
    const watcher = watch(path.join(root, 'configs', tenantId), { recursive: true }, onChange);
    watcher.on('error', () => watcher.close());
    return watcher;
  } catch {
    return undefined;
  }
}
