import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isConvergenceError } from '../../lib/errors.ts';
import { SiteCache } from '../../services/docs/site-cache.ts';
import { siteFile } from '../../services/docs/site-files.ts';
import { SITE_HEADERS } from '../../services/docs/serve.ts';
import { HttpError } from '../http-errors.ts';
import type { ServerParts } from '../types.ts';

const TENANT_PARAMS = {
  type: 'object',
  properties: { tenant: { type: 'string', pattern: '^[a-z][a-z0-9_]{2,49}$' } },
  required: ['tenant'],
} as const;
/** A site is generated again on a request once it is this old, so new runs show on reload. */
const SITE_MAX_AGE_MS = 15_000;
/** Sites kept in memory at once; the least recently used goes first. */
const MAX_SITES = 16;

/**
 * The tenant sites of `docs generate` at /docs/<tenant>/, for operators: behind the admin key, in
 * X-Admin-Key or, so a browser can open the pages, as the password of HTTP Basic authentication.
 * Sites are generated in memory and never written anywhere.
 */
export const docsRoutes =
  (parts: ServerParts): FastifyPluginAsync =>
  async (app) => {
    const sites = new Map<string, SiteCache>();
    const siteOf = (tenantId: string) => {
      const site = sites.get(tenantId) ?? new SiteCache(parts.ctx, tenantId, { maxAgeMs: SITE_MAX_AGE_MS });
      sites.delete(tenantId);
      sites.set(tenantId, site);
      if (sites.size > MAX_SITES) sites.delete(sites.keys().next().value!);
      return site;
    };

    app.addHook('preHandler', async (request) => {
      try {
        await parts.auth.admin(adminKeyOf(request), request.ip);
      } catch (err) {
        if (!isConvergenceError(err) || err.code !== 'AUTH') throw err;
        throw new HttpError(401, 'AUTH', err.message, { 'www-authenticate': 'Basic realm="convergence docs", charset="UTF-8"' });
      }
    });

    app.get<{ Params: { tenant: string } }>('/docs/:tenant', { schema: { params: TENANT_PARAMS } }, async (request, reply) =>
      reply.redirect(`/docs/${request.params.tenant}/`),
    );
    app.get<{ Params: { tenant: string; '*': string } }>(
      '/docs/:tenant/*',
      { schema: { params: { ...TENANT_PARAMS, properties: { ...TENANT_PARAMS.properties, '*': { type: 'string' } } } } },
      async (request, reply) => {
        const files = await siteOf(request.params.tenant).files();
        const file = siteFile(files, request.params['*']);
        if (!file) throw new HttpError(404, 'NOT_FOUND', `no page ${request.params['*']} in the site of ${request.params.tenant}`);
        return reply.headers(SITE_HEADERS).type(file.contentType).send(file.body);
      },
    );
  };

/** X-Admin-Key, else the password (or, without one, the user name) of an HTTP Basic authorization. */
function adminKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-admin-key'];
  if (typeof header === 'string') return header;
  const authorization = request.headers.authorization;
  if (typeof authorization !== 'string' || !/^basic /i.test(authorization)) return undefined;
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return decoded || undefined;
  return decoded.slice(colon + 1) || decoded.slice(0, colon) || undefined;
}
