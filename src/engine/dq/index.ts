export { runDataQuality } from './run.ts';
export { nameRules, type DqRuleInput } from './rules.ts';
export { expressionOrigin } from './expression.ts';
export type { DqWarehouse, RuleResult } from './types.ts';
