/**
 * `convergence setup --env <cloud>`: plan every step (reads only), show the plan, ask on a
 * production environment, then apply step by step, each step reading again just before it writes,
 * so a rerun after a failure plans only what is left. A closing doctor checks the result.
 */
import { cloudEnv, type CloudEnv } from '../../backends/factory.ts';
import { gcpTarget } from '../../backends/gcp/clients.ts';
import { toConvergenceError } from '../../backends/gcp/errors.ts';
import { ConvergenceError, isConvergenceError, usageError } from '../../lib/errors.ts';
import type { StageReporter } from '../../lib/stages.ts';
import type { ServiceContext } from '../context.ts';
import { doctorFailure, type DoctorReport } from '../doctor/index.ts';
import { setupNames, withNames } from './names.ts';
import type { PlannedChange, SetupContext } from './step.ts';
import { closingDoctor } from './steps/doctor.ts';
import { setupSteps, type RegisteredStep } from './steps/index.ts';

export interface SetupStepResult {
  id: string;
  title: string;
  /** What the step plans (dry run) or planned just before it applied. */
  changes: PlannedChange[];
  applied: boolean;
  /** Why the step was left out (e.g. the job without an image), or why its plan waits for an earlier step. */
  note?: string;
  error?: { code: string; message: string; exitCode: number };
}

export interface SetupRunResult {
  env: string;
  project: string;
  dryRun: boolean;
  steps: SetupStepResult[];
  /** The closing doctor; null on a dry run or when a step failed. */
  doctor: DoctorReport | null;
}

export interface SetupOptions {
  dryRun?: boolean;
  /** Asked with the plan before the first write to a production environment; throw to refuse. Without it such a setup is refused. */
  confirm?: (question: string, planned: SetupRunResult) => Promise<void>;
  /** Told the plan before anything is written (the command prints it). */
  onPlan?: (planned: SetupRunResult) => void;
  /** Shows the apply as a row per step (the command's listr2): runs `apply` with a reporter whose row i is titles[i]. */
  follow?: <R>(titles: string[], apply: (stages: StageReporter) => Promise<R>) => Promise<R>;
  /** The steps to run, in order (default: every registered step in SETUP_ORDER). */
  steps?: RegisteredStep[];
}

const DOCTOR_TITLE = 'Check with doctor';

/** The note of a step whose plan waits for an API an earlier step enables. */
const PLANNED_LATER = 'planned once the steps before it are applied';
export const isPlannedLater = (step: SetupStepResult) => step.note?.startsWith(PLANNED_LATER) ?? false;

/** The rows of the apply: every step, then the closing doctor. */
const titlesOf = (steps: RegisteredStep[]): string[] => [...steps.map((step) => step.title), DOCTOR_TITLE];

function setupContext(ctx: ServiceContext): SetupContext {
  const env = cloudEnv(ctx.env);
  if (!env) {
    throw usageError(`environment "${ctx.env.name}" is local: setup prepares a Google Cloud project`, {
      suggestion: 'pass --env with a cloud environment of convergence.yaml',
    });
  }
  const { project } = gcpTarget(env.settings);
  const names = setupNames(env, project);
  const completed: CloudEnv = withNames(env, names, project);
  return { ctx, env: completed, project, names };
}

const stepError = (err: ConvergenceError) => ({ code: err.code, message: err.message, exitCode: err.exitCode });

/**
 * Plans one step before anything is applied. An API an earlier step enables is not usable yet, so
 * such a step's plan waits until it is reached; any other refusal stops setup before it writes.
 */
async function planStep(setup: SetupContext, step: RegisteredStep, earlierChanges: boolean): Promise<SetupStepResult> {
  const base = { id: step.id, title: step.title, applied: false };
  const skipped = step.skipped?.(setup);
  if (skipped) return { ...base, changes: [], note: skipped };
  try {
    return { ...base, changes: await step.plan(setup) };
  } catch (err) {
    if (earlierChanges && isConvergenceError(err) && err.code === 'SERVICE_DISABLED') {
      return { ...base, changes: [], note: `${PLANNED_LATER} (${err.message})` };
    }
    throw stopped(step, err, undefined);
  }
}

/** The error a failed step ends setup with: its own code, exit code and advice, naming the step. */
function stopped(step: RegisteredStep, cause: unknown, result: SetupRunResult | undefined): ConvergenceError {
  // A Google error no adapter mapped still exits with its meaning (7 for a permission), not as a bug.
  const err = toConvergenceError(cause, { what: `setup step ${step.id}` });
  const rerun = result && !result.dryRun ? '; the steps before it stay applied: run setup again to continue' : '';
  return new ConvergenceError(err.code, err.exitCode, `setup step "${step.id}" (${step.title}) failed: ${err.message}`, {
    suggestion: `${err.suggestion ?? 'fix the cause above'}${rerun}`,
    data: { ...err.data, step: step.id, ...(result ? { setup: result } : {}) },
    cause: err,
  });
}

async function planAll(setup: SetupContext, steps: RegisteredStep[], dryRun: boolean): Promise<SetupRunResult> {
  const planned: SetupStepResult[] = [];
  for (const step of steps) {
    const earlierChanges = planned.some((p) => p.changes.length > 0);
    planned.push(await planStep(setup, step, earlierChanges));
  }
  return { env: setup.env.name, project: setup.project, dryRun, steps: planned, doctor: null };
}

const hasWork = (result: SetupRunResult) => result.steps.some((s) => s.changes.length > 0 || isPlannedLater(s));

async function confirmProduction(setup: SetupContext, planned: SetupRunResult, options: SetupOptions): Promise<void> {
  if (!setup.env.settings.production || !hasWork(planned)) return;
  const question = `Change project ${setup.project} for production environment ${setup.env.name}?`;
  if (!options.confirm) {
    throw usageError(`refusing to set up production environment ${setup.env.name} without confirmation`, {
      suggestion: 'pass --yes to confirm',
    });
  }
  await options.confirm(question, planned);
}

/** Reads again and applies one step; what it applied goes into `row`. */
async function applyStep(setup: SetupContext, step: RegisteredStep, row: SetupStepResult): Promise<void> {
  if (row.note && !isPlannedLater(row)) return;
  const changes = await step.plan(setup);
  row.changes = changes;
  delete row.note;
  if (changes.length === 0) return;
  await step.apply(setup, changes);
  row.applied = true;
}

const outcomeOf = (row: SetupStepResult) =>
  row.note
    ? { status: 'skipped' as const, message: row.note }
    : { status: 'ok' as const, title: `${row.title}: ${row.applied ? `${row.changes.length} change(s) applied` : 'nothing to change'}` };

async function applyAll(setup: SetupContext, steps: RegisteredStep[], result: SetupRunResult, stages: StageReporter | undefined) {
  for (const [i, step] of steps.entries()) {
    const row = result.steps[i]!;
    stages?.start(i);
    try {
      await applyStep(setup, step, row);
    } catch (err) {
      const failure = stopped(step, err, result);
      row.error = stepError(toConvergenceError(err, { what: `setup step ${step.id}` }));
      stages?.finish(i, { status: 'failed', message: row.error.message });
      throw failure;
    }
    stages?.finish(i, outcomeOf(row));
  }
  stages?.start(steps.length);
  result.doctor = await closingDoctor(setup);
  const failed = result.doctor.checks.filter((c) => c.status === 'fail').map((c) => c.name);
  stages?.finish(steps.length, failed.length ? { status: 'failed', message: `failing: ${failed.join(', ')}` } : { status: 'ok' });
}

/**
 * The closing doctor decides the exit code of an applied setup: a check that fails is something
 * setup made that does not work (exit 2, or 7 for the credentials), while a warning or a skip (a
 * service not deployed yet, a check that cannot be verified) leaves setup successful, and so does
 * a failing check of what a skipped step would have made (the scheduler without a job yet).
 */
function doctorVerdict(result: SetupRunResult, steps: RegisteredStep[]): void {
  if (!result.doctor || result.doctor.ok) return;
  const skipped = new Set(result.steps.filter((s) => s.note && !isPlannedLater(s)).map((s) => s.id));
  const expected = new Set(steps.filter((s) => skipped.has(s.id)).flatMap((s) => s.doctorChecks ?? []));
  const counted = result.doctor.checks.filter((c) => c.status === 'fail' && !expected.has(c.name));
  if (counted.length === 0) return;
  const failure = doctorFailure({ ...result.doctor, checks: counted });
  throw new ConvergenceError(failure.code, failure.exitCode, `setup applied, but doctor ${failure.message}`, {
    suggestion: `${failure.suggestion ?? ''}; then run setup again`,
    data: { setup: result },
  });
}

export async function runSetup(ctx: ServiceContext, options: SetupOptions = {}): Promise<SetupRunResult> {
  const setup = setupContext(ctx);
  const steps = options.steps ?? setupSteps();
  const result = await planAll(setup, steps, Boolean(options.dryRun));
  options.onPlan?.(result);
  if (options.dryRun) return result;
  await confirmProduction(setup, result, options);
  const apply = (stages: StageReporter | undefined) => applyAll(setup, steps, result, stages);
  await (options.follow ? options.follow(titlesOf(steps), apply) : apply(undefined));
  doctorVerdict(result, steps);
  return result;
}
