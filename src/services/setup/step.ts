import type { CloudEnv } from '../../backends/factory.ts';
import type { ServiceContext } from '../context.ts';

/**
 * `convergence setup --env <cloud>` brings a project to what the product needs, one step per kind
 * of resource (APIs, service accounts, IAM, KMS, bucket, registry, dataset, admin key, job). Each
 * step reads first and plans, and applies only what its plan says, so a rerun after a partial
 * apply picks up where it stopped and a rerun after a full one changes nothing.
 */
export interface SetupStep {
  /** Stable id, e.g. `apis`, `service_accounts`, `project_iam`, `kms`, `state_bucket`. */
  id: string;
  /** The listr2 row title, e.g. "Enable APIs". */
  title: string;
  /** Reads what exists and returns the changes needed (none: in place). Never writes. */
  plan(setup: SetupContext): Promise<PlannedChange[]>;
  /** Makes the planned changes. Must be safe to run again after it failed half-way. */
  apply(setup: SetupContext, changes: PlannedChange[]): Promise<void>;
}

export interface PlannedChange {
  action: 'enable' | 'create' | 'update' | 'grant';
  /** Full resource name, e.g. projects/p/serviceAccounts/convergence-job-staging@p.iam.gserviceaccount.com. */
  resource: string;
  /** One line for the plan table: what will change (never a secret value). */
  detail: string;
}

export interface SetupContext {
  ctx: ServiceContext;
  env: CloudEnv;
  project: string;
  /** Every name the steps create or refer to, derived once from convergence.yaml (see names.ts). */
  names: SetupNames;
}

/** What `setup` creates, named from the environment (explicit settings win over the defaults). */
export interface SetupNames {
  /** The Cloud Run service's runtime account (`service_account`, default convergence-api-<env>@<project>.iam.gserviceaccount.com). */
  apiAccount: string;
  /** The pipeline job's runtime account (`job_service_account`, default convergence-job-<env>@...). */
  jobAccount: string;
  /** The account Cloud Scheduler calls the job with (`scheduler_service_account`, default convergence-sched-<env>@..., short enough for an environment named production). */
  schedulerAccount: string;
  /** projects/P/locations/L/keyRings/R/cryptoKeys/K (`kms_key`, default in `region`: keyRings/convergence-<env>/cryptoKeys/api-key-encryption). */
  kmsKey: string;
  /** `state_bucket`, default <project>-convergence-state-<env>. */
  stateBucket: string;
  /** projects/P/locations/L/repositories/R, from `image` when it is an Artifact Registry path, else <region>/convergence. */
  registry: string;
  /** The admin key's secret, admin-api-key-<env>. */
  adminKeySecret: string;
}
