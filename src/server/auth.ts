import { hashKey, tenantOfKey } from '../domain/api-keys.ts';
import { authError, isConvergenceError } from '../lib/errors.ts';
import type { ServiceContext } from '../services/context.ts';
import { invalidApiKeyError, touchKey, verifyAdminKey, verifyApiKey, type VerifiedKey } from '../services/keys.ts';
import { TtlCache } from './cache.ts';

export interface AuthOptions {
  /**
   * How long a verification (either answer) is reused; for as long again it is still used while it
   * is re-checked. Revocations through the API apply at once, others within twice this.
   */
  cacheTtlMs: number;
  /** last_used_at is written at most this often per key. */
  touchEveryMs?: number;
  onTouchError?(err: unknown): void;
}

const missing = (header: string) => authError(`missing ${header} header`, { suggestion: `send the key in the ${header} header` });

/**
 * Verifies X-API-Key and X-Admin-Key for the server. Answers are cached by the key's SHA-256, so
 * the plain key is never kept, and refusals are cached too, so guessing keys costs the warehouse
 * nothing. Every refusal is the same 401, whatever was wrong.
 */
export class Authenticator {
  readonly #ctx: ServiceContext;
  readonly #keys: TtlCache<VerifiedKey | null>;
  readonly #admin: TtlCache<boolean>;
  readonly #touched = new Map<string, number>();
  readonly #touchEveryMs: number;
  readonly #cacheTtlMs: number;
  readonly #onTouchError: (err: unknown) => void;

  constructor(ctx: ServiceContext, options: AuthOptions) {
    this.#ctx = ctx;
    const now = () => ctx.now().getTime();
    this.#cacheTtlMs = options.cacheTtlMs;
    // A hot key is re-checked in the background: no request waits for the warehouse once it is cached.
    this.#keys = new TtlCache({ ttlMs: options.cacheTtlMs, staleMs: options.cacheTtlMs, now });
    this.#admin = new TtlCache({ ttlMs: options.cacheTtlMs, staleMs: options.cacheTtlMs, maxEntries: 1_000, now });
    this.#touchEveryMs = options.touchEveryMs ?? 60_000;
    this.#onTouchError = options.onTouchError ?? (() => {});
  }

  async tenant(presented: string | undefined): Promise<VerifiedKey> {
    if (!presented) throw missing('X-API-Key');
    // Malformed keys are refused before the cache, so a flood of junk cannot push real keys out of it.
    if (!tenantOfKey(presented)) throw invalidApiKeyError();
    const digest = hashKey(presented);
    const verified = await this.#keys.get(
      digest,
      () => verifyApiKey(this.#ctx, presented).catch(refusalAsNull),
      // An accepted key is never reused past its own expiry.
      (key) => (key?.expiresAt ? Math.min(this.#cacheTtlMs, key.expiresAt.getTime() - this.#ctx.now().getTime()) : this.#cacheTtlMs),
    );
    // A cached answer never outlives the key's own expiry.
    if (!verified || (verified.expiresAt && verified.expiresAt.getTime() <= this.#ctx.now().getTime())) throw invalidApiKeyError();
    this.#touch(verified);
    return verified;
  }

  async admin(presented: string | undefined): Promise<void> {
    if (!presented) throw missing('X-Admin-Key');
    const accepted = await this.#admin.get(hashKey(presented), () =>
      verifyAdminKey(this.#ctx, presented).then(
        () => true,
        (err: unknown) => refusalAsNull(err) ?? false,
      ),
    );
    if (!accepted)
      throw authError('invalid admin key', { suggestion: 'send the key printed by `convergence keys admin create` in X-Admin-Key' });
  }

  /** Drops every cached answer (after a key is revoked or a tenant changes through the API). */
  forgetAll(): void {
    this.#keys.clear();
    this.#admin.clear();
  }

  #touch(verified: VerifiedKey): void {
    const now = this.#ctx.now().getTime();
    const last = this.#touched.get(verified.apiKeyId) ?? verified.lastUsedAt?.getTime() ?? 0;
    if (now - last < this.#touchEveryMs) return;
    this.#touched.set(verified.apiKeyId, now);
    touchKey(this.#ctx, verified.apiKeyId).catch(this.#onTouchError);
  }
}

/** A refusal becomes a cacheable `null`; anything else (warehouse down) propagates uncached. */
function refusalAsNull(err: unknown): null {
  if (isConvergenceError(err) && err.code === 'AUTH') return null;
  throw err;
}
