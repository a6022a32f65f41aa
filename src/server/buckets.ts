import { isIPv6 } from 'node:net';

/**
 * Token buckets by name: each spend takes one token, tokens come back one every `refillEveryMs`
 * up to `burst`. The server keeps two: failed authentications per client address (an address
 * that has spent its burst gets 429 before its keys are looked at) and verifications of unlisted
 * keys per tenant (see Authenticator).
 */
export interface BucketLimits {
  /** Tokens a name has when full (0 turns the limit off). */
  burst: number;
  /** One token comes back every this many ms. */
  refillEveryMs: number;
  /** Names remembered at most; the least recently spending are forgotten first. */
  maxNames?: number;
}

/** Failed authentications per client address: 10 in a row, then one more every 6 s. */
export const DEFAULT_AUTH_FAILURE_LIMITS: BucketLimits = { burst: 10, refillEveryMs: 6_000 };

interface Bucket {
  tokens: number;
  at: number;
}

export class KeyedBuckets {
  readonly #limits: Required<BucketLimits>;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limits: BucketLimits, now: () => number = Date.now) {
    this.#limits = { maxNames: 100_000, ...limits };
    this.#now = now;
  }

  /** Ms until `name` has a token again; 0 when it has one now. */
  waitFor(name: string): number {
    if (this.#limits.burst <= 0) return 0;
    const bucket = this.#refilled(name);
    if (!bucket || bucket.tokens >= 1) return 0;
    return Math.ceil((1 - bucket.tokens) * this.#limits.refillEveryMs);
  }

  /** Takes a token of `name`; false (and nothing taken) when it has none. */
  take(name: string): boolean {
    if (this.waitFor(name) > 0) return false;
    this.spend(name);
    return true;
  }

  /** Takes a token of `name`, down to none. */
  spend(name: string): void {
    if (this.#limits.burst <= 0) return;
    const bucket = this.#refilled(name) ?? { tokens: this.#limits.burst, at: this.#now() };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    // Re-inserted so the map's order is least recently spending first.
    this.#buckets.delete(name);
    this.#buckets.set(name, bucket);
    if (this.#buckets.size > this.#limits.maxNames) this.#buckets.delete(this.#buckets.keys().next().value!);
  }

  #refilled(name: string): Bucket | undefined {
    const bucket = this.#buckets.get(name);
    if (!bucket) return undefined;
    const now = this.#now();
    bucket.tokens = Math.min(this.#limits.burst, bucket.tokens + (now - bucket.at) / this.#limits.refillEveryMs);
    bucket.at = now;
    if (bucket.tokens >= this.#limits.burst) {
      // A full bucket is the same as none: forget the name.
      this.#buckets.delete(name);
      return undefined;
    }
    return bucket;
  }
}

/**
 * The part of an address that identifies a client: the whole IPv4 address, the /64 of an IPv6 one
 * (a single host may hold a whole /64 and rotate through it).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
