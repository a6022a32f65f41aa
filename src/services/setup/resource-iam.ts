import type { IamPolicy } from '../../backends/kms-admin/port.ts';
import { ConvergenceError } from '../../lib/errors.ts';

/** How many read-modify-write cycles a grant tries when other writers keep changing the policy. */
const ATTEMPTS = 5;

/** `serviceAccount:<email>`, the member form IAM policies use for a service account. */
export const serviceAccountMember = (email: string) => `serviceAccount:${email}`;

/** The members of `members` that do not yet hold `role` unconditionally in `policy`. */
export function membersLacking(policy: IamPolicy, role: string, members: readonly string[]): string[] {
  const holding = new Set(
    policy.bindings.filter((binding) => binding.role === role && !binding.condition).flatMap((binding) => binding.members),
  );
  return members.filter((member) => !holding.has(member));
}

/**
 * The policy with `members` added to the unconditional binding of `role`; every other binding,
 * conditional ones included, is kept as read. Undefined when nothing is missing.
 */
function withMembers(policy: IamPolicy, role: string, members: readonly string[]): IamPolicy | undefined {
  const lacking = membersLacking(policy, role, members);
  if (lacking.length === 0) return undefined;
  const bindings = policy.bindings.map((binding) => ({ ...binding, members: [...binding.members] }));
  const target = bindings.find((binding) => binding.role === role && !binding.condition);
  if (target) target.members.push(...lacking);
  else bindings.push({ role, members: [...lacking] });
  return { ...policy, bindings };
}

/**
 * Grants `role` to `members` on one resource by read-modify-write under the policy's etag: a write
 * that lost the race to another writer (CONFLICT) starts again from a fresh read, so no binding
 * someone else added in between is lost.
 */
export async function grantRole(
  policies: { read(): Promise<IamPolicy>; write(policy: IamPolicy): Promise<unknown> },
  role: string,
  members: readonly string[],
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const next = withMembers(await policies.read(), role, members);
    if (!next) return;
    try {
      await policies.write(next);
      return;
    } catch (err) {
      if (!(err instanceof ConvergenceError && err.code === 'CONFLICT') || attempt >= ATTEMPTS) throw err;
    }
  }
}
