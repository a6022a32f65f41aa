/**
 * IAM policies on Cloud Run services and jobs, as Run keeps them: read and written under an etag
 * (a write carrying the etag of an older read is ABORTED, so a read-modify-write starts again),
 * and what a service account calling with its own token holds on a resource follows the roles
 * bound to it there.
 */
import { FakeStatus, status } from './status.ts';

export interface RunBinding {
  role: string;
  members: string[];
}

/** The Run permissions of the predefined roles a binding on a job or service may name. */
const ROLE_PERMISSIONS: Record<string, readonly string[]> = {
  'roles/run.invoker': ['run.jobs.run', 'run.routes.invoke'],
  'roles/run.jobsExecutor': ['run.jobs.run', 'run.executions.cancel'],
  'roles/run.jobsExecutorWithOverrides': ['run.jobs.run', 'run.jobs.runWithOverrides', 'run.executions.cancel'],
  'roles/run.developer': ['run.jobs.get', 'run.jobs.update', 'run.jobs.run', 'run.jobs.runWithOverrides', 'run.executions.cancel'],
};

const CONCURRENT_CHANGE = 'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.';

interface StoredPolicy {
  bindings: RunBinding[];
  revision: number;
}

export class RunPolicies {
  readonly #policies = new Map<string, StoredPolicy>();

  #stored(resource: string): StoredPolicy {
    let policy = this.#policies.get(resource);
    if (!policy) this.#policies.set(resource, (policy = { bindings: [], revision: 0 }));
    return policy;
  }

  /** The policy as GetIamPolicy answers it. */
  describe(resource: string): { version: number; bindings: RunBinding[]; etag: Buffer } {
    const policy = this.#stored(resource);
    return {
      version: 1,
      bindings: policy.bindings.map((b) => ({ role: b.role, members: [...b.members] })),
      etag: Buffer.from(`run-policy-${policy.revision}`),
    };
  }

  /** SetIamPolicy: ABORTED when `etag` is from an older read; a write without one overwrites. */
  set(resource: string, wanted: { bindings?: RunBinding[]; etag?: Uint8Array }): void {
    const policy = this.#stored(resource);
    const etag = wanted.etag && wanted.etag.length > 0 ? Buffer.from(wanted.etag).toString() : undefined;
    if (etag !== undefined && etag !== `run-policy-${policy.revision}`) throw new FakeStatus(status.ABORTED, CONCURRENT_CHANGE);
    policy.bindings = (wanted.bindings ?? [])
      .filter((b) => (b.members ?? []).length > 0)
      .map((b) => ({ role: b.role, members: [...b.members] }));
    policy.revision += 1;
  }

  /** Whether the service account `email` holds `permission` on `resource` through a binding there. */
  grants(email: string, resource: string, permission: string): boolean {
    const bindings = this.#policies.get(resource)?.bindings ?? [];
    return bindings.some((b) => b.members.includes(`serviceAccount:${email}`) && (ROLE_PERMISSIONS[b.role] ?? []).includes(permission));
  }

  /** A deleted resource takes its policy with it. */
  forget(resource: string): void {
    this.#policies.delete(resource);
  }
}
