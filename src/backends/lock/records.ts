import { ConvergenceError, ExitCode, validationError } from '../../lib/errors.ts';
import type { Lease, LockHolder } from './port.ts';

/** The fields every lock adapter stores for a lease, whatever else it keeps beside them. */
export interface StoredLease {
  key: string;
  owner: string;
  token: number;
  acquiredAt: string;
  expiresAt: string;
  info?: Record<string, string>;
}

export function holderOf(record: StoredLease): LockHolder {
  const holder: LockHolder = {
    owner: record.owner,
    token: record.token,
    acquiredAt: new Date(record.acquiredAt),
    expiresAt: new Date(record.expiresAt),
  };
  if (record.info) holder.info = { ...record.info };
  return holder;
}

export const leaseOf = (record: StoredLease): Lease => ({ ...holderOf(record), key: record.key });

export function assertTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw validationError(`lock ttl must be a positive number of ms, got ${ttlMs}`);
}

/** A renew of a lease that expired or was taken over; `holder` is who has the key now, if anyone. */
export function lockLost(lease: Lease, holder: LockHolder | null): ConvergenceError {
  return new ConvergenceError(
    'LOCK_LOST',
    ExitCode.alreadyRunning,
    `lease on ${lease.key} (token ${lease.token}) expired or was taken over`,
    {
      data: { key: lease.key, token: lease.token, holder },
    },
  );
}
