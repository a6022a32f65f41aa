import { validationError } from '../lib/errors.ts';

/** Subscription plans and the limits a tenant's quota row starts from. */
export const PLANS = {
  starter: { max_pipelines_per_day: 25, max_concurrent_pipelines: 2, max_api_keys: 5, requests_per_minute: 60 },
  professional: { max_pipelines_per_day: 100, max_concurrent_pipelines: 5, max_api_keys: 20, requests_per_minute: 300 },
  scale: { max_pipelines_per_day: 1000, max_concurrent_pipelines: 20, max_api_keys: 100, requests_per_minute: 1200 },
} as const;

export type PlanName = keyof typeof PLANS;
export const PLAN_NAMES = Object.keys(PLANS) as PlanName[];

export function assertPlan(value: string): PlanName {
  if (!(value in PLANS)) {
    throw validationError(`unknown plan ${JSON.stringify(value)}`, {
      suggestion: `choose one of: ${PLAN_NAMES.join(', ')}`,
    });
  }
  return value as PlanName;
}
