import { grantsLacking, grantUnderEtag, type IamPolicy, type PolicyStore, type RaceRetry } from '../../domain/iam-policy.ts';
import { ConvergenceError } from '../../lib/errors.ts';

/** Five read-modify-write cycles, one right after the other, while other writers keep changing the policy. */
const RESOURCE_RACE: RaceRetry = {
  policy: { attempts: 5, baseDelayMs: 0, maxDelayMs: 0 },
  isConflict: (err) => err instanceof ConvergenceError && err.code === 'CONFLICT',
};

/** `serviceAccount:<email>`, the member form IAM policies use for a service account. */
export const serviceAccountMember = (email: string) => `serviceAccount:${email}`;

const grantsOf = (role: string, members: readonly string[]) => members.map((member) => ({ role, member }));

/** The members of `members` that do not yet hold `role` unconditionally in `policy`. */
export function membersLacking(policy: IamPolicy, role: string, members: readonly string[]): string[] {
  return grantsLacking(policy, grantsOf(role, members)).map((grant) => grant.member);
}

/**
 * Grants `role` to `members` on one resource by read-modify-write under the policy's etag: a write
 * that lost the race to another writer (CONFLICT) starts again from a fresh read, so no binding
 * someone else added in between is lost.
 */
export async function grantRole(policies: PolicyStore<IamPolicy>, role: string, members: readonly string[]): Promise<void> {
  await grantUnderEtag(policies, grantsOf(role, members), RESOURCE_RACE);
}
