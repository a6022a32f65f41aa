import type { RunPlatform, ServiceSettings, TrafficTarget } from '../../backends/run-platform/port.ts';
import type { StageReporter } from '../../lib/stages.ts';
import type { ServiceContext } from '../context.ts';
import type { StepAnalysis } from './analysis.ts';
import type { DeployTarget, ProbeSettings } from './common.ts';
import type { JobUpdate } from './job.ts';
import type { DeployPlan } from './plan.ts';
import type { ProbeIdentity } from './probe-auth.ts';
import type { ProbeUrlOf } from './probe.ts';
import type { SettingChange } from './settings.ts';

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
  /** Service settings the deploy changes (current → wanted); on a dry run, would change. */
  serviceChanges: SettingChange[];
  /** The pipeline job put on the new image; undefined when the environment names no job. */
  job: JobUpdate | undefined;
}

/** The result fields known once the service was read, before anything changed. */
export type DeployBase = Pick<
  DeployResult,
  'env' | 'service' | 'image' | 'revision' | 'previousRevision' | 'firstDeploy' | 'trafficBefore' | 'plan' | 'serviceChanges'
>;

/** Indexes into plan.stages, as planDeploy lists them. */
export interface StageIndexes {
  deploy: number;
  gate: number;
  steps: number[];
  record: number;
}

/** What the phases of one deploy share: where it deploys, what it ships, where it reports. */
export interface DeployRun {
  ctx: ServiceContext;
  plan: DeployPlan;
  target: DeployTarget;
  platform: RunPlatform;
  probe: ProbeSettings;
  /** Who the probes call the service as (an ID token unless the service is public). */
  identity: ProbeIdentity;
  /** What the environment wants of the service beside the image. */
  settings: ServiceSettings;
  /** The image the revision runs (built from plan.source when there is one). */
  image: string;
  startedAt: Date;
  stages: StageReporter | undefined;
  stage: StageIndexes;
  emit(event: DeployEvent): void;
}

/** A canary deploy under way: the traffic to restore on failure, and the steps taken so far. */
export interface Canary {
  run: DeployRun;
  /** The service URL: the audience of the probes' ID tokens. */
  serviceUri: string;
  saved: TrafficTarget[];
  previousRevision: string | undefined;
  steps: StepResult[];
  /** Every traffic list this canary sent, including one whose update failed (it may have applied). */
  sent: TrafficTarget[][];
}
