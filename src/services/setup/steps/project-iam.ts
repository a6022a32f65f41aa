import { PolicyConflict, UnknownMember, type ProjectIam } from '../../../backends/project-iam/port.ts';
import { grantsLacking, grantUnderEtag, type RaceRetry, type RoleGrant } from '../../../domain/iam-policy.ts';
import { conflictError, usageError } from '../../../lib/errors.ts';
import { retry, type RetryPolicy } from '../../../lib/retry.ts';
import { projectGrants } from '../roles.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** The merge of grants into a policy, shared with every other resource setup grants roles on. */
export { withGrants } from '../../../domain/iam-policy.ts';

/** Google asks for the whole read-modify-write to be retried with backoff when the etag is stale. */
const CONFLICT_RETRY: RaceRetry = {
  policy: { attempts: 5, baseDelayMs: 250, maxDelayMs: 4000, jitter: 'equal' },
  isConflict: (err) => err instanceof PolicyConflict,
};
/** An account created a moment ago can take a minute to be known to IAM policies: up to about 45s of waiting. */
const NEW_ACCOUNT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 16_000, jitter: 'equal' };

const describe = (grant: RoleGrant) => `${grant.role} to ${grant.member}`;

async function withProjectIam<T>(setup: SetupContext, work: (iam: ProjectIam) => Promise<T>): Promise<T> {
  const iam = await setup.ctx.backends.projectIam!();
  try {
    return await work(iam);
  } finally {
    await iam.close();
  }
}

async function plan(setup: SetupContext): Promise<PlannedChange[]> {
  const policy = await withProjectIam(setup, (iam) => iam.getPolicy());
  return grantsLacking(policy, projectGrants(setup.names)).map((grant) => ({
    action: 'grant',
    resource: `projects/${setup.project}`,
    detail: describe(grant),
  }));
}

/** One read-modify-write, started again from a fresh read while another writer keeps winning. */
async function grantOnce(setup: SetupContext, iam: ProjectIam, grants: readonly RoleGrant[]): Promise<void> {
  try {
    await grantUnderEtag({ read: () => iam.getPolicy(), write: (policy) => iam.setPolicy(policy) }, grants, CONFLICT_RETRY);
  } catch (err) {
    if (!(err instanceof PolicyConflict)) throw err;
    throw conflictError(
      `the IAM policy of project ${setup.project} kept changing while setup added its grants (${CONFLICT_RETRY.policy.attempts} attempts): ${err.message}`,
      { suggestion: 'run setup again once the other change to the project policy has finished', cause: err },
    );
  }
}

/** The refusal of a grant to an account the project does not have. */
function noSuchAccount(setup: SetupContext, err: UnknownMember, propagating: boolean) {
  return usageError(`project ${setup.project} has no service account ${err.account} to grant roles to: ${err.message}`, {
    suggestion: propagating
      ? 'IAM can take a few minutes to know a new account everywhere: run setup again in a minute'
      : `create ${err.account} (setup's service_accounts step does), or name an existing account in convergence.yaml`,
    data: { account: err.account },
    cause: err,
  });
}

async function accountExists(setup: SetupContext, email: string): Promise<boolean> {
  const iam = await setup.ctx.backends.iamAdmin!();
  try {
    return (await iam.getServiceAccount(email)) !== undefined;
  } finally {
    await iam.close();
  }
}

/**
 * Read, add, write under the etag read; a write another writer beat starts again from a fresh
 * read, so their bindings are kept and ours are added on top. An account IAM reports as unknown
 * although it exists (it was created a moment ago and has not propagated) is waited for.
 */
async function apply(setup: SetupContext, changes: PlannedChange[]): Promise<void> {
  const planned = new Set(changes.map((change) => change.detail));
  const grants = projectGrants(setup.names).filter((grant) => planned.has(describe(grant)));
  if (grants.length === 0) return;
  await withProjectIam(setup, async (iam) => {
    try {
      await retry(
        async () => {
          try {
            await grantOnce(setup, iam, grants);
          } catch (err) {
            if (err instanceof UnknownMember && !(await accountExists(setup, err.account))) throw noSuchAccount(setup, err, false);
            throw err;
          }
        },
        NEW_ACCOUNT_RETRY,
        { retryable: (err) => err instanceof UnknownMember },
      );
    } catch (err) {
      throw err instanceof UnknownMember ? noSuchAccount(setup, err, true) : err;
    }
  });
}

/** Project-level roles of the API and job accounts (roles.ts); resource-level grants belong to their resources' steps. */
export const projectIamStep: SetupStep = {
  id: 'project_iam',
  title: 'Grant project roles',
  plan,
  apply,
};
