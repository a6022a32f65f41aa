import { PolicyConflict, type ProjectIam, type ProjectPolicy, type RoleGrant } from '../../../backends/project-iam/port.ts';
import { conflictError } from '../../../lib/errors.ts';
import { retry, type RetryPolicy } from '../../../lib/retry.ts';
import { projectGrants } from '../roles.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** Google asks for the whole read-modify-write to be retried with backoff when the etag is stale. */
const CONFLICT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 4000, jitter: 'equal' };

const describe = (grant: RoleGrant) => `${grant.role} to ${grant.member}`;

/** Whether the member holds the role unconditionally (a conditional binding grants less). */
const holds = (policy: ProjectPolicy, grant: RoleGrant) =>
  policy.bindings.some((binding) => binding.role === grant.role && !binding.condition && binding.members.includes(grant.member));

/**
 * The policy with `grants` added: each missing member joins the role's unconditional binding (or
 * a new one at the end). Nothing the policy has is removed or reordered; conditions stay as read.
 */
export function withGrants(policy: ProjectPolicy, grants: readonly RoleGrant[]): { policy: ProjectPolicy; added: RoleGrant[] } {
  const bindings = policy.bindings.map((binding) => ({ ...binding, members: [...binding.members] }));
  const added: RoleGrant[] = [];
  for (const grant of grants) {
    const binding = bindings.find((candidate) => candidate.role === grant.role && !candidate.condition);
    if (binding?.members.includes(grant.member)) continue;
    if (binding) binding.members.push(grant.member);
    else bindings.push({ role: grant.role, members: [grant.member] });
    added.push(grant);
  }
  return { policy: { ...policy, bindings }, added };
}

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
  return projectGrants(setup.names)
    .filter((grant) => !holds(policy, grant))
    .map((grant) => ({ action: 'grant', resource: `projects/${setup.project}`, detail: describe(grant) }));
}

/**
 * Read, add, write under the etag read; a write another writer beat starts again from a fresh
 * read, so their bindings are kept and ours are added on top.
 */
async function apply(setup: SetupContext, changes: PlannedChange[]): Promise<void> {
  const planned = new Set(changes.map((change) => change.detail));
  const grants = projectGrants(setup.names).filter((grant) => planned.has(describe(grant)));
  if (grants.length === 0) return;
  await withProjectIam(setup, async (iam) => {
    try {
      await retry(
        async () => {
          const { policy, added } = withGrants(await iam.getPolicy(), grants);
          if (added.length > 0) await iam.setPolicy(policy);
        },
        CONFLICT_RETRY,
        { retryable: (err) => err instanceof PolicyConflict },
      );
    } catch (err) {
      if (!(err instanceof PolicyConflict)) throw err;
      throw conflictError(
        `the IAM policy of project ${setup.project} kept changing while setup added its grants (${CONFLICT_RETRY.attempts} attempts): ${err.message}`,
        { suggestion: 'run setup again once the other change to the project policy has finished', cause: err },
      );
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
