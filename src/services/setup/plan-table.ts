import { isPlannedLater, type SetupRunResult } from './run.ts';

/** One row of the plan table. */
export interface PlanRow {
  step: string;
  action: string;
  resource: string;
  detail: string;
}

/** One row per planned change; a step with none gets one row saying why (in place, skipped, or planned later). */
export function planRows(result: SetupRunResult): PlanRow[] {
  return result.steps.flatMap((step): PlanRow[] => {
    if (step.note) return [{ step: step.id, action: '-', resource: '-', detail: step.note }];
    if (step.changes.length === 0) return [{ step: step.id, action: '-', resource: '-', detail: 'nothing to change' }];
    return step.changes.map((change) => ({ step: step.id, ...change }));
  });
}

const pendingPlan = (result: SetupRunResult) => result.steps.some(isPlannedLater);

/** One line saying what the plan amounts to. */
export function planSummary(result: SetupRunResult): string {
  const changes = result.steps.reduce((sum, step) => sum + step.changes.length, 0);
  const where = `project ${result.project} (environment ${result.env})`;
  if (changes === 0 && !pendingPlan(result)) return `Nothing to change: ${where} is set up.`;
  return `${result.dryRun ? 'Dry run, nothing written: ' : ''}${changes} change(s) planned in ${where}.`;
}
