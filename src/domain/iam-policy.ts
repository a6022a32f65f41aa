/**
 * An IAM policy (google.iam.v1.Policy) as setup reads and writes it, the one way role grants are
 * merged into it, and the read-modify-write under its etag that every grant on a Google resource
 * (project, KMS key, bucket, Cloud Run job) goes through. A policy is one document shared with
 * every other writer of the resource: nothing it holds is ever removed, reordered or widened.
 */
import { retry, type RetryPolicy } from '../lib/retry.ts';

/** A google.type.Expr, as a conditional binding carries it. */
export interface PolicyCondition {
  expression: string;
  title?: string;
  description?: string;
  location?: string;
}

export interface PolicyBinding {
  role: string;
  /** e.g. serviceAccount:x@p.iam.gserviceaccount.com, user:a@example.com, group:..., domain:... */
  members: string[];
  /** A conditional binding keeps its condition exactly as read, so a write never drops or widens it. */
  condition?: PolicyCondition;
}

/** An IAM policy as read: its bindings and the etag a write must present. */
export interface IamPolicy {
  /** 1 or 3; conditional bindings need 3. */
  version: number;
  bindings: PolicyBinding[];
  /** Opaque (base64 of the etag bytes); a write is refused when the policy changed since it was read. */
  etag: string;
}

/** One role for one member, unconditionally, on the whole resource. */
export interface RoleGrant {
  role: string;
  member: string;
}

/** What the merge looks at in a binding; anything else a binding carries is kept as read. */
interface GrantableBinding {
  role: string;
  members: readonly string[];
  condition?: unknown;
}

interface GrantablePolicy {
  bindings: readonly GrantableBinding[];
}

/** Whether the member holds the role unconditionally (a conditional binding grants less). */
const holds = (bindings: readonly GrantableBinding[], grant: RoleGrant) =>
  bindings.some((binding) => binding.role === grant.role && !binding.condition && binding.members.includes(grant.member));

/** The grants `policy` does not hold yet, in the order given. */
export function grantsLacking(policy: GrantablePolicy, grants: readonly RoleGrant[]): RoleGrant[] {
  return grants.filter((grant) => !holds(policy.bindings, grant));
}

/**
 * The policy with `grants` added: each missing member joins the role's first unconditional
 * binding (or a new one at the end). Nothing the policy has is removed or reordered, conditions
 * stay as read, and the policy read is not changed in place. `added` is what the merge added.
 */
export function withGrants<P extends GrantablePolicy>(policy: P, grants: readonly RoleGrant[]): { policy: P; added: RoleGrant[] } {
  const bindings = policy.bindings.map((binding) => ({ ...binding, members: [...binding.members] }));
  const added: RoleGrant[] = [];
  for (const grant of grants) {
    if (holds(bindings, grant)) continue;
    const binding = bindings.find((candidate) => candidate.role === grant.role && !candidate.condition);
    if (binding) binding.members.push(grant.member);
    else bindings.push({ role: grant.role, members: [grant.member] });
    added.push(grant);
  }
  return { policy: { ...policy, bindings }, added };
}

/** One resource's policy: read it, and write it back under the etag it was read with. */
export interface PolicyStore<P> {
  read(): Promise<P>;
  write(policy: P): Promise<unknown>;
}

/** How a grant treats losing the race to another writer of the policy. */
export interface RaceRetry {
  /** Read-modify-write cycles in all, and the waits between them. */
  policy: RetryPolicy;
  /** Whether a write was refused because the policy changed since it was read (a stale etag). */
  isConflict: (error: unknown) => boolean;
}

/** A write that lost the race: only these start the cycle again (a failed read never does). */
class LostRace extends Error {
  readonly conflict: unknown;

  constructor(conflict: unknown) {
    super('the policy changed since it was read');
    this.conflict = conflict;
  }
}

/**
 * Adds `grants` to a resource's policy by read-modify-write under the etag read: a write another
 * writer beat starts again from a fresh read, so bindings added in between are kept and ours go
 * on top. Nothing is written when every grant is held already. When the attempts run out the
 * last conflict is thrown as the store threw it. Answers what the successful write added.
 */
export async function grantUnderEtag<P extends GrantablePolicy>(
  store: PolicyStore<P>,
  grants: readonly RoleGrant[],
  race: RaceRetry,
): Promise<RoleGrant[]> {
  try {
    return await retry(
      async () => {
        const { policy, added } = withGrants(await store.read(), grants);
        if (added.length === 0) return added;
        try {
          await store.write(policy);
        } catch (err) {
          throw race.isConflict(err) ? new LostRace(err) : err;
        }
        return added;
      },
      race.policy,
      { retryable: (err) => err instanceof LostRace },
    );
  } catch (err) {
    throw err instanceof LostRace ? err.conflict : err;
  }
}
