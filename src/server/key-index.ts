/**
 * The digests (SHA-256) of every usable key — ACTIVE, unexpired, of an ACTIVE tenant — with their
 * tenants, kept in memory and reloaded in the background, so a presented key that is not among
 * them is refused without a warehouse round trip, whatever tenant it names. The index holds what
 * the metadata table holds (digests, never keys).
 *
 * Bound: a key minted by another process (the CLI, another instance) is listed at the latest one
 * refresh interval (plus one query) later; until then it is verified only within a small budget
 * per tenant (see Authenticator). Keys issued through this server's admin API are listed at once.
 * Until the first load succeeds (warehouse down, metadata not bootstrapped) the index is unknown
 * and every key is verified.
 */
export interface KeyIndexOptions {
  /** Digest → tenant id of every usable key. */
  load(): Promise<Map<string, string>>;
  refreshEveryMs: number;
  onError?(err: unknown): void;
}

export class KeyIndex {
  readonly #options: KeyIndexOptions;
  #digests: Map<string, string> | undefined;
  #tenants: Set<string> | undefined;
  /** Keys listed while a load was running: that load may have read the table before they existed. */
  readonly #addedDuringLoad = new Map<string, string>();
  #refreshing: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: KeyIndexOptions) {
    this.#options = options;
  }

  /** Loads the index now and then every refresh interval; never rejects. */
  start(): Promise<void> {
    if (!this.#timer && this.#options.refreshEveryMs > 0) {
      this.#timer = setInterval(() => void this.refresh(), this.#options.refreshEveryMs);
      this.#timer.unref();
    }
    return this.refresh();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Reloads the index (one warehouse query). A call while a load runs waits for one more load
   * after it, since the running one may have read the table before the change the caller knows of.
   */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#queued ??= this.#refreshing.then(() => {
        this.#queued = undefined;
        return this.refresh();
      });
      return this.#queued;
    }
    this.#refreshing = this.#options
      .load()
      .then(
        (digests) => {
          for (const [digest, tenantId] of this.#addedDuringLoad) digests.set(digest, tenantId);
          this.#digests = digests;
          this.#tenants = new Set(digests.values());
        },
        (err: unknown) => this.#options.onError?.(err),
      )
      .finally(() => {
        this.#addedDuringLoad.clear();
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  /** Whether a digest is listed for this tenant; undefined while the index is unknown. */
  lists(digest: string, tenantId: string): boolean | undefined {
    return this.#digests ? this.#digests.get(digest) === tenantId : undefined;
  }

  /** Whether the tenant holds any usable key; undefined while the index is unknown. */
  hasTenant(tenantId: string): boolean | undefined {
    return this.#tenants?.has(tenantId);
  }

  /** A key found usable (issued through this server, or verified): listed until the next reload says otherwise. */
  add(digest: string, tenantId: string): void {
    this.#digests?.set(digest, tenantId);
    this.#tenants?.add(tenantId);
    if (this.#refreshing) this.#addedDuringLoad.set(digest, tenantId);
  }
}
