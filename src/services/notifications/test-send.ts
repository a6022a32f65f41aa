import { usageError } from '../../lib/errors.ts';
import { envFlag, type ServiceContext } from '../context.ts';
import { loadBundle } from '../pipelines/bundle.ts';
import { requireTenant } from '../tenants.ts';
import { deliver, type Delivery } from './deliver.ts';
import { eventMessage } from './messages.ts';
import { targetsFor } from './targets.ts';

export interface TestSendInput {
  /** With pipelineId: that pipeline's targets (its override, else the environment's). */
  tenantId?: string;
  pipelineId?: string;
}

export interface TestSendReport {
  env: string;
  /** Whose targets: the environment's, or a pipeline's override. */
  scope: string;
  deliveries: Delivery[];
  ok: boolean;
}

/**
 * `notifications test`: a sample `test` event to every target of the environment, or of one
 * pipeline, whatever events they subscribe to, with the same secrets, rules and retries as a real
 * event, and recorded the same way. Waits for the outcome.
 */
export async function sendTestNotifications(ctx: ServiceContext, input: TestSendInput): Promise<TestSendReport> {
  if ((input.tenantId === undefined) !== (input.pipelineId === undefined)) {
    throw usageError('--tenant and --pipeline go together', {
      suggestion: "give both to test a pipeline's targets, or neither for the environment's",
    });
  }
  let pipeline;
  if (input.tenantId && input.pipelineId) {
    await requireTenant(ctx, input.tenantId);
    pipeline = (await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId)).pipeline;
  }
  const targets = targetsFor(ctx, pipeline);
  const scope = pipeline?.notifications ? `pipeline ${input.pipelineId} of tenant ${input.tenantId}` : `environment ${ctx.env.name}`;
  if (targets.length === 0) {
    throw usageError(`${scope} has no notification targets`, {
      suggestion: `add a notifications: list to environments.${ctx.env.name} in convergence.yaml (or to the pipeline file)`,
    });
  }
  const message = eventMessage(ctx, 'test', {
    summary: `Test notification from convergence (${scope})`,
    ...(input.tenantId ? { tenant_id: input.tenantId } : {}),
    ...(input.pipelineId ? { pipeline_id: input.pipelineId } : {}),
    status: 'TEST',
    links: { test: `convergence notifications test${envFlag(ctx.env.name)}` },
  });
  const deliveries = await deliver(ctx, message, targets, input.tenantId ? { tenantId: input.tenantId } : {});
  return { env: ctx.env.name, scope, deliveries, ok: deliveries.every((d) => d.outcome === 'DELIVERED') };
}
