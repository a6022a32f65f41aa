import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { ServiceContext } from '../services/context.ts';
import { redactKnownSecrets, redactKnownSecretsDeep } from '../lib/redaction.ts';
import { forApiCaller } from './api-text.ts';
import { Authenticator } from './auth.ts';
import { RateLimiter } from '../lib/rate-limiter.ts';
import { HttpError, toHttpFailure, type ApiErrorBody } from './http-errors.ts';
import { ServerMetrics } from './metrics.ts';
import { adminRoutes } from './routes/admin.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { pipelineRoutes } from './routes/pipelines.ts';
import { RouteMethods } from './route-methods.ts';
import { RunLauncher } from './runs.ts';
import type { ServerOptions, ServerParts } from './types.ts';

export const DEFAULT_SERVER_OPTIONS: Omit<ServerOptions, 'version'> = {
  bodyLimit: 64 * 1024,
  // Cloud Run sets K_SERVICE in a service's container.
  trustedProxyHops: process.env.K_SERVICE ? 1 : 0,
  globalRatePerSecond: 2_000,
  authCacheTtlMs: 5_000,
  runCacheTtlMs: 500,
  logLevel: 'info',
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Longest request target (path and query) served; longer ones get 414. Node refuses request heads over 16 KiB anyway. */
export const MAX_URL_LENGTH = 8_192;

/** Cloud Logging reads `severity`; pino's numeric level means nothing to it. */
const severity = (label: string) => ({ severity: label === 'fatal' ? 'CRITICAL' : label === 'warn' ? 'WARNING' : label.toUpperCase() });

/**
 * The HTTP API of `convergence serve` on Fastify: the same services as the CLI behind API-key and
 * admin-key checks, rate limits, request ids, security headers, Prometheus metrics and JSON logs
 * that never carry a key.
 */
export async function buildServer(ctx: ServiceContext, options: ServerOptions): Promise<{ app: FastifyInstance; parts: ServerParts }> {
  const app = Fastify({
    bodyLimit: options.bodyLimit,
    trustProxy: trustHops(options.trustedProxyHops ?? 0),
    // Errors of the HTTP parser (header too large, malformed request line) get the error envelope too.
    clientErrorHandler: answerClientError,
    // Unknown fields are refused (400), not silently dropped: a typo must not start a different run.
    ajv: { customOptions: { removeAdditional: false } },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Our own onResponse line replaces Fastify's two lines per request.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    logger: {
      level: options.logLevel,
      messageKey: 'message',
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      base: { service: 'convergence', environment: ctx.env.name },
      formatters: { level: severity },
      // No secret this process resolved reaches a log line, whatever field carries it.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map(redactLogArgument) as Parameters<typeof method>);
        },
      },
      redact: {
        paths: ['req.headers["x-api-key"]', 'req.headers["x-admin-key"]', 'req.headers.authorization', 'api_key', '*.api_key'],
        censor: '[redacted]',
      },
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    return503OnClosing: true,
  });
  const metrics = new ServerMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const auth = new Authenticator(ctx, {
    cacheTtlMs: options.authCacheTtlMs,
    ...(options.authFailureLimits ? { failureLimits: options.authFailureLimits } : {}),
    ...(options.maxConcurrentVerifications !== undefined ? { maxConcurrentVerifications: options.maxConcurrentVerifications } : {}),
    ...(options.keyIndexRefreshMs !== undefined ? { keyIndexRefreshMs: options.keyIndexRefreshMs } : {}),
    ...(options.unlistedKeyLimits ? { unlistedLimits: options.unlistedKeyLimits } : {}),
    onTouchError: (err) => app.log.warn({ err: (err as Error).message }, 'could not record a key use'),
    onRefreshError: (err) => app.log.warn({ err: (err as Error).message }, 'could not reload the index of usable keys'),
    onShed: (reason) => metrics.authShed.inc({ reason }),
  });
  await auth.start();
  app.addHook('onClose', async () => auth.stop());
  const runs = new RunLauncher(ctx, metrics, {
    log: (level, fields, message) => app.log[level](fields, message),
  });

  // Scheduler hooks and curl send `Content-Type: application/json` with no body: that means "no body".
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === '') done(null, null);
    else parseJson(request, text, done);
  });

  await app.register(helmet, {
    // A JSON API: nothing may be framed, scripted or sniffed.
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    hsts: { maxAge: 31_536_000, includeSubDomains: true },
  });
  await app.register(rateLimit, { global: false });

  // One bucket for the whole process: a shield for the warehouse, not a fairness rule (that is the tenant limit).
  const globalLimit =
    options.globalRatePerSecond > 0
      ? new RateLimiter({ requestsPerSecond: options.globalRatePerSecond, burst: options.globalRatePerSecond })
      : undefined;
  const tenantLimit = app.rateLimit({
    keyGenerator: (request) => request.principal?.tenantId ?? 'anonymous',
    max: (request) => options.tenantRatePerMinute ?? request.principal?.requestsPerMinute ?? 60,
    timeWindow: 60_000,
    onExceeded: () => metrics.rateLimited.inc({ scope: 'tenant' }),
    errorResponseBuilder: (request, context) =>
      new HttpError(
        429,
        'RATE_LIMITED',
        `tenant "${request.principal?.tenantId}" exceeded ${context.max} requests per minute; retry in ${context.after}`,
      ),
  });

  const methods = new RouteMethods();
  app.addHook('onRoute', (route) => methods.add(route.method, route.url));
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('cache-control', 'no-store');
    if (request.url.length > MAX_URL_LENGTH) {
      throw new HttpError(
        414,
        'URI_TOO_LONG',
        `the request path and query are ${request.url.length} characters; at most ${MAX_URL_LENGTH}`,
      );
    }
  });
  if (globalLimit) {
    app.addHook('onRequest', async (request) => {
      if (!request.url.startsWith('/api/')) return;
      const waitMs = globalLimit.tryAcquire();
      if (waitMs > 0) {
        metrics.rateLimited.inc({ scope: 'global' });
        throw new HttpError(
          429,
          'RATE_LIMITED',
          `the server is at its limit of ${options.globalRatePerSecond} API requests per second; retry shortly`,
          {
            'retry-after': String(Math.ceil(waitMs / 1000)),
          },
        );
      }
    });
  }
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    const fields = {
      method: request.method,
      route,
      url: request.routeOptions.url ? request.url.split('?')[0] : undefined,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      tenant_id: request.principal?.tenantId,
    };
    // 503 is a deliberate refusal (load shed, shutting down), logged like any answer; other 5xx are failures.
    if (reply.statusCode >= 500 && reply.statusCode !== 503) request.log.error(fields, 'request failed');
    else if (request.url !== '/health' && request.url !== '/metrics') request.log.info(fields, 'request');
  });

  app.setErrorHandler((err: FastifyError | HttpError | Error, request, reply) => {
    const failure = httpFailureOf(err);
    if (failure.unexpected) request.log.error({ err }, 'unexpected failure');
    if (failure.statusCode === 401) metrics.authFailures.inc({ kind: isAdminPath(request.url) ? 'admin' : 'api' });
    void reply
      .code(failure.statusCode)
      .headers(failure.headers)
      .send(errorBody(failure.body.error, String(request.id)));
  });
  app.setNotFoundHandler((request, reply) => {
    const target = `${request.method} ${shortPath(request.url)}`;
    const allowed = methods.allowed(request.url.split('?')[0]!);
    if (allowed.length > 0) {
      void reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send(
          errorBody(
            { code: 'METHOD_NOT_ALLOWED', message: `${target} is not allowed; this path takes ${allowed.join(', ')}` },
            String(request.id),
          ),
        );
      return;
    }
    void reply.code(404).send(errorBody({ code: 'NOT_FOUND', message: `no route ${target}` }, String(request.id)));
  });

  const parts: ServerParts = {
    ctx,
    options,
    auth,
    runs,
    metrics,
    requireTenant: async (request, reply) => {
      request.principal = await auth.tenant(headerOf(request, 'x-api-key'), request.ip);
      await tenantLimit.call(app, request, reply);
    },
    requireAdmin: async (request) => {
      await auth.admin(headerOf(request, 'x-admin-key'), request.ip);
    },
  };
  await app.register(healthRoutes(parts));
  await app.register(pipelineRoutes(parts), { prefix: '/api/v1/pipelines' });
  await app.register(adminRoutes(parts), { prefix: '/api/v1' });
  await app.register(docsRoutes(parts));
  return { app, parts };
}

/**
 * The documented error body, with every text made fit for an API caller: no CLI flag, no secret.
 */
function errorBody(error: ApiErrorBody['error'], requestId: string): ApiErrorBody {
  return {
    error: {
      code: error.code,
      message: forApiCaller(error.message),
      ...(error.suggestion ? { suggestion: forApiCaller(error.suggestion) } : {}),
    },
    request_id: requestId,
  };
}

/** A path for a message: no query, and not the whole of an absurdly long one. */
function shortPath(url: string): string {
  const path = url.split('?')[0]!;
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (a head over 16 KiB, a broken
 * request line, a client too slow to send its head) answered in the error envelope.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', `the request line and headers exceed ${Math.round(http.maxHeaderSize / 1024)} KiB`]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', 'the request was not received in time']
        : [400, 'BAD_REQUEST', 'the request is not valid HTTP'];
  const body = JSON.stringify(errorBody({ code, message }, randomUUID()));
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** Log arguments with every secret this process resolved replaced; errors become plain, redacted objects. */
function redactLogArgument(arg: unknown): unknown {
  if (typeof arg === 'string') return redactKnownSecrets(arg);
  if (arg instanceof Error) return plainError(arg);
  if (!arg || typeof arg !== 'object' || Array.isArray(arg)) return arg;
  return Object.fromEntries(
    Object.entries(arg).map(([key, value]) => [key, value instanceof Error ? plainError(value) : redactKnownSecretsDeep(value)]),
  );
}

function plainError(err: Error): Record<string, unknown> {
  const cause = err.cause instanceof Error ? { cause: plainError(err.cause) } : {};
  return {
    type: err.name,
    message: redactKnownSecrets(err.message),
    ...(err.stack ? { stack: redactKnownSecrets(err.stack) } : {}),
    ...cause,
  };
}

/** Paths behind the admin key: their failed authentications count as admin ones. */
const isAdminPath = (url: string) => url.includes('/admin/') || url.includes('/scheduler/') || url.startsWith('/docs/');

/** Trusts the `hops` proxies nearest to the server (what proxy-addr makes of a number). */
const trustHops = (hops: number) => (_address: string, hop: number) => hop < hops;

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** Fastify's own errors (bad JSON, body too large, schema validation) keep their status; service errors map by exit code. */
function httpFailureOf(err: FastifyError | HttpError | Error): ReturnType<typeof toHttpFailure> {
  if (err instanceof HttpError) {
    return {
      statusCode: err.statusCode,
      body: { error: { code: err.code, message: err.message } },
      headers: err.headers,
      unexpected: false,
    };
  }
  const fastifyError = err as FastifyError;
  if ('validation' in fastifyError && fastifyError.validation) {
    return { statusCode: 400, body: { error: { code: 'VALIDATION', message: fastifyError.message } }, headers: {}, unexpected: false };
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    const code =
      fastifyError.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : fastifyError.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
    return {
      statusCode: fastifyError.statusCode,
      body: { error: { code, message: fastifyError.message } },
      headers: {},
      unexpected: false,
    };
  }
  return toHttpFailure(err);
}
