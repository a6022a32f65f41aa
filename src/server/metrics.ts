import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of one server instance (its own registry, so tests can run several). Route
 * labels are the route patterns, never the raw URL, so ids do not explode the label space.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'convergence_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'convergence_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'convergence_auth_failures_total',
    help: 'Requests refused for a missing or invalid key, by kind of key (api, admin)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'convergence_rate_limited_total',
    help: 'Requests refused with 429 by a rate limit, by scope (global, tenant)',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });
  readonly authShed = new Counter({
    name: 'convergence_auth_shed_total',
    help: 'Key checks answered without the warehouse or key store, by reason (address_blocked, not_listed, unlisted_budget, verifications_busy)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly runsStarted = new Counter({
    name: 'convergence_pipeline_runs_started_total',
    help: 'Pipeline runs started through the API, by where they run (local, remote)',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });
  readonly runsFinished = new Counter({
    name: 'convergence_pipeline_runs_finished_total',
    help: 'In-process pipeline runs that ended, by final status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly runsRefused = new Counter({
    name: 'convergence_pipeline_runs_refused_total',
    help: 'Run requests refused at admission, by reason code (LOCK_HELD, QUOTA_EXCEEDED, ...)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly runsInProgress = new Gauge({
    name: 'convergence_pipeline_runs_in_progress',
    help: 'Pipeline runs executing in this process',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'convergence_' });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
