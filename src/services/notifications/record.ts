import { randomUUID } from 'node:crypto';
import type { NotificationMessage } from '../../domain/notifications.ts';
import { envFlag, type ServiceContext } from '../context.ts';
import { METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE } from '../metadata/tables.ts';
import type { Delivery } from './deliver.ts';

/**
 * One row per delivery in the metadata dataset's notification_deliveries (migration 3): beside
 * the runs and deploys they report on, readable by SQL on either warehouse, and for events that
 * are not runs (a deploy rolled back, a dispatch failed) as well. A warehouse not yet upgraded
 * gets a warning instead of a row; the deliveries themselves happened.
 */
export async function recordDeliveries(ctx: ServiceContext, message: NotificationMessage, deliveries: Delivery[]): Promise<void> {
  if (deliveries.length === 0) return;
  const warehouse = await ctx.backends.warehouse();
  if (!(await warehouse.tableExists(METADATA_DATASET, NOTIFICATION_DELIVERIES_TABLE))) {
    ctx.warn(
      `notification deliveries not recorded: ${METADATA_DATASET}.${NOTIFICATION_DELIVERIES_TABLE} does not exist (run \`convergence bootstrap${envFlag(ctx.env.name)}\`)`,
    );
    return;
  }
  const now = ctx.now();
  await warehouse.insert(
    METADATA_DATASET,
    NOTIFICATION_DELIVERIES_TABLE,
    deliveries.map((d) => ({
      delivery_id: randomUUID(),
      env: ctx.env.name,
      event: message.event,
      tenant_id: message.tenant_id ?? null,
      pipeline_id: message.pipeline_id ?? null,
      pipeline_logging_id: message.run_id ?? null,
      target_type: d.targetType,
      target: d.target,
      target_origin: d.origin,
      outcome: d.outcome,
      attempts: d.attempts,
      detail: d.detail,
      created_at: now,
    })),
  );
}
