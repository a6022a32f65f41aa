import type { IamPolicy } from '../../domain/iam-policy.ts';

/**
 * Buckets port: the Cloud Storage buckets `setup` creates (the state bucket) and their IAM
 * policy. Objects in them are the Lock's and the sources' business.
 */
export interface Buckets {
  /**
   * What the name is: `missing`, `ours` with its settings, or `unreadable` when Storage answers
   * 403 (another project owns the name, or this account lacks storage.buckets.get on it).
   */
  inspect(name: string): Promise<BucketState>;
  /**
   * Creates the bucket with uniform bucket-level access, public access prevention and versioning.
   * A name that is already ours succeeds; a name another owner holds is refused (exit 2).
   */
  create(name: string, settings: { location: string }): Promise<void>;
  /** Turns on uniform bucket-level access, public access prevention and versioning. */
  harden(name: string): Promise<void>;
  getIamPolicy(name: string): Promise<IamPolicy>;
  /** Writes the policy under its etag: a policy changed since it was read is refused (CONFLICT). */
  setIamPolicy(name: string, policy: IamPolicy): Promise<IamPolicy>;
  close(): Promise<void>;
}

export type BucketState =
  | { kind: 'missing' }
  | { kind: 'unreadable'; detail: string }
  | { kind: 'ours'; location: string; uniformAccess: boolean; publicAccessPrevention: string; versioning: boolean };
