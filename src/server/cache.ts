/**
 * A small read-through cache for the hot reads of `serve` (key verification, run status). Every
 * warehouse call on the embedded default opens the DuckDB file (~10 ms, one at a time per
 * process), so under load the same answer is asked for many times a second. Concurrent misses of
 * one key share a single load, and answers live for `ttlMs`; failures are never cached.
 */
export interface TtlCacheOptions {
  ttlMs: number;
  /** Entries kept at most; the oldest are dropped first. */
  maxEntries?: number;
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry<V>>();
  readonly #loading = new Map<string, Promise<V>>();
  /** Bumped by delete/clear so a load that started before an invalidation is not stored after it. */
  #generation = 0;

  constructor(options: TtlCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** The cached value, or the result of `load` (shared with any concurrent caller of the same key). */
  get(key: string, load: () => Promise<V>, ttlMs: (value: V) => number = () => this.#ttlMs): Promise<V> {
    const hit = this.#entries.get(key);
    if (hit && hit.expiresAt > this.#now()) return Promise.resolve(hit.value);
    if (hit) this.#entries.delete(key);
    const pending = this.#loading.get(key);
    if (pending) return pending;
    const generation = this.#generation;
    const loading = load().then(
      (value) => {
        this.#loading.delete(key);
        const ttl = ttlMs(value);
        if (ttl > 0 && generation === this.#generation) this.#store(key, value, ttl);
        return value;
      },
      (err: unknown) => {
        this.#loading.delete(key);
        throw err;
      },
    );
    this.#loading.set(key, loading);
    return loading;
  }

  delete(key: string): void {
    this.#generation++;
    this.#entries.delete(key);
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }

  #store(key: string, value: V, ttlMs: number): void {
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { value, expiresAt: this.#now() + ttlMs });
  }
}
