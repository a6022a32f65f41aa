import type { DeployPlan } from './plan.ts';

/**
 * What every revision of the service runs: `convergence serve` on the deploy's environment. The
 * image's default CMD is the job task (`job run-pipeline`), so a revision without args would not
 * serve HTTP at all.
 */
const SERVICE_ARGS = ['serve'] as const;

export const serviceContainer = (plan: DeployPlan) => ({ args: [...SERVICE_ARGS], env: { CONVERGENCE_ENV: plan.env } });
