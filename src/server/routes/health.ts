import type { FastifyPluginAsync } from 'fastify';
import { LATEST_SCHEMA_VERSION, appliedSchemaVersion } from '../../services/metadata/migrations.ts';
import type { ServerParts } from '../types.ts';

/** The service name the seeds' health checks and dashboards expect. */
const SERVICE_NAME = 'convergence-data-pipeline';

/** Liveness (/health, no I/O), readiness (/health/ready: warehouse reachable, metadata schema current) and /metrics. */
export const healthRoutes =
  (parts: ServerParts): FastifyPluginAsync =>
  async (app) => {
    app.get('/health', async () => ({
      status: 'healthy',
      service: SERVICE_NAME,
      version: parts.options.version,
      environment: parts.ctx.env.name,
      timestamp: new Date().toISOString(),
    }));

    app.get('/health/ready', async (request, reply) => {
      const checks: Record<string, { status: 'ok' | 'fail'; detail?: string }> = {};
      try {
        const warehouse = await parts.ctx.backends.warehouse();
        const schemaVersion = await appliedSchemaVersion(warehouse);
        // The kind of warehouse only: its describe may be a file path of this machine.
        checks.warehouse = { status: 'ok', detail: warehouse.dialect.name };
        checks.bootstrap =
          schemaVersion === LATEST_SCHEMA_VERSION
            ? { status: 'ok', detail: `schema version ${schemaVersion}` }
            : {
                status: 'fail',
                detail: `schema version ${schemaVersion}, expected ${LATEST_SCHEMA_VERSION}: the operator runs \`convergence bootstrap\` on environment ${parts.ctx.env.name}`,
              };
      } catch (err) {
        // The cause (which may name files, hosts or projects) goes to the log, not to an unauthenticated caller.
        request.log.warn({ err }, 'readiness check failed');
        checks.warehouse = { status: 'fail', detail: 'the warehouse did not answer; the server log has the cause' };
      }
      const ready = Object.values(checks).every((c) => c.status === 'ok') && 'bootstrap' in checks;
      void reply.code(ready ? 200 : 503);
      return {
        status: ready ? 'ready' : 'not_ready',
        service: SERVICE_NAME,
        environment: parts.ctx.env.name,
        checks,
        runs_in_progress: parts.runs.inProgress,
        timestamp: new Date().toISOString(),
      };
    });

    app.get('/metrics', async (_request, reply) => {
      void reply.header('content-type', parts.metrics.contentType);
      return parts.metrics.text();
    });
  };
