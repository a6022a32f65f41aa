import { isIPv6 } from 'node:net';

/**
 * Failed authentications per client address: a token bucket per address that each refusal
 * empties by one and that refills slowly. Once an address has spent its burst, its requests are
 * answered 429 before any key is looked at, so guessing keys from one place costs the server
 * nothing and teaches the guesser nothing. Only failures are counted: a client whose key works is
 * never slowed by this.
 */
export interface AuthFailureLimits {
  /** Failures an address may have in a row before it is refused (0 turns the limit off). */
  burst: number;
  /** One more failure is allowed every this many ms. */
  refillEveryMs: number;
  /** Addresses remembered at most; the least recently failing are forgotten first. */
  maxAddresses?: number;
}

export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = { burst: 10, refillEveryMs: 6_000 };

interface Bucket {
  tokens: number;
  at: number;
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

export class AuthFailureLimiter {
  readonly #limits: Required<AuthFailureLimits>;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limits: AuthFailureLimits, now: () => number = Date.now) {
    this.#limits = { maxAddresses: 100_000, ...limits };
    this.#now = now;
  }

  /** Ms until `address` may try again; 0 when it may try now. */
  blockedFor(address: string | undefined): number {
    if (this.#limits.burst <= 0) return 0;
    const bucket = this.#refilled(clientKey(address));
    if (!bucket || bucket.tokens >= 1) return 0;
    return Math.ceil((1 - bucket.tokens) * this.#limits.refillEveryMs);
  }

  /** Counts one failed authentication of `address`. */
  failed(address: string | undefined): void {
    if (this.#limits.burst <= 0) return;
    const key = clientKey(address);
    const bucket = this.#refilled(key) ?? { tokens: this.#limits.burst, at: this.#now() };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    // Re-inserted so the map's order is least recently failing first.
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > this.#limits.maxAddresses) this.#buckets.delete(this.#buckets.keys().next().value!);
  }

  #refilled(key: string): Bucket | undefined {
    const bucket = this.#buckets.get(key);
    if (!bucket) return undefined;
    const now = this.#now();
    bucket.tokens = Math.min(this.#limits.burst, bucket.tokens + (now - bucket.at) / this.#limits.refillEveryMs);
    bucket.at = now;
    if (bucket.tokens >= this.#limits.burst) {
      // A full bucket is the same as none: forget the address.
      this.#buckets.delete(key);
      return undefined;
    }
    return bucket;
  }
}
