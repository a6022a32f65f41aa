import { serviceContainer } from './revision.ts';
import type { DeployBase, DeployResult, DeployRun } from './types.ts';

/** Cloud Run's validateOnly of the revision the deploy would create; nothing changes. */
export async function validateRevision(run: DeployRun, base: DeployBase): Promise<DeployResult> {
  const { plan, platform, stages } = run;
  const firstDeploy = base.firstDeploy;
  await platform.deployRevision(plan.service, {
    // A source is not built on a dry run: any image validates the rest of the revision.
    image: plan.source ? 'gcr.io/cloudrun/placeholder' : run.image,
    ...serviceContainer(plan),
    revisionName: plan.revision,
    noTraffic: !firstDeploy,
    ...(firstDeploy ? {} : { tag: plan.tag }),
    validateOnly: true,
  });
  stages?.finish(run.stage.deploy, { status: 'ok', title: `Validated revision ${plan.revision} (dry run: nothing changed)` });
  return {
    ...base,
    dryRun: true,
    tag: firstDeploy ? undefined : plan.tag,
    trafficAfter: base.trafficBefore,
    steps: [],
    deploymentId: undefined,
  };
}
