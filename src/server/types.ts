/** The server's options and what the routes get from it: app.ts builds them, routes/* import only this module. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceContext } from '../services/context.ts';
import type { VerifiedKey } from '../services/keys.ts';
import type { Authenticator } from './auth.ts';
import type { BucketLimits } from './buckets.ts';
import type { ServerMetrics } from './metrics.ts';
import type { RunLauncher } from './runs.ts';

export interface ServerOptions {
  version: string;
  /** Largest request body accepted, in bytes (413 beyond). */
  bodyLimit: number;
  /** Requests per second over all callers (429 beyond); 0 turns the global limit off. */
  globalRatePerSecond: number;
  /** Overrides every plan's requests_per_minute (tests, benchmarks); undefined uses the plans. */
  tenantRatePerMinute?: number;
  /** How long key verifications and finished run reads are reused. */
  authCacheTtlMs: number;
  /** Failed authentications per client address before 429 (burst, then one more every refillEveryMs). */
  authFailureLimits?: BucketLimits;
  /** Verifications per tenant of keys not yet in the in-memory index (minted elsewhere a moment ago). */
  unlistedKeyLimits?: BucketLimits;
  /** Verifications of keys not seen before that may wait on the warehouse at once; more get 503 at once. */
  maxConcurrentVerifications?: number;
  /** How often the in-memory index of usable keys is reloaded: a key minted by another process is listed within this. */
  keyIndexRefreshMs?: number;
  /**
   * Proxies in front of the server whose X-Forwarded-For entry is trusted, counted from the
   * socket: 1 on Cloud Run (its front end appends the client's address), 0 elsewhere, where the
   * header is ignored (a client could write any address into it).
   */
  trustedProxyHops?: number;
  /** How long a live run's status read is reused (finished runs are kept longer). */
  runCacheTtlMs: number;
  /** pino level, or 'silent'. */
  logLevel: string;
  /** Where JSON log lines go (default stdout). */
  logStream?: NodeJS.WritableStream;
  defaultMetrics?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: VerifiedKey;
  }
}

export interface ServerParts {
  ctx: ServiceContext;
  options: ServerOptions;
  auth: Authenticator;
  runs: RunLauncher;
  metrics: ServerMetrics;
  /** preHandler of tenant routes: X-API-Key, then the tenant's rate limit. */
  requireTenant: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** preHandler of admin and scheduler routes: X-Admin-Key. */
  requireAdmin: (request: FastifyRequest) => Promise<void>;
}
