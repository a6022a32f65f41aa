import type { IamPolicy } from '../../domain/iam-policy.ts';

/**
 * A project's IAM policy (Resource Manager v3 projects.getIamPolicy / setIamPolicy). The policy is
 * one document shared with every other writer of the project, so it is only ever changed by a
 * read-modify-write under the etag it was read with; a write that lost the race is refused and the
 * whole cycle starts again from a fresh read.
 */

export type { RoleGrant } from '../../domain/iam-policy.ts';

export interface ProjectIam {
  /** The project whose policy this is. */
  readonly project: string;
  /** The policy, read at version 3 so conditional bindings come back whole. */
  getPolicy(): Promise<IamPolicy>;
  /**
   * Writes the bindings of `policy` under its etag; only bindings and etag change (audit configs
   * stay as they are). Throws PolicyConflict when another writer changed the policy since it was
   * read, UnknownMember when a service account it names does not exist (yet).
   */
  setPolicy(policy: IamPolicy): Promise<IamPolicy>;
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
