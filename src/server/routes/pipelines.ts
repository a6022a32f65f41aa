import type { FastifyPluginAsync } from 'fastify';
import { isCalendarDate } from '../../domain/dates.ts';
import { RUN_STATES, TERMINAL_RUN_STATES } from '../../domain/states.ts';
import { ExitCode, notFoundError, validationError } from '../../lib/errors.ts';
import { parseDuration } from '../../lib/duration.ts';
import { pipelineStats } from '../../services/runs/stats.ts';
import { getRunDetails, listRuns, requestCancel, type RunDetails } from '../../services/runs/store.ts';
import type { ServerParts } from '../types.ts';
import { TtlCache } from '../cache.ts';
import { runView, statsView, stepView } from '../views.ts';

const RUN_ID = { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' } as const;
const NAME = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,62}$' } as const;
const MAX_PAGE = 100;
/** A finished run never changes again; it may be served from memory for longer. */
const FINISHED_RUN_TTL_MS = 60_000;

interface RunBody {
  trigger_by?: string;
  parameters?: Record<string, string>;
  run_date?: string;
  full_refresh?: boolean;
}

interface ListQuery {
  pipeline_id?: string;
  status?: (typeof RUN_STATES)[number];
  since?: string;
  limit?: number;
  page_token?: string;
}

const pageToken = {
  encode: (offset: number) => Buffer.from(JSON.stringify({ o: offset })).toString('base64url'),
  decode: (token: string): number => {
    try {
      const offset = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown }).o;
      if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) return offset;
    } catch {
      // fall through to the error below
    }
    throw validationError('page_token is not one this server issued', {
      suggestion: 'pass next_page_token from the previous page unchanged',
    });
  },
};

/**
 * The tenant API (X-API-Key): start a run, read one, list them, cancel one. A tenant sees only its
 * own runs; another tenant's run answers exactly like a run that does not exist.
 */
export const pipelineRoutes =
  (parts: ServerParts): FastifyPluginAsync =>
  async (app) => {
    const runCache = new TtlCache<RunDetails>({ ttlMs: parts.options.runCacheTtlMs, staleMs: parts.options.runCacheTtlMs });
    const readRun = (runId: string) =>
      runCache.get(
        runId.toLowerCase(),
        () => getRunDetails(parts.ctx, runId),
        (details) => (TERMINAL_RUN_STATES.has(details.run.status) ? FINISHED_RUN_TTL_MS : parts.options.runCacheTtlMs),
      );
    const ownRun = async (tenantId: string, runId: string) => {
      const details = await readRun(runId).catch((err: unknown) => {
        throw (err as { exitCode?: number }).exitCode === ExitCode.notFound ? notFound(runId) : err;
      });
      if (details.run.tenantId !== tenantId) throw notFound(runId);
      return details;
    };

    app.addHook('preHandler', parts.requireTenant);

    app.post<{ Params: { pipeline_id: string }; Body: RunBody | undefined }>(
      '/run/:pipeline_id',
      {
        schema: {
          params: { type: 'object', properties: { pipeline_id: NAME }, required: ['pipeline_id'] },
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: {
              trigger_by: { type: 'string', maxLength: 200 },
              parameters: { type: 'object', additionalProperties: { type: 'string', maxLength: 1000 }, maxProperties: 50 },
              run_date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
              full_refresh: { type: 'boolean' },
            },
          },
        },
      },
      async (request, reply) => {
        const tenantId = request.principal!.tenantId;
        const body = request.body ?? {};
        // Refused before anything is read or written: no run row, no quota slot.
        if (body.run_date !== undefined && !isCalendarDate(body.run_date)) {
          throw validationError(`run_date ${JSON.stringify(body.run_date)} is not a calendar date`, {
            suggestion: 'give a real day as YYYY-MM-DD, e.g. 2025-01-31',
          });
        }
        const started = await parts.runs.start({
          tenantId,
          pipelineId: request.params.pipeline_id,
          triggeredBy: body.trigger_by ?? `key:${request.principal!.apiKeyId.slice(0, 8)}`,
          ...(body.parameters ? { params: body.parameters } : {}),
          ...(body.run_date ? { runDate: body.run_date } : {}),
          ...(body.full_refresh ? { fullRefresh: true } : {}),
        });
        void reply.code(202).header('location', `/api/v1/pipelines/runs/${started.runId}`);
        return {
          pipeline_logging_id: started.runId,
          tenant_id: started.tenantId,
          pipeline_id: started.pipelineId,
          status: started.status,
          mode: started.mode,
          ...(started.execution ? { execution_name: started.execution } : {}),
          ...(started.configVersion ? { config_version: started.configVersion } : {}),
          links: { self: `/api/v1/pipelines/runs/${started.runId}` },
        };
      },
    );

    app.get<{ Params: { run_id: string } }>(
      '/runs/:run_id',
      { schema: { params: { type: 'object', properties: { run_id: RUN_ID }, required: ['run_id'] } } },
      async (request) => {
        const details = await ownRun(request.principal!.tenantId, request.params.run_id);
        return { ...runView(details.run), steps: details.steps.map(stepView) };
      },
    );

    app.get<{ Querystring: ListQuery }>(
      '/runs',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              pipeline_id: NAME,
              status: { type: 'string', enum: [...RUN_STATES] },
              since: { type: 'string', format: 'date-time' },
              limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 20 },
              page_token: { type: 'string', maxLength: 200 },
            },
          },
        },
      },
      async (request) => {
        const query = request.query;
        const limit = query.limit ?? 20;
        const offset = query.page_token ? pageToken.decode(query.page_token) : 0;
        // One row more than asked for tells whether another page exists.
        const rows = await listRuns(parts.ctx, {
          tenantId: request.principal!.tenantId,
          limit: limit + 1,
          offset,
          ...(query.pipeline_id ? { pipelineId: query.pipeline_id } : {}),
          ...(query.status ? { status: query.status } : {}),
          ...(query.since ? { since: new Date(query.since) } : {}),
        });
        const page = rows.slice(0, limit);
        return {
          runs: page.map(runView),
          count: page.length,
          next_page_token: rows.length > limit ? pageToken.encode(offset + limit) : null,
        };
      },
    );

    app.get<{ Querystring: { since?: string; pipeline_id?: string } }>(
      '/stats',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { since: { type: 'string', maxLength: 20, default: '7d' }, pipeline_id: NAME },
          },
        },
      },
      async (request) => {
        const since = request.query.since ?? '7d';
        const window = parseDuration(since, 'since');
        const stats = await pipelineStats(parts.ctx, {
          tenantId: request.principal!.tenantId,
          since: new Date(parts.ctx.now().getTime() - window),
          ...(request.query.pipeline_id ? { pipelineId: request.query.pipeline_id } : {}),
        });
        return { since, pipelines: stats.map(statsView) };
      },
    );

    app.delete<{ Params: { run_id: string } }>(
      '/runs/:run_id',
      { schema: { params: { type: 'object', properties: { run_id: RUN_ID }, required: ['run_id'] } } },
      async (request, reply) => {
        const tenantId = request.principal!.tenantId;
        const { run } = await ownRun(tenantId, request.params.run_id);
        const cancel = await requestCancel(parts.ctx, run.runId);
        parts.runs.abortLocal(run.runId);
        runCache.delete(run.runId.toLowerCase());
        void reply.code(202);
        return {
          pipeline_logging_id: cancel.runId,
          tenant_id: cancel.tenantId,
          pipeline_id: cancel.pipelineId,
          status: cancel.status,
          cancel_requested: true,
          message: cancel.changed ? 'the run stops at its next checkpoint and ends CANCELLED' : 'a cancel was already requested',
        };
      },
    );
  };

function notFound(runId: string) {
  return notFoundError(`run ${runId} not found`, { suggestion: 'list your runs with GET /api/v1/pipelines/runs' });
}
