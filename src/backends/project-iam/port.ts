/**
 * A project's IAM policy (Resource Manager v3 projects.getIamPolicy / setIamPolicy). The policy is
 * one document shared with every other writer of the project, so it is only ever changed by a
 * read-modify-write under the etag it was read with; a write that lost the race is refused and the
 * whole cycle starts again from a fresh read.
 */

/** A google.type.Expr: the condition of a conditional binding, kept exactly as read. */
interface BindingCondition {
  expression: string;
  title: string;
  description: string;
  location: string;
}

export interface PolicyBinding {
  role: string;
  /** e.g. serviceAccount:x@p.iam.gserviceaccount.com, user:a@example.com, group:..., domain:... */
  members: string[];
  condition?: BindingCondition;
}

export interface ProjectPolicy {
  /** 1 or 3; conditional bindings need 3. */
  version: number;
  bindings: PolicyBinding[];
  /** Opaque token of the version read; setPolicy is refused when the policy changed since. */
  etag: string;
}

/** One role for one member, unconditionally, on the whole project. */
export interface RoleGrant {
  role: string;
  member: string;
}

export interface ProjectIam {
  /** The project whose policy this is. */
  readonly project: string;
  /** The policy, read at version 3 so conditional bindings come back whole. */
  getPolicy(): Promise<ProjectPolicy>;
  /**
   * Writes the bindings of `policy` under its etag; only bindings and etag change (audit configs
   * stay as they are). Throws PolicyConflict when another writer changed the policy since it was
   * read, UnknownMember when a service account it names does not exist (yet).
   */
  setPolicy(policy: ProjectPolicy): Promise<ProjectPolicy>;
  close(): Promise<void>;
}

/**
 * The policy names a service account Google does not know. Right after the account was created
 * this is IAM's propagation delay (it can take a minute), so a caller that just made the account
 * may wait and write again.
 */
export class UnknownMember extends Error {
  readonly account: string;

  constructor(account: string, detail: string) {
    super(detail);
    this.name = 'UnknownMember';
    this.account = account;
  }
}

/** The policy changed between its read and this write: read it again and redo the change. */
export class PolicyConflict extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'PolicyConflict';
  }
}
