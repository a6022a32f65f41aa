import { parseDuration } from '../../lib/duration.ts';
import { usageError, validationError } from '../../lib/errors.ts';
import type { GcpEnvironment } from '../../config/schema.ts';
import type { ServiceContext } from '../context.ts';
import type { AnalysisThresholds } from './analysis.ts';
import { CANARY_DEFAULTS, checkRevisionName, checkTagLength, deployTarget, shortId, type DeployTarget } from './common.ts';

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

type CanarySettings = NonNullable<GcpEnvironment['canary']>;

/** Everything decided before any API call: tag, revision name, steps, thresholds. Refuses a tag too long for the service. */
export function planDeploy(ctx: ServiceContext, request: DeployRequest): DeployPlan {
  const target = deployTarget(ctx);
  const canarySettings = target.settings.canary ?? {};
  const image = imageToDeploy(request, target);
  const id = shortId();
  const tag = request.tag ?? `canary-${id}`;
  checkTagLength(target.service, tag);
  const revision = `${target.service}-${id}`;
  checkRevisionName(target.service, revision);
  const steps = request.canary ? parseSteps(request.steps ?? canarySettings.steps ?? [...CANARY_DEFAULTS.steps]) : [100];
  const interval = request.interval ?? canarySettings.interval ?? CANARY_DEFAULTS.interval;
  const intervalMs = parseDuration(interval, '--interval');
  const thresholds = analysisThresholds(request, canarySettings);
  const healthPath = canarySettings.health_path ?? CANARY_DEFAULTS.health_path;
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
    stages: stageTitles({ source: request.source, revision, tag, healthPath, steps, interval }),
  };
}

/** --image, else the environment's image unless --source builds one; one of them must exist. */
function imageToDeploy(request: DeployRequest, target: DeployTarget): string | undefined {
  if (request.image && request.source) throw usageError('--image and --source exclude each other');
  const image = request.image ?? (request.source ? undefined : target.settings.image);
  if (!image && !request.source) {
    throw usageError('nothing to deploy: no image', {
      suggestion: `pass --image or --source, or set environments.${target.env}.image in convergence.yaml`,
    });
  }
  return image;
}

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

/** Flags first, then the environment's canary settings, then the defaults. */
const analysisThresholds = (request: DeployRequest, canary: CanarySettings): AnalysisThresholds => ({
  maxErrorRate: request.maxErrorRate ?? canary.max_error_rate ?? CANARY_DEFAULTS.max_error_rate,
  maxLatencyP95Ms: request.maxLatencyP95Ms ?? canary.max_latency_p95_ms ?? CANARY_DEFAULTS.max_latency_p95_ms,
  failureLimit: request.failureLimit ?? canary.failure_limit ?? CANARY_DEFAULTS.failure_limit,
});

interface StagesOf {
  source: string | undefined;
  revision: string;
  tag: string;
  healthPath: string;
  steps: number[];
  interval: string;
}

/** The stage list shown while the deploy runs; runDeploy reports against these indexes. */
function stageTitles({ source, revision, tag, healthPath, steps, interval }: StagesOf): string[] {
  return [
    ...(source ? [`Build image from ${source} (gcloud builds submit)`] : []),
    `Deploy revision ${revision} with no traffic, tag ${tag}`,
    `Health check ${healthPath} of ${tag}`,
    ...steps.map((w, i) => `Step ${i + 1}/${steps.length}: ${w}% to ${revision}${w < 100 ? `, analysis for ${interval}` : ''}`),
    'Record in deployment_history',
  ];
}
