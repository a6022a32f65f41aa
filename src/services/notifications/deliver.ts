import { SendFailure } from '../../backends/notify/port.ts';
import type { NotificationMessage } from '../../domain/notifications.ts';
import { redactKnownSecrets, redactKnownSecretsDeep, type Redactor } from '../../lib/redaction.ts';
import { retry, type RetryPolicy } from '../../lib/retry.ts';
import type { ServiceContext } from '../context.ts';
import { recordDeliveries } from './record.ts';
import { describeTarget, resolveTarget } from './resolve.ts';
import type { PlacedTarget, TargetOrigin } from './targets.ts';

/** Three attempts, 1 s then 2 s apart (or what a 429's Retry-After asks), all within DELIVERY_BUDGET_MS. */
const POLICY: RetryPolicy = { attempts: 3, baseDelayMs: 1_000, maxDelayMs: 4_000, jitter: 'equal' };
/** The most one delivery may take, retries included: a run's command waits for it before it exits. */
const DELIVERY_BUDGET_MS = 10_000;
/** One attempt's limit, so a target that hangs leaves time for another attempt. */
const ATTEMPT_TIMEOUT_MS = 4_000;

type DeliveryState = 'DELIVERED' | 'FAILED' | 'REFUSED';

export interface Delivery {
  targetType: 'webhook' | 'slack' | 'pubsub';
  /** The target as shown: host, secret name or topic. */
  target: string;
  origin: TargetOrigin;
  outcome: DeliveryState;
  attempts: number;
  /** What the target answered, or why it failed; never a secret. */
  detail: string;
  /** The target refused our credentials or permissions. */
  auth: boolean;
}

export interface DeliverOptions {
  /** The tenant a pipeline's targets belong to (their secrets are that tenant's). */
  tenantId?: string;
  budgetMs?: number;
}

/**
 * Sends `message` to each target at once, each with its own retries under one time budget, and
 * records every outcome. Never throws: a failed delivery is a warning and a row, never a failure
 * of the run or operation it reports on.
 */
export async function deliver(
  ctx: ServiceContext,
  message: NotificationMessage,
  targets: PlacedTarget[],
  options: DeliverOptions = {},
): Promise<Delivery[]> {
  if (targets.length === 0) return [];
  const clean = redactKnownSecretsDeep(message);
  const deliveries = await Promise.all(
    targets.map((placed) => deliverOne(ctx, clean, placed, options).catch((err: unknown) => crashed(placed, err))),
  );
  for (const d of deliveries) {
    if (d.outcome !== 'DELIVERED')
      ctx.warn(`notification ${message.event} to ${d.targetType} ${d.target} ${d.outcome.toLowerCase()}: ${d.detail}`);
  }
  await recordDeliveries(ctx, message, deliveries).catch((err: unknown) =>
    ctx.warn(`could not record notification deliveries: ${redactKnownSecrets(err instanceof Error ? err.message : String(err))}`),
  );
  return deliveries;
}

async function deliverOne(
  ctx: ServiceContext,
  message: NotificationMessage,
  placed: PlacedTarget,
  options: DeliverOptions,
): Promise<Delivery> {
  const base = { targetType: placed.target.type, target: describeTarget(placed.target), origin: placed.origin };
  const resolved = await resolveTarget(ctx, placed, options.tenantId);
  if (!resolved.ok) return { ...base, outcome: 'REFUSED', attempts: 0, detail: resolved.reason, auth: false };
  const budget = AbortSignal.timeout(options.budgetMs ?? DELIVERY_BUDGET_MS);
  let attempts = 0;
  try {
    const notifier = await ctx.backends.notifier(resolved.target);
    const answer = await retry(
      (attempt) => {
        attempts = attempt;
        return notifier.send(message, AbortSignal.any([budget, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]));
      },
      POLICY,
      {
        retryable: (err) => err instanceof SendFailure && err.retryable,
        delayFor: (err) => (err instanceof SendFailure ? err.retryAfterMs : undefined),
        signal: budget,
      },
    );
    return { ...base, outcome: 'DELIVERED', attempts, detail: answer, auth: false };
  } catch (err) {
    const refused = err instanceof SendFailure && err.refused;
    return {
      ...base,
      outcome: refused ? 'REFUSED' : 'FAILED',
      attempts,
      detail: failureText(err, resolved.redactor, budget),
      auth: err instanceof SendFailure && err.auth,
    };
  }
}

function failureText(err: unknown, redactor: Redactor, budget: AbortSignal): string {
  const text =
    budget.aborted && !(err instanceof SendFailure)
      ? `no answer within ${DELIVERY_BUDGET_MS / 1000} s`
      : err instanceof Error
        ? err.message
        : String(err);
  return redactKnownSecrets(redactor.redact(text));
}

function crashed(placed: PlacedTarget, err: unknown): Delivery {
  return {
    targetType: placed.target.type,
    target: describeTarget(placed.target),
    origin: placed.origin,
    outcome: 'FAILED',
    attempts: 0,
    detail: redactKnownSecrets(err instanceof Error ? err.message : String(err)),
    auth: false,
  };
}
