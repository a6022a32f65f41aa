import type { SiteFiles, SiteModel } from '../model.ts';
import { siteAssets } from './assets.ts';
import { layoutLineage, lineageSvg, type LaidOutGraph } from './graph.ts';
import { sitePage } from './html.ts';
import { renderIndexPage } from './index-page.ts';
import { siteLinks } from './links.ts';
import { renderPipelinePage } from './pipeline-page.ts';
import { renderTablePage } from './table-page.ts';

/**
 * Every file of the static site for `model`: pages, the lineage graph, bundled scripts and styles.
 * `layout` is the lineage laid out, when the caller started that early.
 */
export async function renderSite(model: SiteModel, layout?: Promise<LaidOutGraph>): Promise<SiteFiles> {
  const files: SiteFiles = new Map();
  const links = siteLinks(model);
  const laid = await (layout ?? layoutLineage(model.lineage));
  files.set('index.html', renderIndexPage(model, lineageSvg(0, laid)));
  for (const table of model.tables) files.set(sitePage(table.href), renderTablePage(model, table, links));
  for (const pipeline of model.pipelines) files.set(sitePage(pipeline.href), renderPipelinePage(model, pipeline, links));
  for (const [file, content] of await siteAssets()) files.set(file, content);
  return files;
}
