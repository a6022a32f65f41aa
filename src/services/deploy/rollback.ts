import { notifyOperatorEvent } from '../notifications/notify.ts';
import { pinnedTraffic } from '../../backends/run-platform/port.ts';
import type { RevisionInfo, RunPlatform, TrafficTarget } from '../../backends/run-platform/port.ts';
import { ConvergenceError, ExitCode, notFoundError, usageError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import { deployTarget, healthUrl, openPlatform, probeSettings, recordHistory, servingRevision, type DeployTarget } from './common.ts';
import { followWithJob, type JobUpdate } from './job.ts';
import { ProbeIdentity } from './probe-auth.ts';
import { healthGate, type ProbeUrlOf } from './probe.ts';

export interface RevisionRow {
  revision: string;
  created: string;
  ready: boolean;
  percent: number;
  tags: string[];
  image: string | undefined;
}

export interface RollbackRequest {
  to?: string | undefined;
  dryRun: boolean;
}

export interface RollbackHooks {
  probeUrl?: ProbeUrlOf;
  platform?: RunPlatform;
}

interface RollbackPlan {
  env: string;
  service: string;
  from: string | undefined;
  to: string;
  trafficBefore: TrafficTarget[];
  trafficAfter: TrafficTarget[];
}

export interface RollbackResult extends RollbackPlan {
  dryRun: boolean;
  /** The pipeline job put back on the restored revision's image; undefined when the environment names no job. */
  job: JobUpdate | undefined;
  healthy: boolean | undefined;
  deploymentId: string | undefined;
}

async function withPlatform<R>(ctx: ServiceContext, hooks: RollbackHooks, work: (platform: RunPlatform) => Promise<R>): Promise<R> {
  const handle = hooks.platform ? { platform: hooks.platform, close: async () => {} } : await openPlatform(ctx);
  try {
    return await work(handle.platform);
  } finally {
    await handle.close();
  }
}

/** Revisions of the environment's service, newest first, with the traffic each one serves. */
export async function listRevisions(ctx: ServiceContext, hooks: RollbackHooks = {}): Promise<RevisionRow[]> {
  const target = deployTarget(ctx);
  return withPlatform(ctx, hooks, async (platform) => {
    const service = await platform.getService(target.service);
    if (!service)
      throw notFoundError(`Cloud Run service ${target.service} is not deployed`, {
        suggestion: `run \`convergence deploy --env ${target.env}\``,
      });
    const revisions = await platform.listRevisions(target.service);
    return revisions.map((r) => {
      const statuses = service.trafficStatuses.filter((t) => t.revision === r.name);
      return {
        revision: r.name,
        created: r.createTime.toISOString(),
        ready: r.ready,
        percent: statuses.reduce((sum, t) => sum + t.percent, 0),
        tags: statuses.flatMap((t) => (t.tag ? [t.tag] : [])),
        image: r.image,
      };
    });
  });
}

/** The ready revision created before `current`, newest first. */
function previousReady(revisions: RevisionInfo[], current: string | undefined): RevisionInfo | undefined {
  const newestFirst = [...revisions].sort((a, b) => b.createTime.getTime() - a.createTime.getTime());
  const at = newestFirst.findIndex((r) => r.name === current);
  return newestFirst.slice(at + 1).find((r) => r.ready && r.name !== current);
}

/**
 * Sends all traffic to an earlier revision at once (no canary steps): `--to`, else the ready
 * revision created before the one serving most traffic. Health-checked after, and recorded.
 */
export async function rollback(ctx: ServiceContext, request: RollbackRequest, hooks: RollbackHooks = {}): Promise<RollbackResult> {
  const target = deployTarget(ctx);
  const startedAt = ctx.now();
  return withPlatform(ctx, hooks, async (platform) => {
    const service = await platform.getService(target.service);
    if (!service) throw notFoundError(`Cloud Run service ${target.service} is not deployed: nothing to roll back`);
    const from = servingRevision(service);
    const to = revisionToRestore(await platform.listRevisions(target.service), request, from, target);
    const trafficBefore = pinnedTraffic(service);
    const trafficAfter = allTrafficTo(to.name, trafficBefore);
    const plan: RollbackPlan = { env: target.env, service: target.service, from, to: to.name, trafficBefore, trafficAfter };
    if (request.dryRun) {
      await platform.setTraffic(target.service, trafficAfter, service.etag, { validateOnly: true });
      const job = to.image ? await followWithJob(platform, target.settings, to.image, { validateOnly: true }) : undefined;
      return { ...plan, dryRun: true, healthy: undefined, deploymentId: undefined, job };
    }
    const identity = new ProbeIdentity(target.settings.public);
    await identity.check(service.uri);
    const after = await platform.setTraffic(target.service, trafficAfter, service.etag);
    // The pipeline job goes back with the service, so remote runs use the restored code too.
    const job = to.image ? await followWithJob(platform, target.settings, to.image) : undefined;
    const uri = after?.uri ?? service.uri;
    const deploymentId = await checkAndRecord({
      ctx,
      target,
      hooks,
      plan,
      to,
      uri,
      identity,
      trafficAfter: after?.traffic ?? trafficAfter,
      startedAt,
    });
    return { ...plan, trafficAfter: after?.traffic ?? trafficAfter, dryRun: false, healthy: true, deploymentId, job };
  });
}

/** --to when it names a ready revision, else the ready revision created before `from`. */
function revisionToRestore(
  revisions: RevisionInfo[],
  request: RollbackRequest,
  from: string | undefined,
  target: DeployTarget,
): RevisionInfo {
  if (!request.to) {
    const previous = previousReady(revisions, from);
    if (!previous)
      throw notFoundError(`no ready revision of ${target.service} older than ${from ?? 'the serving one'}`, {
        suggestion: 'name one with --to',
      });
    return previous;
  }
  const named = revisions.find((r) => r.name === request.to);
  if (!named)
    throw notFoundError(`revision ${request.to} of ${target.service} not found`, {
      suggestion: `list them with \`convergence rollback --env ${target.env} --list\``,
    });
  if (!named.ready)
    throw usageError(`revision ${request.to} is not ready and cannot serve traffic`, {
      ...(named.message ? { data: { message: named.message } } : {}),
    });
  return named;
}

/** Everything to `revision`; tags of other revisions stay reachable at 0%. */
const allTrafficTo = (revision: string, trafficBefore: TrafficTarget[]): TrafficTarget[] => [
  { revision, percent: 100 },
  ...trafficBefore.filter((t) => t.tag).map((t) => ({ ...t, percent: 0 })),
];

interface RolledBack {
  ctx: ServiceContext;
  target: DeployTarget;
  hooks: RollbackHooks;
  plan: RollbackPlan;
  to: RevisionInfo;
  /** The service URL after the traffic change. */
  uri: string;
  identity: ProbeIdentity;
  trafficAfter: TrafficTarget[];
  startedAt: Date;
}

/** Health-checks the revision now serving, records the rollback, and throws (exit 9) when it is unhealthy. */
async function checkAndRecord({
  ctx,
  target,
  hooks,
  plan,
  to,
  uri,
  identity,
  trafficAfter,
  startedAt,
}: RolledBack): Promise<string | undefined> {
  const probe = probeSettings(target.settings, hooks.probeUrl);
  const gate = await healthGate(healthUrl(probe, { service: target.service, revision: to.name, tag: undefined, uri }), {
    attempts: 10,
    needed: 2,
    periodMs: 200,
    timeoutMs: 5000,
    headers: identity.headersFor(uri),
  });
  const deploymentId = await recordHistory(ctx, target, {
    kind: 'ROLLBACK',
    status: gate.ok ? 'SUCCEEDED' : 'FAILED',
    image: to.image,
    revision: to.name,
    previousRevision: plan.from,
    trafficBefore: plan.trafficBefore,
    trafficAfter,
    message: gate.ok ? undefined : `health check failed: ${gate.probes.at(-1)?.error}`,
    startedAt,
  });
  const unhealthy = gate.ok ? undefined : `rolled back to ${to.name}, but it fails its health check (${gate.probes.at(-1)?.error})`;
  // A manual rollback is as much an event for the on-call channel as a canary's automatic one.
  notifyOperatorEvent(ctx, 'deploy_rolled_back', {
    summary: `${target.service} was rolled back by an operator from ${plan.from ?? 'its serving revision'} to ${to.name}`,
    status: gate.ok ? 'ROLLED_BACK' : 'ROLLBACK_UNHEALTHY',
    exit_code: gate.ok ? 0 : ExitCode.deployAborted,
    ...(unhealthy ? { error: unhealthy } : {}),
    links: { history: `convergence rollback --env ${target.env} --list` },
  });
  if (!gate.ok) {
    throw new ConvergenceError('ROLLBACK_UNHEALTHY', ExitCode.deployAborted, unhealthy!, {
      suggestion: `pick another revision with \`convergence rollback --env ${target.env} --list\` and --to`,
      data: { to: to.name, from: plan.from },
    });
  }
  return deploymentId;
}
