import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { notifyOperatorEvent } from '../notifications/notify.ts';
import { describeTraffic, recordHistory } from './common.ts';
import { ownedTrafficChange } from './traffic.ts';
import type { Canary } from './types.ts';

/** Restores the traffic saved before the deploy, records the rollback and throws DEPLOY_ROLLED_BACK (exit 9). */
export async function abortAndRestore(canary: Canary, reason: string, cause?: unknown): Promise<never> {
  const { run, saved, steps } = canary;
  const { plan, platform } = run;
  const fresh = await platform.getService(plan.service);
  const restored = await platform.setTraffic(
    plan.service,
    ownedTrafficChange(plan.service, [saved, ...canary.sent], saved),
    fresh?.etag ?? '',
  );
  run.emit({ type: 'restored', traffic: saved, at: Date.now() });
  await recordHistory(run.ctx, run.target, {
    kind: 'DEPLOY',
    status: 'ROLLED_BACK',
    image: run.image,
    revision: plan.revision,
    previousRevision: canary.previousRevision,
    trafficBefore: saved,
    trafficAfter: restored ? restored.traffic : saved,
    steps,
    message: reason,
    startedAt: run.startedAt,
  });
  notifyOperatorEvent(run.ctx, 'deploy_rolled_back', {
    summary: `Deploy of ${plan.revision} to ${plan.service} was rolled back: ${reason}`,
    status: 'ROLLED_BACK',
    exit_code: ExitCode.deployAborted,
    error: reason,
    links: { history: `convergence rollback --env ${run.target.env} --list` },
  });
  throw new ConvergenceError(
    'DEPLOY_ROLLED_BACK',
    ExitCode.deployAborted,
    `deploy of ${plan.revision} rolled back: ${reason}; traffic restored to ${describeTraffic(saved)}`,
    {
      suggestion: 'look at the logs of the new revision (`gcloud run revisions logs read`) and fix it before deploying again',
      data: { revision: plan.revision, reason, restoredTraffic: saved, steps },
      ...(cause ? { cause } : {}),
    },
  );
}
