import type { SetupContext, SetupStep } from '../step.ts';
import { apisStep } from './apis.ts';
import { configStep } from './config.ts';
import { datasetStep } from './dataset.ts';
import { jobStep } from './job.ts';
import { registryStep } from './registry.ts';
import { adminKeyStep } from './admin-key.ts';
import { kmsStep } from './kms.ts';
import { stateBucketStep } from './state-bucket.ts';
import { projectIamStep } from './project-iam.ts';
import { serviceAccountsStep } from './service-accounts.ts';

/**
 * A step may say it is left out for this environment (e.g. the job without an image) instead of
 * planning, and name the doctor checks of what it makes: while it is left out, those checks
 * failing is expected and does not fail setup.
 */
export type RegisteredStep = SetupStep & { skipped?(setup: SetupContext): string | undefined; doctorChecks?: readonly string[] };

/**
 * The order setup plans and applies in: the names recorded first, so a rerun after a failure
 * uses the same ones; each step's resources exist before a later one refers to
 * them (APIs before anything, accounts before their grants, the key and bucket before the job).
 */
export const SETUP_ORDER = [
  'config',
  'apis',
  'service_accounts',
  'project_iam',
  'kms',
  'state_bucket',
  'registry',
  'dataset',
  'admin_key',
  'job',
] as const;

/** Every registered step. Add a step with its import and one entry here; its place comes from SETUP_ORDER. */
const STEPS: RegisteredStep[] = [
  configStep,
  datasetStep,
  jobStep,
  apisStep,
  registryStep,
  kmsStep,
  stateBucketStep,
  adminKeyStep,
  serviceAccountsStep,
  projectIamStep,
];

const rank = (id: string) => {
  const at = (SETUP_ORDER as readonly string[]).indexOf(id);
  return at === -1 ? SETUP_ORDER.length : at;
};

/** The registered steps in SETUP_ORDER (a step the order does not name runs last). */
export function setupSteps(): RegisteredStep[] {
  return [...STEPS].sort((a, b) => rank(a.id) - rank(b.id));
}
