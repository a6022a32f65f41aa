import { randomBytes, randomUUID } from 'node:crypto';
import { cloudEnv, requiredSetting } from '../../backends/factory.ts';
import type { RunPlatform, ServiceState, TrafficTarget } from '../../backends/run-platform/port.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import { usageError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { DEPLOYMENT_HISTORY_TABLE, METADATA_DATASET } from '../metadata/tables.ts';
import { probeUrlFromEnv, type ProbeUrlOf } from './probe.ts';

const MAX_TAG_AND_SERVICE = 46;
const MAX_REVISION_NAME = 63;

export const CANARY_DEFAULTS = {
  steps: [25, 50, 100],
  interval: '10m',
  max_error_rate: 0.05,
  max_latency_p95_ms: 2000,
  failure_limit: 2,
  health_path: '/health',
} as const;

export interface DeployTarget {
  env: string;
  settings: GcpEnvironment;
  service: string;
  project: string;
  region: string;
}

const notCloud = (ctx: ServiceContext) =>
  usageError(`environment "${ctx.env.name}" is local: deploy and rollback act on a cloud environment`, {
    suggestion: 'pass --env with a cloud environment of convergence.yaml',
  });

/** The cloud environment and Cloud Run service a deploy or rollback acts on; no API call. */
export function deployTarget(ctx: ServiceContext): DeployTarget {
  const env = cloudEnv(ctx.env);
  if (!env || !ctx.backends.runPlatform) throw notCloud(ctx);
  const service = requiredSetting(env, 'service', 'deploy and rollback: the Cloud Run service they act on');
  const project = env.settings.project || process.env.GOOGLE_CLOUD_PROJECT;
  if (!project) throw usageError('no Google Cloud project', { suggestion: 'set `project:` for the environment in convergence.yaml' });
  return { env: env.name, settings: env.settings, service, project, region: env.settings.region };
}

export interface PlatformHandle {
  platform: RunPlatform;
  close(): Promise<void>;
}

/** The run platform of the environment deployTarget accepts; the caller closes it. */
export async function openPlatform(ctx: ServiceContext): Promise<PlatformHandle> {
  deployTarget(ctx);
  const open = ctx.backends.runPlatform;
  if (!open) throw notCloud(ctx);
  const platform = await open();
  return { platform, close: () => platform.close() };
}

/** A short id for the tag and revision name: lowercase, DNS-safe. */
export const shortId = () => randomBytes(3).toString('hex');

export function checkTagLength(service: string, tag: string): void {
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(tag)) {
    throw usageError(`tag "${tag}" is not a valid Cloud Run tag`, {
      suggestion: 'use lowercase letters, digits and hyphens, starting with a letter',
    });
  }
  if (tag.length + service.length > MAX_TAG_AND_SERVICE) {
    throw usageError(
      `tag "${tag}" is too long for service "${service}": tag and service name together may have at most ${MAX_TAG_AND_SERVICE} characters (got ${tag.length + service.length})`,
      { suggestion: `use a tag of at most ${Math.max(0, MAX_TAG_AND_SERVICE - service.length)} characters, or a shorter service name` },
    );
  }
}

export function checkRevisionName(service: string, revision: string): void {
  if (!revision.startsWith(`${service}-`) || revision.length > MAX_REVISION_NAME) {
    throw usageError(`revision name "${revision}" must start with "${service}-" and have at most ${MAX_REVISION_NAME} characters`);
  }
}

export interface ProbeSettings {
  healthPath: string;
  urlOf: ProbeUrlOf;
}

export function probeSettings(settings: GcpEnvironment, urlOf?: ProbeUrlOf): ProbeSettings {
  return { healthPath: settings.canary?.health_path ?? CANARY_DEFAULTS.health_path, urlOf: urlOf ?? probeUrlFromEnv() };
}

export function healthUrl(probe: ProbeSettings, target: Parameters<ProbeUrlOf>[0]): string {
  return `${probe.urlOf(target).replace(/\/$/, '')}${probe.healthPath}`;
}

/** The revision that carries most of the traffic. */
export function servingRevision(state: ServiceState | undefined): string | undefined {
  if (!state) return undefined;
  const statuses = [...state.trafficStatuses].filter((t) => t.percent > 0).sort((a, b) => b.percent - a.percent);
  return statuses[0]?.revision || state.latestReadyRevision;
}

/** The message of a failure, whatever was thrown. */
export const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

export const describeTraffic = (traffic: TrafficTarget[]) =>
  traffic.map((t) => `${t.revision ?? 'LATEST'} ${t.percent}%${t.tag ? ` (tag ${t.tag})` : ''}`).join(', ');

export interface HistoryRow {
  kind: 'DEPLOY' | 'FIRST_DEPLOY' | 'ROLLBACK';
  status: 'SUCCEEDED' | 'ROLLED_BACK' | 'FAILED';
  image?: string | undefined;
  revision?: string | undefined;
  previousRevision?: string | undefined;
  trafficBefore?: unknown;
  trafficAfter?: unknown;
  steps?: unknown;
  message?: string | undefined;
  startedAt: Date;
}

/**
 * Appends a row to deployment_history. A deploy that happened is never failed for want of the
 * table: a missing table (metadata not bootstrapped or not migrated) becomes a warning.
 */
export async function recordHistory(ctx: ServiceContext, target: DeployTarget, row: HistoryRow): Promise<string | undefined> {
  const id = randomUUID();
  try {
    const warehouse = await ctx.backends.warehouse();
    if (!(await warehouse.tableExists(METADATA_DATASET, DEPLOYMENT_HISTORY_TABLE))) {
      ctx.warn(
        `not recorded in ${METADATA_DATASET}.${DEPLOYMENT_HISTORY_TABLE}: the table does not exist (run \`convergence bootstrap --env ${target.env}\`)`,
      );
      return undefined;
    }
    await warehouse.insert(METADATA_DATASET, DEPLOYMENT_HISTORY_TABLE, [
      {
        deployment_id: id,
        env: target.env,
        service: target.service,
        kind: row.kind,
        status: row.status,
        image: row.image ?? null,
        revision: row.revision ?? null,
        previous_revision: row.previousRevision ?? null,
        traffic_before: row.trafficBefore === undefined ? null : JSON.stringify(row.trafficBefore),
        traffic_after: row.trafficAfter === undefined ? null : JSON.stringify(row.trafficAfter),
        steps: row.steps === undefined ? null : JSON.stringify(row.steps),
        message: row.message ?? null,
        started_at: row.startedAt,
        finished_at: ctx.now(),
        deployed_by: ctx.actor,
      },
    ]);
    return id;
  } catch (err) {
    ctx.warn(`not recorded in ${METADATA_DATASET}.${DEPLOYMENT_HISTORY_TABLE}: ${messageOf(err)}`);
    return undefined;
  }
}
