import type { ServiceContext } from '../context.ts';
import type { SiteModel } from './model.ts';

/**
 * The site model of one tenant: its pipelines (workspace files, else pushed configs), the lineage
 * they make, columns from the warehouse and run/DQ history from the metadata tables. Reads only.
 */
export async function collectSiteModel(ctx: ServiceContext, tenantId: string): Promise<SiteModel> {
  throw new Error(`collectSiteModel is not written yet (${ctx.env.name}/${tenantId})`);
}
