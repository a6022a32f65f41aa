import { ADMIN_KEY_PATTERN, digestsEqual, hashKey, tenantOfKey } from '../domain/api-keys.ts';
import { authError, isConvergenceError } from '../lib/errors.ts';
import type { ServiceContext } from '../services/context.ts';
import { adminKeyDigest, invalidApiKeyError, tenantsWithActiveKeys, touchKey, verifyApiKey, type VerifiedKey } from '../services/keys.ts';
import { ActiveTenants } from './active-tenants.ts';
import { AuthFailureLimiter, DEFAULT_AUTH_FAILURE_LIMITS, type AuthFailureLimits } from './auth-failures.ts';
import { TtlCache } from './cache.ts';
import { HttpError } from './http-errors.ts';

export interface AuthOptions {
  /**
   * How long a verification (either answer) is reused; for as long again it is still used while it
   * is re-checked. Revocations through the API apply at once, others within twice this.
   */
  cacheTtlMs: number;
  /** last_used_at is written at most this often per key. */
  touchEveryMs?: number;
  /** Failed authentications allowed per client address before it gets 429. */
  failureLimits?: AuthFailureLimits;
  /** How often the in-memory set of tenants with usable keys is reloaded (0: loaded once). */
  activeTenantsRefreshMs?: number;
  /** Verifications of keys not seen before that may wait on the warehouse at once; beyond, 503 at once. */
  maxConcurrentVerifications?: number;
  onTouchError?(err: unknown): void;
  onRefreshError?(err: unknown): void;
  /** Each refusal that did not reach the warehouse or key store, by reason (for metrics). */
  onShed?(reason: 'address_blocked' | 'verifications_busy' | 'no_active_key'): void;
}

export const DEFAULT_ACTIVE_TENANTS_REFRESH_MS = 10_000;
export const DEFAULT_MAX_CONCURRENT_VERIFICATIONS = 16;

const missing = (header: string) => authError(`missing ${header} header`, { suggestion: `send the key in the ${header} header` });
const invalidAdminKey = () =>
  authError('invalid admin key', { suggestion: 'send the key printed by `convergence keys admin create` in X-Admin-Key' });

/**
 * Verifies X-API-Key and X-Admin-Key for the server, so that junk keys cost real tenants nothing:
 * - a client address that keeps failing gets 429 before its keys are looked at;
 * - a key naming a tenant without a usable key is refused from an in-memory set;
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
  readonly #failures: AuthFailureLimiter;
  readonly #active: ActiveTenants;
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
    this.#failures = new AuthFailureLimiter(options.failureLimits ?? DEFAULT_AUTH_FAILURE_LIMITS, now);
    this.#active = new ActiveTenants({
      load: () => tenantsWithActiveKeys(ctx),
      refreshEveryMs: options.activeTenantsRefreshMs ?? DEFAULT_ACTIVE_TENANTS_REFRESH_MS,
      onError: (err) => options.onRefreshError?.(err),
    });
    this.#maxVerifying = options.maxConcurrentVerifications ?? DEFAULT_MAX_CONCURRENT_VERIFICATIONS;
  }

  /** Loads the set of tenants with usable keys and keeps it fresh; never rejects. */
  start(): Promise<void> {
    return this.#active.start();
  }

  stop(): void {
    this.#active.stop();
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
    if (!known && this.#active.has(tenantId) === false) {
      this.#options.onShed?.('no_active_key');
      throw this.#failed(address, invalidApiKeyError());
    }
    const verified = await this.#keys.get(
      digest,
      known ? () => this.#verify(presented) : () => this.#verifyCapped(presented),
      // An accepted key is never reused past its own expiry.
      (key) => (key?.expiresAt ? Math.min(this.#cacheTtlMs, key.expiresAt.getTime() - this.#ctx.now().getTime()) : this.#cacheTtlMs),
    );
    // A cached answer never outlives the key's own expiry.
    if (!verified || (verified.expiresAt && verified.expiresAt.getTime() <= this.#ctx.now().getTime())) {
      throw this.#failed(address, invalidApiKeyError());
    }
    this.#touch(verified);
    return verified;
  }

  /** The admin key presented by a client at `address`; throws 401, 429. */
  async admin(presented: string | undefined, address?: string): Promise<void> {
    this.#refuseBlocked(address);
    if (!presented) throw this.#failed(address, missing('X-Admin-Key'));
    if (!ADMIN_KEY_PATTERN.test(presented)) throw this.#failed(address, invalidAdminKey());
    const stored = await this.#adminDigest.get('admin', async () => (await adminKeyDigest(this.#ctx)) ?? null);
    if (!stored || !digestsEqual(stored, hashKey(presented))) throw this.#failed(address, invalidAdminKey());
  }

  /** A key was issued through the admin API: its tenant is accepted at once. */
  keyIssued(tenantId: string): void {
    this.#active.add(tenantId);
  }

  /**
   * Drops every cached answer and reloads the tenants with usable keys (after a key is revoked or
   * a tenant changes through the API); resolves once the reload is done.
   */
  forgetAll(): Promise<void> {
    this.#keys.clear();
    this.#adminDigest.clear();
    return this.#active.refresh();
  }

  #refuseBlocked(address: string | undefined): void {
    const waitMs = this.#failures.blockedFor(address);
    if (waitMs <= 0) return;
    this.#options.onShed?.('address_blocked');
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    throw new HttpError(429, 'TOO_MANY_AUTH_FAILURES', `too many failed authentications from this address; retry in ${seconds} s`, {
      'retry-after': String(seconds),
    });
  }

  #failed(address: string | undefined, error: Error): Error {
    this.#failures.failed(address);
    return error;
  }

  #verify(presented: string): Promise<VerifiedKey | null> {
    return verifyApiKey(this.#ctx, presented).catch(refusalAsNull);
  }

  /** A verification of a key not seen before: at most `maxConcurrentVerifications` at once, the rest 503 at once. */
  async #verifyCapped(presented: string): Promise<VerifiedKey | null> {
    if (this.#verifying >= this.#maxVerifying) {
      this.#options.onShed?.('verifications_busy');
      throw new HttpError(503, 'AUTH_BUSY', 'the server is verifying too many new keys at once; retry in a moment', { 'retry-after': '1' });
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
