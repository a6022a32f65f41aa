import type { SiteFiles, SiteModel } from '../model.ts';

/** Every file of the static site for `model`: pages, the lineage graph, bundled scripts and styles. */
export async function renderSite(model: SiteModel): Promise<SiteFiles> {
  throw new Error(`renderSite is not written yet (${model.tenantId})`);
}
