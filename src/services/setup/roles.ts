import type { RoleGrant } from '../../backends/project-iam/port.ts';
import type { SetupNames } from './step.ts';

/**
 * The project-level roles of the product's service accounts: seed 000's grants made least
 * privilege. The seeds gave the API account roles/bigquery.admin; the product only reads and
 * writes tables and runs jobs, which dataEditor and jobUser cover. Grants that can be narrowed to
 * one resource are made there instead, by the step that creates the resource:
 *
 * - roles/cloudkms.cryptoKeyEncrypterDecrypter on the one KMS key (kms step);
 * - roles/storage.objectAdmin on the state bucket only (state_bucket step);
 * - the scheduler account's right to start the pipeline job, on the job itself (job step).
 */
const WAREHOUSE_AND_SECRETS = ['roles/bigquery.dataEditor', 'roles/bigquery.jobUser', 'roles/secretmanager.secretAccessor'] as const;

/** The job writes its structured run logs, which log-based metrics and `runs logs` read. */
const JOB_ONLY = ['roles/logging.logWriter'] as const;

const member = (email: string) => `serviceAccount:${email}`;

/** Every project-level grant setup makes, in a stable order, each role for each member once. */
export function projectGrants(names: SetupNames): RoleGrant[] {
  const wanted: RoleGrant[] = [
    ...WAREHOUSE_AND_SECRETS.map((role) => ({ role, member: member(names.apiAccount) })),
    ...WAREHOUSE_AND_SECRETS.map((role) => ({ role, member: member(names.jobAccount) })),
    ...JOB_ONLY.map((role) => ({ role, member: member(names.jobAccount) })),
  ];
  const seen = new Set<string>();
  return wanted.filter((grant) => {
    const key = `${grant.role} ${grant.member}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
