import { pinnedTraffic, type TrafficTarget } from '../../backends/run-platform/port.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { healthUrl, recordHistory } from './common.ts';
import { followWithJob } from './job.ts';
import { healthGate } from './probe.ts';
import { serviceContainer } from './revision.ts';
import { gateOptions } from './timing.ts';
import type { DeployBase, DeployResult, DeployRun } from './types.ts';

/**
 * The first deploy of a service. Run cannot create a service with a no-traffic revision: no
 * canary, 100% at once, then a health check; there is nothing earlier to restore on failure.
 */
export async function createService(run: DeployRun, base: DeployBase): Promise<DeployResult> {
  const { plan, platform, stages } = run;
  // The service URL is not known before it exists: a token for its would-be name proves the
  // credentials can mint one, before anything is created.
  await run.identity.check(`https://${plan.service}.run.app`);
  // The job first: creating the service puts all traffic on the new image at once.
  const job = await followWithJob(platform, run.target.settings, run.image);
  await platform.deployRevision(plan.service, {
    image: run.image,
    ...serviceContainer(plan),
    settings: run.settings,
    revisionName: plan.revision,
    noTraffic: false,
  });
  stages?.finish(run.stage.deploy, {
    status: 'ok',
    title: `Created service ${plan.service} with revision ${plan.revision} at 100% (first deploy: no canary)`,
  });
  const trafficAfter = await checkCreatedService(run);
  run.stage.steps.forEach((i) => stages?.finish(i, { status: 'skipped', message: 'first deploy: no canary' }));
  stages?.start(run.stage.record);
  const deploymentId = await recordFirstDeploy(run, 'SUCCEEDED', trafficAfter);
  stages?.finish(run.stage.record, { status: 'ok' });
  return { ...base, dryRun: false, tag: undefined, trafficAfter, steps: [], deploymentId, job };
}

/** The health gate on the service's own URL; returns its traffic, or records the failure and throws (exit 9). */
async function checkCreatedService(run: DeployRun): Promise<TrafficTarget[]> {
  const { plan, platform, stages } = run;
  stages?.start(run.stage.gate);
  const created = await platform.getService(plan.service);
  const uri = created?.uri ?? '';
  const gate = await healthGate(healthUrl(run.probe, { service: plan.service, revision: plan.revision, tag: undefined, uri }), {
    ...gateOptions(plan),
    headers: run.identity.headersFor(uri),
  });
  const trafficAfter = created ? pinnedTraffic(created) : [];
  if (gate.ok) {
    stages?.finish(run.stage.gate, { status: 'ok', title: `Health check ${plan.healthPath}: healthy` });
    return trafficAfter;
  }
  const error = gate.probes.at(-1)?.error;
  stages?.finish(run.stage.gate, { status: 'failed', message: `health check failed: ${error}` });
  await recordFirstDeploy(run, 'FAILED', trafficAfter, 'health check failed');
  throw new ConvergenceError(
    'DEPLOY_UNHEALTHY',
    ExitCode.deployAborted,
    `first deploy of ${plan.service}: revision ${plan.revision} fails its health check (${error})`,
    { suggestion: 'there is no earlier revision to go back to: fix the image and deploy again' },
  );
}

const recordFirstDeploy = (run: DeployRun, status: 'SUCCEEDED' | 'FAILED', trafficAfter: TrafficTarget[], message?: string) =>
  recordHistory(run.ctx, run.target, {
    kind: 'FIRST_DEPLOY',
    status,
    image: run.image,
    revision: run.plan.revision,
    trafficAfter,
    ...(message ? { message } : {}),
    startedAt: run.startedAt,
  });
