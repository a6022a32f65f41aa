import type { ServiceContext } from '../context.ts';
import type { SiteFiles } from './model.ts';
import { generateSite, type GeneratedSite } from './site.ts';

export interface SiteCacheOptions {
  /** A site older than this is generated again on the next request, so new runs show on reload. */
  maxAgeMs: number;
  onGenerated?(site: GeneratedSite, ms: number): void;
}

/**
 * The site of one tenant kept in memory for a server: generated on first use, again once it is
 * older than maxAgeMs or marked stale (a config changed). Concurrent requests share one generation;
 * a failed generation is not kept, so the next request tries again.
 */
export class SiteCache {
  readonly #ctx: ServiceContext;
  readonly #tenantId: string;
  readonly #options: SiteCacheOptions;
  #site: { files: SiteFiles; at: number } | undefined;
  #pending: Promise<SiteFiles> | undefined;
  #stale = false;

  constructor(ctx: ServiceContext, tenantId: string, options: SiteCacheOptions) {
    this.#ctx = ctx;
    this.#tenantId = tenantId;
    this.#options = options;
  }

  /** The next request generates the site again (a change was seen). */
  markStale(): void {
    this.#stale = true;
  }

  async files(): Promise<SiteFiles> {
    const site = this.#site;
    if (site && !this.#stale && Date.now() - site.at < this.#options.maxAgeMs) return site.files;
    this.#pending ??= this.#generate().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #generate(): Promise<SiteFiles> {
    this.#stale = false;
    const started = Date.now();
    const generated = await generateSite(this.#ctx, this.#tenantId, { offThread: true });
    this.#site = { files: generated.files, at: Date.now() };
    this.#options.onGenerated?.(generated, Date.now() - started);
    return generated.files;
  }
}
