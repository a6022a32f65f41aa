export { runDataQuality, type RunDataQualityOptions } from './run.ts';
export { defaultRuleName, nameRules, type DqRuleInput } from './rules.ts';
export { checkExpression, expressionOrigin } from './expression.ts';
export { planChecks, type AggregatePlan } from './plan.ts';
export type { DqCheck, DqOutcome, DqSeverity, DqWarehouse, RuleResult } from './types.ts';
