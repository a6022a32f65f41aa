import { ADMIN_KEY_PATTERN, hashKey, tenantOfKey } from '../domain/api-keys.ts';
import { authError, isConvergenceError } from '../lib/errors.ts';
import type { ServiceContext } from '../services/context.ts';
import {
  activeKeyDigests,
  adminKeyDigest,
  adminKeyMatches,
  invalidApiKeyError,
  touchKey,
  verifyApiKey,
  type VerifiedKey,
} from '../services/keys.ts';
import { clientKey, DEFAULT_AUTH_FAILURE_LIMITS, KeyedBuckets, type BucketLimits } from './buckets.ts';
import { TtlCache } from './cache.ts';
import { HttpError } from './http-errors.ts';
import { KeyIndex } from './key-index.ts';

export interface AuthOptions {
  /**
   * How long a verification (either answer) is reused; for as long again it is still used while it
   * is re-checked. Revocations through the API apply at once, others within twice this.
   */
  cacheTtlMs: number;
  /** last_used_at is written at most this often per key. */
  touchEveryMs?: number;
  /** Failed authentications allowed per client address before it gets 429. */
  failureLimits?: BucketLimits;
  /** How often the in-memory index of usable keys is reloaded (0: loaded once). */
  keyIndexRefreshMs?: number;
  /** Verifications per tenant of keys the index does not list yet (minted elsewhere a moment ago). */
  unlistedLimits?: BucketLimits;
  /** Verifications of keys not seen before that may wait on the warehouse at once; beyond, 503 at once. */
  maxConcurrentVerifications?: number;
  onTouchError?(err: unknown): void;
  onRefreshError?(err: unknown): void;
  /** Each request answered without the warehouse or key store because of a defence, by reason (for metrics). */
  onShed?(reason: ShedReason): void;
}

type ShedReason = 'address_blocked' | 'not_listed' | 'unlisted_budget' | 'verifications_busy';

const DEFAULT_KEY_INDEX_REFRESH_MS = 10_000;
/** An unlisted key of a tenant is verified at most 3 at a time, then one a second. */
const DEFAULT_UNLISTED_LIMITS: BucketLimits = { burst: 3, refillEveryMs: 1_000 };
const DEFAULT_MAX_CONCURRENT_VERIFICATIONS = 16;

const missing = (header: string) => authError(`missing ${header} header`, { suggestion: `send the key in the ${header} header` });
const invalidAdminKey = () =>
  authError('invalid admin key', { suggestion: 'send the key printed by `convergence keys admin create` in X-Admin-Key' });
const busy = (message: string) => new HttpError(503, 'AUTH_BUSY', message, { 'retry-after': '1' });

/**
 * Verifies X-API-Key and X-Admin-Key for the server, so that junk keys cost real tenants nothing:
 * - a client address that keeps failing gets 429 before its keys are looked at;
 * - a key whose digest the in-memory index of usable keys does not list is refused from memory
 *   (401 when its tenant has no usable key at all; when it has, the key may have been minted
 *   elsewhere a moment ago, so a few such keys per tenant and second are verified, the rest 503);
 * - answers are cached by the key's SHA-256 (the plain key is never kept), refusals too;
 * - at most a few verifications of keys never seen before wait on the warehouse at once; more get
 *   503 at once instead of queueing in front of real tenants;
 * - the admin key is compared in memory with the digest of the stored one.
 * Every refusal of a key is the same 401, whatever was wrong.
 */
export class Authenticator {
  readonly #ctx: ServiceContext;
  readonly #keys: TtlCache<VerifiedKey | null>;
  readonly #adminDigest: TtlCache<string | null>;
  readonly #touched = new Map<string, number>();
  readonly #touchEveryMs: number;
  readonly #cacheTtlMs: number;
  readonly #failures: KeyedBuckets;
  readonly #unlisted: KeyedBuckets;
  readonly #index: KeyIndex;
  readonly #maxVerifying: number;
  #verifying = 0;
  readonly #options: AuthOptions;

  constructor(ctx: ServiceContext, options: AuthOptions) {
    this.#ctx = ctx;
    this.#options = options;
    const now = () => ctx.now().getTime();
    this.#cacheTtlMs = options.cacheTtlMs;
    // A hot key is re-checked in the background: no request waits for the warehouse once it is cached.
    this.#keys = new TtlCache({ ttlMs: options.cacheTtlMs, staleMs: options.cacheTtlMs, now });
    this.#adminDigest = new TtlCache({ ttlMs: options.cacheTtlMs, staleMs: options.cacheTtlMs, maxEntries: 1, now });
    this.#touchEveryMs = options.touchEveryMs ?? 60_000;
    this.#failures = new KeyedBuckets(options.failureLimits ?? DEFAULT_AUTH_FAILURE_LIMITS, now);
    this.#unlisted = new KeyedBuckets(options.unlistedLimits ?? DEFAULT_UNLISTED_LIMITS, now);
    this.#index = new KeyIndex({
      load: () => activeKeyDigests(ctx),
      refreshEveryMs: options.keyIndexRefreshMs ?? DEFAULT_KEY_INDEX_REFRESH_MS,
      onError: (err) => options.onRefreshError?.(err),
    });
    this.#maxVerifying = options.maxConcurrentVerifications ?? DEFAULT_MAX_CONCURRENT_VERIFICATIONS;
  }

  /** Loads the index of usable keys and keeps it fresh; never rejects. */
  start(): Promise<void> {
    return this.#index.start();
  }

  stop(): void {
    this.#index.stop();
  }

  /** The tenant key presented by a client at `address`, verified; throws 401, 429 or 503. */
  async tenant(presented: string | undefined, address?: string): Promise<VerifiedKey> {
    const digest = presented ? hashKey(presented) : undefined;
    const known = digest ? this.#keys.peek(digest) : undefined;
    // A key this server accepted a moment ago is never held up by what others sent from its address.
    if (!known?.value) this.#refuseBlocked(address);
    if (!presented || !digest) throw this.#failed(address, missing('X-API-Key'));
    const tenantId = tenantOfKey(presented);
    // Malformed keys are refused before the cache, so a flood of junk cannot push real keys out of it.
    if (!tenantId) throw this.#failed(address, invalidApiKeyError());
    if (!known) this.#admitUnknown(digest, tenantId, address);
    const verified = await this.#keys.get(
      digest,
      // Re-checks of accepted keys are never held up by the cap; everything else is.
      known?.value ? () => this.#verify(presented) : () => this.#verifyCapped(presented),
      // An accepted key is never reused past its own expiry.
      (key) => (key?.expiresAt ? Math.min(this.#cacheTtlMs, key.expiresAt.getTime() - this.#ctx.now().getTime()) : this.#cacheTtlMs),
    );
    // A cached answer never outlives the key's own expiry.
    if (!verified || (verified.expiresAt && verified.expiresAt.getTime() <= this.#ctx.now().getTime())) {
      throw this.#failed(address, invalidApiKeyError());
    }
    this.#index.add(digest, verified.tenantId);
    this.#touch(verified);
    return verified;
  }

  /** The admin key presented by a client at `address`; throws 401, 429. */
  async admin(presented: string | undefined, address?: string): Promise<void> {
    this.#refuseBlocked(address);
    if (!presented) throw this.#failed(address, missing('X-Admin-Key'));
    // Junk is refused before the key store is read; adminKeyMatches checks the shape again on its own.
    if (!ADMIN_KEY_PATTERN.test(presented)) throw this.#failed(address, invalidAdminKey());
    const digest = await this.#adminDigest.get('admin', async () => (await adminKeyDigest(this.#ctx)) ?? null);
    if (!adminKeyMatches(digest, presented)) throw this.#failed(address, invalidAdminKey());
  }

  /** A key was issued through the admin API: it is accepted at once. */
  keyIssued(apiKey: string, tenantId: string): void {
    this.#index.add(hashKey(apiKey), tenantId);
  }

  /**
   * Drops every cached answer and reloads the index of usable keys (after a key is revoked or a
   * tenant changes through the API); resolves once the reload is done.
   */
  forgetAll(): Promise<void> {
    this.#keys.clear();
    this.#adminDigest.clear();
    return this.#index.refresh();
  }

  /**
   * A key this server has no answer for may go on to the warehouse only when the index lists it
   * (or is not loaded), or — for a tenant that has keys — within the tenant's small budget for
   * keys minted elsewhere since the last reload.
   */
  #admitUnknown(digest: string, tenantId: string, address: string | undefined): void {
    if (this.#index.lists(digest, tenantId) !== false) return;
    if (!this.#index.hasTenant(tenantId)) {
      this.#options.onShed?.('not_listed');
      throw this.#failed(address, invalidApiKeyError());
    }
    if (!this.#unlisted.take(tenantId)) {
      // Not counted as a failure: a key minted a moment ago is retried until the next reload lists it.
      this.#options.onShed?.('unlisted_budget');
      throw busy('this key is not known to the server yet; retry in a moment');
    }
  }

  #refuseBlocked(address: string | undefined): void {
    const waitMs = this.#failures.waitFor(clientKey(address));
    if (waitMs <= 0) return;
    this.#options.onShed?.('address_blocked');
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    throw new HttpError(429, 'TOO_MANY_AUTH_FAILURES', `too many failed authentications from this address; retry in ${seconds} s`, {
      'retry-after': String(seconds),
    });
  }

  #failed(address: string | undefined, error: Error): Error {
    this.#failures.spend(clientKey(address));
    return error;
  }

  #verify(presented: string): Promise<VerifiedKey | null> {
    return verifyApiKey(this.#ctx, presented).catch(refusalAsNull);
  }

  /** A verification of a key not accepted before: at most `maxConcurrentVerifications` at once, the rest 503 at once. */
  async #verifyCapped(presented: string): Promise<VerifiedKey | null> {
    if (this.#verifying >= this.#maxVerifying) {
      this.#options.onShed?.('verifications_busy');
      throw busy('the server is verifying too many new keys at once; retry in a moment');
    }
    this.#verifying++;
    try {
      return await this.#verify(presented);
    } finally {
      this.#verifying--;
    }
  }

  #touch(verified: VerifiedKey): void {
    const now = this.#ctx.now().getTime();
    const last = this.#touched.get(verified.apiKeyId) ?? verified.lastUsedAt?.getTime() ?? 0;
    if (now - last < this.#touchEveryMs) return;
    this.#touched.set(verified.apiKeyId, now);
    touchKey(this.#ctx, verified.apiKeyId).catch(this.#options.onTouchError ?? (() => {}));
  }
}

/** A refusal becomes a cacheable `null`; anything else (warehouse down) propagates uncached. */
function refusalAsNull(err: unknown): null {
  if (isConvergenceError(err) && err.code === 'AUTH') return null;
  throw err;
}
