import type { PipelineStep } from '../../domain/pipeline.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import type { StepEnv, StepOutcome } from './types.ts';

type DqStep = Extract<PipelineStep, { type: 'dq' }>;

const describe = (r: { ruleName: string; failingCount: number; totalCount: number }) =>
  `${r.ruleName} (${r.failingCount} of ${r.totalCount})`;

/** Checks every rule in one pass over the table; an error-severity failure is the step's verdict. */
export async function runDq(env: StepEnv, step: DqStep): Promise<StepOutcome> {
  const { runDataQuality } = await import('../dq/index.ts');
  env.progress({ message: `checking ${step.rules.length} rules on ${step.table}` });
  const outcome = await runDataQuality(env.warehouse, { dataset: env.dataset, table: step.table, rules: step.rules, now: env.now() });
  env.progress({ rows: outcome.totalRows });
  const notes = outcome.failedWarnings.map((r) => `data quality warning on ${step.table}: ${describe(r)}`);
  const passed = outcome.results.filter((r) => r.passed).length;
  const failure =
    outcome.failedErrors.length > 0
      ? new ConvergenceError(
          'DATA_QUALITY_FAILED',
          ExitCode.dataQualityFailed,
          `data quality failed on ${step.table}: ${outcome.failedErrors.map(describe).join(', ')}`,
          {
            suggestion: 'see the failing values with `convergence pipeline logs <run_id>`; set severity: warn to record without failing',
            data: { failed: outcome.failedErrors.map((r) => ({ rule: r.ruleName, failing: r.failingCount, sample: r.sampleValues })) },
          },
        )
      : undefined;
  return {
    rowsIn: outcome.totalRows,
    rowsOut: outcome.totalRows,
    bytes: 0,
    details: {
      table: step.table,
      rules: outcome.results.length,
      passed,
      failedErrors: outcome.failedErrors.map((r) => r.ruleName),
      failedWarnings: outcome.failedWarnings.map((r) => r.ruleName),
    },
    notes,
    dq: outcome,
    ...(failure ? { failure } : {}),
  };
}
