/**
 * A small read-through cache for the hot reads of `serve` (key verification, run status). Every
 * warehouse call on the embedded default opens the DuckDB file (~10 ms, one at a time per
 * process), so under load the same answer is asked for many times a second. Concurrent misses of
 * one key share a single load; answers are fresh for `ttlMs`, then, for `staleMs` more, still
 * answered at once while one background reload replaces them — so callers never queue behind a
 * reload of a hot key. Failures are never cached.
 */
export interface TtlCacheOptions {
  ttlMs: number;
  /** How long past its freshness an answer may still be given while it is reloaded (default 0). */
  staleMs?: number;
  /** Entries kept at most; the oldest are dropped first. */
  maxEntries?: number;
  now?: () => number;
}

interface Entry<V> {
  value: V;
  freshUntil: number;
  staleUntil: number;
}

export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #staleMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry<V>>();
  readonly #loading = new Map<string, Promise<V>>();
  /** Bumped by delete/clear so a load that started before an invalidation is not stored after it. */
  #generation = 0;

  constructor(options: TtlCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#staleMs = options.staleMs ?? 0;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The cached value, or the result of `load` (shared with any concurrent caller of the same key).
   * `ttlMs` may give each value its own freshness (0 or less: not kept).
   */
  get(key: string, load: () => Promise<V>, ttlMs: (value: V) => number = () => this.#ttlMs): Promise<V> {
    const hit = this.#entries.get(key);
    const now = this.#now();
    if (hit) {
      if (hit.freshUntil > now) return Promise.resolve(hit.value);
      if (hit.staleUntil > now) {
        if (!this.#loading.has(key)) this.#load(key, load, ttlMs).catch(() => undefined);
        return Promise.resolve(hit.value);
      }
      this.#entries.delete(key);
    }
    return this.#loading.get(key) ?? this.#load(key, load, ttlMs);
  }

  /** The answer held for `key` (fresh, or stale and still usable), without loading or reloading anything. */
  peek(key: string): { value: V } | undefined {
    const hit = this.#entries.get(key);
    return hit && hit.staleUntil > this.#now() ? { value: hit.value } : undefined;
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

  #load(key: string, load: () => Promise<V>, ttlMs: (value: V) => number): Promise<V> {
    const generation = this.#generation;
    const loading = load().then(
      (value) => {
        this.#loading.delete(key);
        const ttl = ttlMs(value);
        if (generation !== this.#generation) return value;
        if (ttl > 0) this.#store(key, value, ttl);
        else this.#entries.delete(key);
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

  #store(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    const freshUntil = this.#now() + ttlMs;
    this.#entries.set(key, { value, freshUntil, staleUntil: freshUntil + this.#staleMs });
  }
}
