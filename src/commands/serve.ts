import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { parseDuration } from '../lib/duration.ts';
import { usageError } from '../lib/errors.ts';

interface ServeResult {
  url: string;
  environment: string;
  runsStopped: number;
  runsUnfinished: number;
}

const SIZE = /^(\d+)(b|kb|mb)?$/i;
const SIZE_UNIT = { b: 1, kb: 1024, mb: 1024 * 1024 } as const;

export default class Serve extends BaseCommand<typeof Serve> {
  static override summary =
    'Serve the HTTP API: health, tenant pipeline runs (X-API-Key), admin and scheduler hooks (X-Admin-Key), metrics.';
  static override description = `Endpoints:
  GET    /health                                   liveness: service, version, environment, timestamp
  GET    /health/ready                             readiness: warehouse reachable and metadata schema current (503 otherwise)
  GET    /metrics                                  Prometheus text: requests, latencies, runs, auth failures, rate limits
  POST   /api/v1/pipelines/run/{pipeline_id}       start a run (202); 409 while the pipeline runs, 429 over quota
  GET    /api/v1/pipelines/runs/{id}               one run of the caller's tenant, with its steps
  GET    /api/v1/pipelines/runs                    pipeline_id, status, since, limit, page_token
  DELETE /api/v1/pipelines/runs/{id}               cancel (202): the run ends CANCELLED at its next checkpoint
  GET    /api/v1/pipelines/stats                   per pipeline: success rate, p50/p95 duration, rows, last failure (since=7d, pipeline_id)
  POST   /api/v1/admin/bootstrap | /admin/tenants | /admin/api-keys     admin (X-Admin-Key)
  GET    /api/v1/admin/tenants/{id} · DELETE /api/v1/admin/api-keys/{hash}
  POST   /api/v1/scheduler/reset-daily-quotas | /scheduler/cleanup-orphaned-pipelines
  GET    /docs/{tenant}/                           the tenant's site of \`docs generate\` for a browser (admin key as the Basic auth password)

On the local environment runs execute in this process; on cloud environments they start as Cloud Run Jobs executions of the pushed config. Tenant keys come from \`convergence keys create\`, the admin key from \`convergence keys admin create\`. Each tenant gets its plan's requests_per_minute; all API requests share --rate-limit per second.

Logs are JSON lines (Cloud Logging fields) on stdout, on stderr with --json; keys are never logged. SIGTERM or SIGINT stops accepting requests, lets in-flight requests finish, stops runs executing here (recorded CANCELLED) and exits 0; a second signal exits at once.`;
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 8080 --host 0.0.0.0',
    'curl -s localhost:8080/health',
    'curl -s -X POST localhost:8080/api/v1/pipelines/run/p_usage_daily -H "X-API-Key: $KEY"',
    'curl -s localhost:8080/api/v1/pipelines/runs/<run id> -H "X-API-Key: $KEY"',
  ];
  static override flags = {
    port: Flags.integer({ description: 'Port (default: $PORT, then 8080; 0 picks a free one)', min: 0, max: 65_535 }),
    host: Flags.string({ description: 'Address to listen on (default: 0.0.0.0 when $PORT is set, as on Cloud Run; else 127.0.0.1)' }),
    'body-limit': Flags.string({ description: 'Largest request body: bytes, or with kb/mb', default: '64kb' }),
    'rate-limit': Flags.integer({ description: 'API requests per second over all callers; 0 turns it off', default: 2_000, min: 0 }),
    'tenant-rate-limit': Flags.integer({
      description: "Requests per minute for every tenant instead of its plan's requests_per_minute",
      min: 1,
    }),
    'auth-cache-ttl': Flags.string({
      description:
        'How long a key check is reused; for as long again it is used while re-checked. Revocations through the admin API apply at once, others within twice this',
      default: '5s',
    }),
    'log-level': Flags.string({
      description: 'Log level',
      default: 'info',
      options: ['trace', 'debug', 'info', 'warn', 'error', 'silent'],
    }),
    'shutdown-grace': Flags.string({ description: 'How long runs get to record their end on shutdown', default: '8s' }),
  };

  public async run(): Promise<ServeResult> {
    const flags = this.flags;
    const bodyLimit = parseSize(flags['body-limit']);
    const authCacheTtlMs = parseDuration(flags['auth-cache-ttl'], '--auth-cache-ttl');
    const shutdownGraceMs = parseDuration(flags['shutdown-grace'], '--shutdown-grace');
    const port = flags.port ?? (process.env.PORT ? Number(process.env.PORT) : 8080);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw usageError(`$PORT ${JSON.stringify(process.env.PORT)} is not a port`);
    const host = flags.host ?? (process.env.PORT ? '0.0.0.0' : '127.0.0.1');

    const ctx = await this.context();
    const { startServer } = await import('../server/start.ts');
    const { DEFAULT_SERVER_OPTIONS } = await import('../server/app.ts');
    const server = await startServer(
      ctx,
      {
        ...DEFAULT_SERVER_OPTIONS,
        version: this.config.version,
        bodyLimit,
        globalRatePerSecond: flags['rate-limit'],
        ...(flags['tenant-rate-limit'] ? { tenantRatePerMinute: flags['tenant-rate-limit'] } : {}),
        authCacheTtlMs,
        logLevel: flags['log-level'],
        logStream: this.jsonEnabled() ? process.stderr : process.stdout,
      },
      { host, port, shutdownGraceMs },
    );
    process.stderr.write(`convergence serve: listening on ${server.url} (environment ${ctx.env.name}); Ctrl-C stops\n`);

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const onSignal = (received: NodeJS.Signals) => {
        process.once(received, () => process.exit(received === 'SIGINT' ? 130 : 143));
        resolve(received);
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
    const closed = await server.close(signal);
    return { url: server.url, environment: ctx.env.name, ...closed };
  }
}

function parseSize(value: string): number {
  const match = SIZE.exec(value.trim());
  if (!match) throw usageError(`--body-limit ${JSON.stringify(value)} is not a size`, { suggestion: 'e.g. 65536, 64kb or 1mb' });
  const bytes = Number(match[1]) * SIZE_UNIT[(match[2]?.toLowerCase() ?? 'b') as keyof typeof SIZE_UNIT];
  if (bytes < 1024) throw usageError('--body-limit must be at least 1kb');
  return bytes;
}
