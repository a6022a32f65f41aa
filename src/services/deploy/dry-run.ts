import { followWithJob } from './job.ts';
import { serviceContainer } from './revision.ts';
import type { DeployBase, DeployResult, DeployRun } from './types.ts';

/**
 * Cloud Run's validateOnly of the revision the deploy would create and of the job it would
 * update, with the settings each would change; nothing changes.
 */
export async function validateRevision(run: DeployRun, base: DeployBase): Promise<DeployResult> {
  const { plan, platform, stages } = run;
  const firstDeploy = base.firstDeploy;
  // A source is not built on a dry run: any image validates the rest of the revision.
  const image = plan.source ? 'gcr.io/cloudrun/placeholder' : run.image;
  await platform.deployRevision(plan.service, {
    image,
    ...serviceContainer(plan),
    settings: run.settings,
    revisionName: plan.revision,
    noTraffic: !firstDeploy,
    ...(firstDeploy ? {} : { tag: plan.tag }),
    validateOnly: true,
  });
  const job = await followWithJob(platform, run.target.settings, image, { validateOnly: true });
  stages?.finish(run.stage.deploy, { status: 'ok', title: `Validated revision ${plan.revision} (dry run: nothing changed)` });
  return {
    ...base,
    dryRun: true,
    tag: firstDeploy ? undefined : plan.tag,
    trafficAfter: base.trafficBefore,
    steps: [],
    deploymentId: undefined,
    job: job && { ...job, changes: job.changes.map((c) => (c.setting === 'image' ? { ...c, wanted: run.image } : c)) },
  };
}
