import type { ServiceState } from '../../backends/run-platform/port.ts';
import { isConvergenceError, usageError } from '../../lib/errors.ts';
import { abortAndRestore } from './abort.ts';
import { CanaryAnalysis } from './analysis.ts';
import { healthUrl, messageOf, recordHistory } from './common.ts';
import { followWithJob, type JobUpdate } from './job.ts';
import { healthGate } from './probe.ts';
import { serviceContainer } from './revision.ts';
import { gateOptions, probePeriod, probeTimeout } from './timing.ts';
import { ownedTrafficChange, weightedTraffic } from './traffic.ts';
import type { Canary, DeployBase, DeployResult, DeployRun, StepResult } from './types.ts';

/**
 * The deploy of a service that exists: a revision with no traffic under a tag, a health gate on
 * the tag URL, then traffic shifted step by step while the analysis probes the tag, up to the
 * promotion to 100%. Any failure once the revision is asked for restores the saved traffic (exit 9).
 */
export async function shipCanary(run: DeployRun, before: ServiceState, base: DeployBase): Promise<DeployResult> {
  const { plan } = run;
  if (before.traffic.some((t) => t.tag === plan.tag))
    throw usageError(`tag "${plan.tag}" is already in use on ${plan.service}`, { suggestion: 'pass another --tag' });
  // A token now, before anything changes: without credentials for it every probe would fail.
  await run.identity.check(before.uri);
  const canary: Canary = {
    run,
    serviceUri: before.uri,
    saved: base.trafficBefore,
    previousRevision: base.previousRevision,
    steps: [],
    sent: [],
  };
  await createTaggedRevision(canary);
  const url = await checkTag(canary);
  const job = await updateJob(canary);
  const analysis = new CanaryAnalysis(plan.thresholds);
  for (const [index, weight] of plan.steps.entries()) {
    if (weight < 100) await canaryStep(canary, analysis, url, index, weight);
    else await promote(canary, index);
  }
  return { ...(await recordSuccess(canary, base)), job };
}

/** The pipeline job on the new image once the revision is healthy, before any traffic moves. */
async function updateJob(canary: Canary): Promise<JobUpdate | undefined> {
  const { platform, target, image } = canary.run;
  try {
    return await followWithJob(platform, target.settings, image);
  } catch (err) {
    return abortAndRestore(canary, `the pipeline job could not be updated: ${messageOf(err)}`, err);
  }
}

async function createTaggedRevision(canary: Canary): Promise<void> {
  const { plan, platform, stages } = canary.run;
  try {
    await platform.deployRevision(plan.service, {
      image: canary.run.image,
      ...serviceContainer(plan),
      settings: canary.run.settings,
      tag: plan.tag,
      revisionName: plan.revision,
      noTraffic: true,
    });
  } catch (err) {
    stages?.finish(canary.run.stage.deploy, { status: 'failed', message: messageOf(err) });
    await abortAndRestore(canary, `revision ${plan.revision} did not become ready: ${messageOf(err)}`, err);
  }
  stages?.finish(canary.run.stage.deploy, { status: 'ok', title: `Deployed revision ${plan.revision} with no traffic, tag ${plan.tag}` });
}

/**
 * The health gate on the new revision's tag URL; returns that URL, which the analysis probes too.
 * The ID token's audience is the service URL, which Run accepts on its tag URLs.
 */
async function checkTag(canary: Canary): Promise<string> {
  const { plan, platform, stages, stage } = canary.run;
  const tagUri = (await platform.getService(plan.service))?.trafficStatuses.find((t) => t.tag === plan.tag)?.uri ?? '';
  const url = healthUrl(canary.run.probe, { service: plan.service, revision: plan.revision, tag: plan.tag, uri: tagUri });
  stages?.start(stage.gate);
  const gate = await healthGate(url, { ...gateOptions(plan), headers: canary.run.identity.headersFor(canary.serviceUri) });
  if (!gate.ok) {
    stages?.finish(stage.gate, { status: 'failed', message: `unhealthy: ${gate.probes.at(-1)?.error}` });
    await abortAndRestore(canary, `health check of ${plan.tag} failed (${gate.probes.at(-1)?.error})`);
  }
  stages?.finish(stage.gate, { status: 'ok', title: `Health check ${plan.healthPath} of ${plan.tag}: healthy` });
  return url;
}

/** One step below 100%: shift the traffic, then probe the tag for the interval; a failed analysis aborts. */
async function canaryStep(canary: Canary, analysis: CanaryAnalysis, url: string, index: number, weight: number): Promise<void> {
  const { plan, stages, stage, identity } = canary.run;
  const i = stage.steps[index]!;
  const step = await shiftTraffic(canary, index, weight);
  stages?.update(i, `${weight}% on ${plan.revision}; analysing ${plan.tag}`);
  const result = await analysis.runStep(
    url,
    plan.intervalMs,
    probePeriod(plan.intervalMs),
    probeTimeout(plan),
    (_p, s) => stages?.update(i, `${weight}%: ${s.probes} probes, ${s.errors} errors, p95 ${s.p95Ms}ms`),
    identity.headersFor(canary.serviceUri),
  );
  step.analysis = result;
  canary.run.emit({ type: 'analysis', weight, analysis: result, at: Date.now() });
  const summary = `${result.probes} probes, ${result.errors} errors, p95 ${result.p95Ms}ms`;
  if (result.verdict === 'failed') {
    stages?.finish(i, { status: 'failed', message: `Step ${index + 1}: ${weight}% — analysis failed: ${result.reason} (${summary})` });
    await abortAndRestore(canary, `analysis failed at ${weight}%: ${result.reason}`);
  }
  stages?.finish(i, {
    status: 'ok',
    title: `Step ${index + 1}/${plan.steps.length}: ${weight}% to ${plan.revision} — analysis passed (${summary})`,
  });
}

/** The last step: all traffic to the new revision, its tag dropped. */
async function promote(canary: Canary, index: number): Promise<void> {
  const { plan, stages, stage } = canary.run;
  await shiftTraffic(canary, index, 100);
  stages?.finish(stage.steps[index]!, { status: 'ok', title: `Step ${index + 1}/${plan.steps.length}: 100% to ${plan.revision}` });
}

/** Puts `weight`% on the new revision and records the step; a failed update aborts. */
async function shiftTraffic(canary: Canary, index: number, weight: number): Promise<StepResult> {
  const { plan, platform, stages, stage } = canary.run;
  const i = stage.steps[index]!;
  stages?.start(i);
  const traffic = weightedTraffic(canary.saved, plan.revision, weight, plan.tag);
  // Only the split this canary set last is its own: one equal to the saved traffic after a step is
  // someone's rollback.
  const change = ownedTrafficChange(plan.service, [canary.sent.at(-1) ?? canary.saved], traffic);
  canary.sent.push(traffic);
  try {
    const fresh = await platform.getService(plan.service);
    await platform.setTraffic(plan.service, change, fresh?.etag ?? '');
  } catch (err) {
    stages?.finish(i, { status: 'failed', message: messageOf(err) });
    // Someone else's traffic is theirs: nothing to restore, and nothing of it is overwritten.
    if (isConvergenceError(err) && err.code === 'CONFLICT') throw err;
    await abortAndRestore(canary, `traffic update to ${weight}% failed: ${messageOf(err)}`, err);
  }
  canary.run.emit({ type: 'step', revision: plan.revision, weight, at: Date.now() });
  const step: StepResult = { weight, traffic };
  canary.steps.push(step);
  return step;
}

/** Records the finished deploy with the traffic Run reports now. */
async function recordSuccess(canary: Canary, base: DeployBase): Promise<DeployResult> {
  const { ctx, plan, platform, stages, stage, target } = canary.run;
  const final = await platform.getService(plan.service);
  const trafficAfter = final ? final.traffic : [];
  stages?.start(stage.record);
  const deploymentId = await recordHistory(ctx, target, {
    kind: 'DEPLOY',
    status: 'SUCCEEDED',
    image: canary.run.image,
    revision: plan.revision,
    previousRevision: canary.previousRevision,
    trafficBefore: canary.saved,
    trafficAfter,
    steps: canary.steps,
    startedAt: canary.run.startedAt,
  });
  stages?.finish(stage.record, { status: deploymentId ? 'ok' : 'skipped', message: 'deployment_history missing' });
  return { ...base, dryRun: false, tag: plan.tag, trafficAfter, steps: canary.steps, deploymentId, job: undefined };
}
