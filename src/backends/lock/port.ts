/**
 * Lock port: a lease on a named resource (e.g. `run/acme_corp/p_usage_daily`). A lease expires
 * unless renewed, so a crashed holder never blocks forever; a stale lease is taken over by the
 * next acquirer. Fencing tokens increase with every acquisition of the same key, so a writer can
 * reject work from a holder whose lease was taken over.
 */
export interface LockHolder {
  owner: string;
  token: number;
  acquiredAt: Date;
  expiresAt: Date;
  /** Free-form detail, e.g. the run id holding the lock. */
  info?: Record<string, string>;
}

export interface Lease extends LockHolder {
  key: string;
}

export interface AcquireOptions {
  owner: string;
  ttlMs: number;
  info?: Record<string, string>;
}

export type AcquireResult = { acquired: true; lease: Lease } | { acquired: false; holder: LockHolder };

export interface Lock {
  readonly describe: string;
  acquire(key: string, options: AcquireOptions): Promise<AcquireResult>;
  /** Extends a lease still held; fails with LOCK_LOST if it expired and was taken over. */
  renew(lease: Lease, ttlMs: number): Promise<Lease>;
  /** Releases a lease; releasing one already taken over is a no-op that returns false. */
  release(lease: Lease): Promise<boolean>;
  /** The current holder, if any and not expired. */
  inspect(key: string): Promise<LockHolder | undefined>;
  /** Drops a lease whatever its holder (maintenance); returns whether one existed. */
  forceRelease(key: string): Promise<boolean>;
}
