import type { NotificationKind, NotificationTarget } from '../../domain/notifications.ts';
import { targetWants } from '../../domain/notifications.ts';
import type { PipelineConfig } from '../../domain/pipeline.ts';
import type { ServiceContext } from '../context.ts';

/**
 * Who wrote a target decides what it may do: the operator's convergence.yaml (`environment`) may
 * name system secrets and loopback or private hosts; a tenant's pipeline file (`pipeline`) is
 * untrusted input, confined to that tenant's secrets, https and public addresses.
 */
export type TargetOrigin = 'environment' | 'pipeline';

export interface PlacedTarget {
  target: NotificationTarget;
  origin: TargetOrigin;
}

/** The `notifications:` of the environment the context runs in (none when it has no entry). */
function environmentTargets(ctx: ServiceContext): NotificationTarget[] {
  return ctx.workspace.config.environments[ctx.env.name]?.notifications ?? [];
}

/** The targets of a pipeline's events: its own list when it has one (it replaces the environment's), else the environment's. */
export function targetsFor(ctx: ServiceContext, pipeline?: Pick<PipelineConfig, 'notifications'>): PlacedTarget[] {
  if (pipeline?.notifications) return pipeline.notifications.map((target) => ({ target, origin: 'pipeline' }));
  return environmentTargets(ctx).map((target) => ({ target, origin: 'environment' }));
}

/** The targets that subscribed to `event`. */
export const targetsWanting = (targets: PlacedTarget[], event: NotificationKind): PlacedTarget[] =>
  targets.filter((placed) => targetWants(placed.target, event));

/** The Pub/Sub topics the operator's environment names: the only ones a pipeline may publish to. */
export const environmentTopics = (ctx: ServiceContext): Set<string> =>
  new Set(environmentTargets(ctx).flatMap((target) => (target.type === 'pubsub' ? [target.topic] : [])));
