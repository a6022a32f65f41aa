import { pinnedTraffic } from '../../backends/run-platform/port.ts';
import type { RunPlatform, ServiceState } from '../../backends/run-platform/port.ts';
import type { ServiceContext } from '../context.ts';
import { imageToShip } from './build.ts';
import { shipCanary } from './canary.ts';
import { deployTarget, openPlatform, probeSettings, servingRevision, type DeployTarget } from './common.ts';
import { validateRevision } from './dry-run.ts';
import { createService } from './first-deploy.ts';
import type { DeployPlan } from './plan.ts';
import { ProbeIdentity } from './probe-auth.ts';
import { settingsDiff, wantedServiceSettings } from './settings.ts';
import type { DeployBase, DeployHooks, DeployResult, DeployRun, StageIndexes } from './types.ts';

export { planDeploy, type DeployPlan, type DeployRequest } from './plan.ts';
export type { DeployEvent, DeployHooks, DeployResult } from './types.ts';

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

/** The story of a deploy: the image, the service as it is, then a validation, a creation or a canary. */
async function deployWith(
  ctx: ServiceContext,
  plan: DeployPlan,
  target: DeployTarget,
  platform: RunPlatform,
  hooks: DeployHooks,
): Promise<DeployResult> {
  const startedAt = ctx.now();
  const probe = { ...probeSettings(target.settings, hooks.probeUrl), healthPath: plan.healthPath };
  const settings = wantedServiceSettings(target.env, target.settings);
  const identity = new ProbeIdentity(target.settings.public);
  const image = await imageToShip(plan, target, hooks.stages);
  const emit: DeployRun['emit'] = (event) => hooks.onEvent?.(event);
  const stages = hooks.stages;
  const run: DeployRun = {
    ctx,
    plan,
    target,
    platform,
    probe,
    identity,
    settings,
    image,
    startedAt,
    stages,
    stage: stageIndexes(plan),
    emit,
  };
  run.stages?.start(run.stage.deploy);
  const before = await platform.getService(plan.service);
  const base = resultBase(run, before);
  if (plan.dryRun) return validateRevision(run, base);
  if (!before) return createService(run, base);
  return shipCanary(run, before, base);
}

/** Where each phase reports in plan.stages: after the build (when there is one), in planDeploy's order. */
function stageIndexes(plan: DeployPlan): StageIndexes {
  const deploy = plan.source ? 1 : 0;
  const steps = plan.steps.map((_, index) => deploy + 2 + index);
  return { deploy, gate: deploy + 1, steps, record: deploy + 2 + steps.length };
}

function resultBase(run: DeployRun, before: ServiceState | undefined): DeployBase {
  return {
    env: run.plan.env,
    service: run.plan.service,
    image: run.image,
    revision: run.plan.revision,
    previousRevision: servingRevision(before),
    firstDeploy: before === undefined,
    trafficBefore: before ? pinnedTraffic(before) : [],
    plan: run.plan,
    serviceChanges: settingsDiff(before?.settings, run.settings),
  };
}
