import { cloudEnv } from '../../backends/factory.ts';
import type { ServiceContext } from '../context.ts';
import type { DeployPlan } from './plan.ts';
import type { RollbackRequest } from './rollback.ts';

/** The question a deploy or rollback asks before it changes the traffic of a production environment. */
export interface ProductionPrompt {
  question: string;
  /** What is refused when nobody can answer, e.g. `deploy to production environment "prod"`. */
  action: string;
}

const productionEnv = (ctx: ServiceContext) => {
  const env = cloudEnv(ctx.env);
  return env?.settings.production ? env : undefined;
};

/** The confirmation a deploy needs: none for a dry run or an environment not marked `production`. */
export function deployPrompt(ctx: ServiceContext, plan: DeployPlan): ProductionPrompt | undefined {
  const env = productionEnv(ctx);
  if (plan.dryRun || !env) return undefined;
  return {
    question: `Deploy ${plan.image ?? plan.source} to the PRODUCTION service ${plan.service} (${env.name})?`,
    action: `deploy to production environment "${env.name}"`,
  };
}

/**
 * The confirmation a rollback needs: none for a dry run or an environment not marked `production`.
 * Asked before anything else is checked, so it names the service as convergence.yaml has it.
 */
export function rollbackPrompt(ctx: ServiceContext, request: RollbackRequest): ProductionPrompt | undefined {
  const env = productionEnv(ctx);
  if (request.dryRun || !env) return undefined;
  return {
    question: `Roll back the PRODUCTION service ${env.settings.service} (${env.name})${request.to ? ` to ${request.to}` : ''}?`,
    action: `roll back production environment "${env.name}"`,
  };
}
