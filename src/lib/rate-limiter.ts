/**
 * Token bucket: `requestsPerSecond` tokens per second, holding at most `burst` tokens (default 1,
 * i.e. requests are evenly spaced by 1000 / requestsPerSecond ms). Clients wait for a token
 * (`acquire`); servers refuse when there is none (`tryAcquire`).
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #capacity: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #last: number;

  constructor(options: { requestsPerSecond: number; burst?: number; now?: () => number; sleep?: (ms: number) => Promise<void> }) {
    if (!(options.requestsPerSecond > 0) || !Number.isFinite(options.requestsPerSecond)) {
      throw new RangeError(`rate_limit.requests_per_second must be a positive number, got ${options.requestsPerSecond}`);
    }
    this.#rate = options.requestsPerSecond / 1000;
    this.#capacity = Math.max(1, options.burst ?? 1);
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#tokens = this.#capacity;
    this.#last = this.#now();
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#last);
    this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#rate);
    this.#last = now;
  }

  /** Takes a token and returns 0, or takes nothing and returns the ms until one is available. */
  tryAcquire(): number {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - this.#tokens) / this.#rate);
  }

  /** Wait until a token is available, then take it. */
  async acquire(): Promise<void> {
    for (;;) {
      this.#refill();
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await this.#sleep(Math.ceil((1 - this.#tokens) / this.#rate));
    }
  }
}
