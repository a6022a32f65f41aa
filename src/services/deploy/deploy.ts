import path from 'node:path';
import { pinnedTraffic } from '../../backends/run-platform/port.ts';
import type { RunPlatform, ServiceState, TrafficTarget } from '../../backends/run-platform/port.ts';
import { parseDuration } from '../../lib/duration.ts';
import { ConvergenceError, ExitCode, usageError, validationError } from '../../lib/errors.ts';
import type { StageReporter } from '../../lib/stages.ts';
import type { ServiceContext } from '../context.ts';
import { CanaryAnalysis, type AnalysisThresholds, type StepAnalysis } from './analysis.ts';
import {
  CANARY_DEFAULTS,
  checkRevisionName,
  checkTagLength,
  deployTarget,
  describeTraffic,
  healthUrl,
  openPlatform,
  probeSettings,
  recordHistory,
  servingRevision,
  shortId,
  type DeployTarget,
  type ProbeSettings,
} from './common.ts';
import { healthGate, type ProbeUrlOf } from './probe.ts';

export interface DeployRequest {
  canary: boolean;
  image?: string | undefined;
  source?: string | undefined;
  steps?: number[] | undefined;
  interval?: string | undefined;
  tag?: string | undefined;
  maxErrorRate?: number | undefined;
  maxLatencyP95Ms?: number | undefined;
  failureLimit?: number | undefined;
  dryRun: boolean;
}

export interface DeployPlan {
  env: string;
  service: string;
  project: string;
  region: string;
  canary: boolean;
  image: string | undefined;
  source: string | undefined;
  tag: string;
  revision: string;
  /** Weights of the new revision, ending at 100. */
  steps: number[];
  intervalMs: number;
  thresholds: AnalysisThresholds;
  healthPath: string;
  dryRun: boolean;
  /** The listr2 stages, in order. */
  stages: string[];
}

export type DeployEvent =
  | { type: 'step'; revision: string; weight: number; at: number }
  | { type: 'analysis'; weight: number; analysis: StepAnalysis; at: number }
  | { type: 'restored'; traffic: TrafficTarget[]; at: number };

export interface DeployHooks {
  stages?: StageReporter;
  onEvent?: (event: DeployEvent) => void;
  /** Maps a revision to the URL probed; default: CONVERGENCE_PROBE_URL, else Run's tag URL. */
  probeUrl?: ProbeUrlOf;
  platform?: RunPlatform;
}

export interface StepResult {
  weight: number;
  traffic: TrafficTarget[];
  analysis?: StepAnalysis | undefined;
}

export interface DeployResult {
  env: string;
  service: string;
  dryRun: boolean;
  firstDeploy: boolean;
  image: string;
  revision: string;
  previousRevision: string | undefined;
  tag: string | undefined;
  trafficBefore: TrafficTarget[];
  trafficAfter: TrafficTarget[];
  steps: StepResult[];
  deploymentId: string | undefined;
  plan: DeployPlan;
}

/**
 * What every revision of the service runs: `convergence serve` on the deploy's environment. The
 * image's default CMD is the job task (`job run-pipeline`), so a revision without args would not
 * serve HTTP at all.
 */
const SERVICE_ARGS = ['serve'] as const;
const serviceContainer = (plan: DeployPlan) => ({ args: [...SERVICE_ARGS], env: { CONVERGENCE_ENV: plan.env } });

function parseSteps(steps: number[]): number[] {
  const out = [...steps];
  for (let i = 0; i < out.length; i++) {
    const w = out[i]!;
    if (!Number.isInteger(w) || w < 1 || w > 100) throw validationError(`--steps: ${w} is not a percentage between 1 and 100`);
    if (i > 0 && w <= out[i - 1]!) throw validationError(`--steps must increase: ${out.join(',')}`);
  }
  if (out[out.length - 1] !== 100) out.push(100);
  return out;
}

/** Everything decided before any API call: tag, revision name, steps, thresholds. Refuses a tag too long for the service. */
export function planDeploy(ctx: ServiceContext, request: DeployRequest): DeployPlan {
  const target = deployTarget(ctx);
  const canarySettings = target.settings.canary ?? {};
  if (request.image && request.source) throw usageError('--image and --source exclude each other');
  const image = request.image ?? (request.source ? undefined : target.settings.image);
  if (!image && !request.source) {
    throw usageError('nothing to deploy: no image', {
      suggestion: `pass --image or --source, or set environments.${target.env}.image in convergence.yaml`,
    });
  }
  const id = shortId();
  const tag = request.tag ?? `canary-${id}`;
  checkTagLength(target.service, tag);
  const revision = `${target.service}-${id}`;
  checkRevisionName(target.service, revision);
  const steps = request.canary ? parseSteps(request.steps ?? canarySettings.steps ?? [...CANARY_DEFAULTS.steps]) : [100];
  const intervalMs = parseDuration(request.interval ?? canarySettings.interval ?? CANARY_DEFAULTS.interval, '--interval');
  const thresholds: AnalysisThresholds = {
    maxErrorRate: request.maxErrorRate ?? canarySettings.max_error_rate ?? CANARY_DEFAULTS.max_error_rate,
    maxLatencyP95Ms: request.maxLatencyP95Ms ?? canarySettings.max_latency_p95_ms ?? CANARY_DEFAULTS.max_latency_p95_ms,
    failureLimit: request.failureLimit ?? canarySettings.failure_limit ?? CANARY_DEFAULTS.failure_limit,
  };
  const healthPath = canarySettings.health_path ?? CANARY_DEFAULTS.health_path;
  const stages = [
    ...(request.source ? [`Build image from ${request.source} (gcloud builds submit)`] : []),
    `Deploy revision ${revision} with no traffic, tag ${tag}`,
    `Health check ${healthPath} of ${tag}`,
    ...steps.map(
      (w, i) =>
        `Step ${i + 1}/${steps.length}: ${w}% to ${revision}${w < 100 ? `, analysis for ${request.interval ?? canarySettings.interval ?? CANARY_DEFAULTS.interval}` : ''}`,
    ),
    'Record in deployment_history',
  ];
  return {
    env: target.env,
    service: target.service,
    project: target.project,
    region: target.region,
    canary: request.canary,
    image,
    source: request.source,
    tag,
    revision,
    steps,
    intervalMs,
    thresholds,
    healthPath,
    dryRun: request.dryRun,
    stages,
  };
}

/** The traffic list at `weight`% on the new revision: the saved targets scaled into the rest, tagged ones kept at 0%. */
export function weightedTraffic(saved: TrafficTarget[], revision: string, weight: number, tag: string | undefined): TrafficTarget[] {
  const rest = 100 - weight;
  const serving = saved.filter((t) => t.percent > 0);
  const total = serving.reduce((sum, t) => sum + t.percent, 0) || 1;
  const exact = serving.map((t) => (t.percent * rest) / total);
  const shares = exact.map(Math.floor);
  let left = rest - shares.reduce((a, b) => a + b, 0);
  const order = exact.map((v, i) => ({ i, frac: v - Math.floor(v) })).sort((a, b) => b.frac - a.frac);
  for (const { i } of order) {
    if (left <= 0) break;
    shares[i]! += 1;
    left -= 1;
  }
  const old = saved
    .map((t) => {
      const index = serving.indexOf(t);
      return { ...t, percent: index >= 0 ? shares[index]! : 0 };
    })
    .filter((t) => t.percent > 0 || t.tag);
  return [...old, { revision, percent: weight, ...(tag && weight < 100 ? { tag } : {}) }];
}

const rolledBack = (message: string, data: Record<string, unknown>, cause?: unknown) =>
  new ConvergenceError('DEPLOY_ROLLED_BACK', ExitCode.deployAborted, message, {
    suggestion: 'look at the logs of the new revision (`gcloud run revisions logs read`) and fix it before deploying again',
    data,
    ...(cause ? { cause } : {}),
  });

/** `gcloud builds submit` of the source directory; returns the image it pushed. */
async function buildImage(plan: DeployPlan, target: DeployTarget): Promise<string> {
  const base = (target.settings.image ?? `${plan.region}-docker.pkg.dev/${plan.project}/convergence/${plan.service}`).replace(
    /[:@][^/]*$/,
    '',
  );
  const image = `${base}:${plan.revision.slice(plan.service.length + 1)}`;
  const { execa } = await import('execa');
  const dir = path.resolve(plan.source!);
  const result = await execa('gcloud', ['builds', 'submit', dir, '--tag', image, '--project', plan.project, '--quiet'], {
    reject: false,
    stdin: 'ignore',
  });
  if (result.failed) {
    const why =
      (result as { code?: string }).code === 'ENOENT'
        ? 'gcloud is not on PATH'
        : String(result.stderr || result.message)
            .trim()
            .split('\n')
            .slice(-3)
            .join(' ');
    throw new ConvergenceError('BUILD_FAILED', ExitCode.unexpected, `gcloud builds submit failed: ${why}`, {
      suggestion: 'install the Google Cloud SDK and run `gcloud auth login`, or pass --image with a built image',
    });
  }
  return image;
}

/**
 * Ships plan.image (or builds plan.source): a new revision with no traffic under a tag, a health
 * gate on the tag URL, then traffic shifted step by step while the analysis probes the tag. Any
 * failure after the revision exists restores the traffic list saved before the deploy (exit 9).
 * A service that does not exist yet is created with 100% on the new revision, then health-checked.
 */
export async function runDeploy(ctx: ServiceContext, plan: DeployPlan, hooks: DeployHooks = {}): Promise<DeployResult> {
  const target = deployTarget(ctx);
  const handle = hooks.platform ? { platform: hooks.platform, close: async () => {} } : await openPlatform(ctx);
  try {
    return await deployWith(ctx, plan, target, handle.platform, hooks);
  } finally {
    await handle.close();
  }
}

async function deployWith(
  ctx: ServiceContext,
  plan: DeployPlan,
  target: DeployTarget,
  platform: RunPlatform,
  hooks: DeployHooks,
): Promise<DeployResult> {
  const startedAt = ctx.now();
  const stages = hooks.stages;
  const emit = (event: DeployEvent) => hooks.onEvent?.(event);
  const probe: ProbeSettings = { ...probeSettings(target.settings, hooks.probeUrl), healthPath: plan.healthPath };
  let stage = 0;
  const next = () => stage++;

  let image = plan.image;
  if (plan.source) {
    const i = next();
    stages?.start(i);
    if (plan.dryRun) {
      stages?.finish(i, { status: 'skipped', message: 'dry run: not built' });
      image = `${plan.source} (built at deploy time)`;
    } else {
      image = await buildImage(plan, target);
      stages?.finish(i, { status: 'ok', title: `Built ${image}` });
    }
  }
  const deployStage = next();
  const gateStage = next();
  const stepStages = plan.steps.map(() => next());
  const recordStage = next();

  stages?.start(deployStage);
  const before = await platform.getService(plan.service);
  const firstDeploy = before === undefined;
  const saved = before ? pinnedTraffic(before) : [];
  const previousRevision = servingRevision(before);
  const base = {
    env: plan.env,
    service: plan.service,
    image: image!,
    revision: plan.revision,
    previousRevision,
    firstDeploy,
    trafficBefore: saved,
    plan,
  };

  if (plan.dryRun) {
    await platform.deployRevision(plan.service, {
      image: plan.source ? 'gcr.io/cloudrun/placeholder' : image!,
      ...serviceContainer(plan),
      revisionName: plan.revision,
      noTraffic: !firstDeploy,
      ...(firstDeploy ? {} : { tag: plan.tag }),
      validateOnly: true,
    });
    stages?.finish(deployStage, { status: 'ok', title: `Validated revision ${plan.revision} (dry run: nothing changed)` });
    return { ...base, dryRun: true, tag: firstDeploy ? undefined : plan.tag, trafficAfter: saved, steps: [], deploymentId: undefined };
  }

  if (firstDeploy) {
    // Run cannot create a service with a no-traffic revision: no canary, 100% at once, then a health check.
    await platform.deployRevision(plan.service, {
      image: image!,
      ...serviceContainer(plan),
      revisionName: plan.revision,
      noTraffic: false,
    });
    stages?.finish(deployStage, {
      status: 'ok',
      title: `Created service ${plan.service} with revision ${plan.revision} at 100% (first deploy: no canary)`,
    });
    stages?.start(gateStage);
    const created = await platform.getService(plan.service);
    const gate = await healthGate(
      healthUrl(probe, { service: plan.service, revision: plan.revision, tag: undefined, uri: created?.uri ?? '' }),
      gateOptions(plan),
    );
    const after = created ? pinnedTraffic(created) : [];
    if (!gate.ok) {
      stages?.finish(gateStage, { status: 'failed', message: `health check failed: ${gate.probes.at(-1)?.error}` });
      await recordHistory(ctx, target, {
        kind: 'FIRST_DEPLOY',
        status: 'FAILED',
        image,
        revision: plan.revision,
        trafficAfter: after,
        message: 'health check failed',
        startedAt,
      });
      throw new ConvergenceError(
        'DEPLOY_UNHEALTHY',
        ExitCode.deployAborted,
        `first deploy of ${plan.service}: revision ${plan.revision} fails its health check (${gate.probes.at(-1)?.error})`,
        {
          suggestion: 'there is no earlier revision to go back to: fix the image and deploy again',
        },
      );
    }
    stages?.finish(gateStage, { status: 'ok', title: `Health check ${plan.healthPath}: healthy` });
    stepStages.forEach((i) => stages?.finish(i, { status: 'skipped', message: 'first deploy: no canary' }));
    stages?.start(recordStage);
    const deploymentId = await recordHistory(ctx, target, {
      kind: 'FIRST_DEPLOY',
      status: 'SUCCEEDED',
      image,
      revision: plan.revision,
      trafficAfter: after,
      startedAt,
    });
    stages?.finish(recordStage, { status: 'ok' });
    return { ...base, dryRun: false, tag: undefined, trafficAfter: after, steps: [], deploymentId };
  }

  if (before.traffic.some((t) => t.tag === plan.tag))
    throw usageError(`tag "${plan.tag}" is already in use on ${plan.service}`, { suggestion: 'pass another --tag' });
  const steps: StepResult[] = [];
  const abort = async (reason: string, cause?: unknown): Promise<never> => {
    const fresh = await platform.getService(plan.service);
    const restored = await platform.setTraffic(plan.service, saved, fresh?.etag ?? '');
    emit({ type: 'restored', traffic: saved, at: Date.now() });
    const after = restored ? restored.traffic : saved;
    await recordHistory(ctx, target, {
      kind: 'DEPLOY',
      status: 'ROLLED_BACK',
      image,
      revision: plan.revision,
      previousRevision,
      trafficBefore: saved,
      trafficAfter: after,
      steps,
      message: reason,
      startedAt,
    });
    throw rolledBack(
      `deploy of ${plan.revision} rolled back: ${reason}; traffic restored to ${describeTraffic(saved)}`,
      {
        revision: plan.revision,
        reason,
        restoredTraffic: saved,
        steps,
      },
      cause,
    );
  };

  try {
    await platform.deployRevision(plan.service, {
      image: image!,
      ...serviceContainer(plan),
      tag: plan.tag,
      revisionName: plan.revision,
      noTraffic: true,
    });
  } catch (err) {
    stages?.finish(deployStage, { status: 'failed', message: err instanceof Error ? err.message : String(err) });
    await abort(`revision ${plan.revision} did not become ready: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  stages?.finish(deployStage, { status: 'ok', title: `Deployed revision ${plan.revision} with no traffic, tag ${plan.tag}` });

  const tagUri = async () => (await platform.getService(plan.service))?.trafficStatuses.find((t) => t.tag === plan.tag)?.uri ?? '';
  const url = healthUrl(probe, { service: plan.service, revision: plan.revision, tag: plan.tag, uri: await tagUri() });
  stages?.start(gateStage);
  const gate = await healthGate(url, gateOptions(plan));
  if (!gate.ok) {
    stages?.finish(gateStage, { status: 'failed', message: `unhealthy: ${gate.probes.at(-1)?.error}` });
    await abort(`health check of ${plan.tag} failed (${gate.probes.at(-1)?.error})`);
  }
  stages?.finish(gateStage, { status: 'ok', title: `Health check ${plan.healthPath} of ${plan.tag}: healthy` });

  const analysis = new CanaryAnalysis(plan.thresholds);
  const period = probePeriod(plan.intervalMs);
  for (const [index, weight] of plan.steps.entries()) {
    const i = stepStages[index]!;
    stages?.start(i);
    const traffic = weightedTraffic(saved, plan.revision, weight, plan.tag);
    try {
      const fresh = await platform.getService(plan.service);
      await platform.setTraffic(plan.service, traffic, fresh?.etag ?? '');
    } catch (err) {
      stages?.finish(i, { status: 'failed', message: err instanceof Error ? err.message : String(err) });
      await abort(`traffic update to ${weight}% failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    emit({ type: 'step', revision: plan.revision, weight, at: Date.now() });
    const step: StepResult = { weight, traffic };
    steps.push(step);
    if (weight < 100) {
      stages?.update(i, `${weight}% on ${plan.revision}; analysing ${plan.tag}`);
      const result = await analysis.runStep(url, plan.intervalMs, period, probeTimeout(plan), (_p, s) =>
        stages?.update(i, `${weight}%: ${s.probes} probes, ${s.errors} errors, p95 ${s.p95Ms}ms`),
      );
      step.analysis = result;
      emit({ type: 'analysis', weight, analysis: result, at: Date.now() });
      const summary = `${result.probes} probes, ${result.errors} errors, p95 ${result.p95Ms}ms`;
      if (result.verdict === 'failed') {
        stages?.finish(i, { status: 'failed', message: `Step ${index + 1}: ${weight}% — analysis failed: ${result.reason} (${summary})` });
        await abort(`analysis failed at ${weight}%: ${result.reason}`);
      }
      stages?.finish(i, {
        status: 'ok',
        title: `Step ${index + 1}/${plan.steps.length}: ${weight}% to ${plan.revision} — analysis passed (${summary})`,
      });
    } else {
      stages?.finish(i, { status: 'ok', title: `Step ${index + 1}/${plan.steps.length}: 100% to ${plan.revision}` });
    }
  }

  const final = await platform.getService(plan.service);
  const trafficAfter = final ? final.traffic : [];
  stages?.start(recordStage);
  const deploymentId = await recordHistory(ctx, target, {
    kind: 'DEPLOY',
    status: 'SUCCEEDED',
    image,
    revision: plan.revision,
    previousRevision,
    trafficBefore: saved,
    trafficAfter,
    steps,
    startedAt,
  });
  stages?.finish(recordStage, { status: deploymentId ? 'ok' : 'skipped', message: 'deployment_history missing' });
  return { ...base, dryRun: false, tag: plan.tag, trafficAfter, steps, deploymentId };
}

/** Probes per analysis step: about ten, every 50 ms to 10 s. */
const probePeriod = (intervalMs: number) => Math.min(10_000, Math.max(50, Math.floor(intervalMs / 10)));
const probeTimeout = (plan: DeployPlan) => Math.min(10_000, Math.max(1000, plan.thresholds.maxLatencyP95Ms * 2));
const gateOptions = (plan: DeployPlan) => ({
  attempts: 10,
  needed: 2,
  periodMs: probePeriod(plan.intervalMs),
  timeoutMs: probeTimeout(plan),
});

export type { ServiceState };
