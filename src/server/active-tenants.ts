/**
 * The set of tenants that hold at least one usable key, kept in memory and refreshed in the
 * background, so a key that names any other tenant (an unknown prefix, a tenant whose keys are
 * all revoked or expired, a suspended tenant) is refused without a warehouse round trip.
 *
 * Bound: a key minted by another process (the CLI, another instance) for a tenant that had no
 * usable key is accepted at the latest one refresh interval (plus one query) later; keys issued
 * through this server's admin API are added at once. Until the first load succeeds (warehouse
 * down, metadata not bootstrapped) the set is unknown and every key is verified.
 */
export interface ActiveTenantsOptions {
  load(): Promise<Set<string>>;
  refreshEveryMs: number;
  onError?(err: unknown): void;
}

export class ActiveTenants {
  readonly #options: ActiveTenantsOptions;
  #tenants: Set<string> | undefined;
  /** Tenants added while a load was running: that load may have read the table before their key existed. */
  readonly #addedDuringLoad = new Set<string>();
  #refreshing: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ActiveTenantsOptions) {
    this.#options = options;
  }

  /** Loads the set now and then every refresh interval; never rejects. */
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
   * Reloads the set (one warehouse query). A call while a load runs waits for one more load after
   * it, since the running one may have read the table before the change the caller knows of.
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
        (tenants) => {
          for (const tenant of this.#addedDuringLoad) tenants.add(tenant);
          this.#tenants = tenants;
        },
        (err: unknown) => this.#options.onError?.(err),
      )
      .finally(() => {
        this.#addedDuringLoad.clear();
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  /** true or false once loaded; undefined while the set is unknown (then keys must be verified). */
  has(tenantId: string): boolean | undefined {
    return this.#tenants?.has(tenantId);
  }

  /** A key was just issued for this tenant through this server. */
  add(tenantId: string): void {
    this.#tenants?.add(tenantId);
    if (this.#refreshing) this.#addedDuringLoad.add(tenantId);
  }
}
