import type { LineageNode, SiteModel } from '../model.ts';
import { esc, hrefFrom, type PageDepth } from './html.ts';

/** Links between pages, looked up in the model so only pages that exist are linked. */
export interface SiteLinks {
  /** A lineage node by id: its label as a link to its page, or as text when it has none. */
  node(depth: PageDepth, id: string): string;
  /** A pipeline id as a link to its page, or as text when the site has no page for it. */
  pipeline(depth: PageDepth, pipelineId: string): string;
}

export function siteLinks(model: SiteModel): SiteLinks {
  const nodes = new Map<string, LineageNode>(model.lineage.nodes.map((node) => [node.id, node]));
  const pipelines = new Map(model.pipelines.map((p) => [p.pipelineId, p.href]));
  return {
    node(depth, id) {
      const node = nodes.get(id);
      if (!node) return `<code>${esc(id)}</code>`;
      const text = `<span class="kind kind-${node.kind}">${esc(node.kind)}</span> ${esc(node.label)}`;
      return node.href === null ? text : `<a href="${hrefFrom(depth, node.href)}">${text}</a>`;
    },
    pipeline(depth, pipelineId) {
      const href = pipelines.get(pipelineId);
      return href === undefined ? esc(pipelineId) : `<a href="${hrefFrom(depth, href)}">${esc(pipelineId)}</a>`;
    },
  };
}

/** A list of node links, or a dash. */
export function nodeList(links: SiteLinks, depth: PageDepth, ids: string[]): string {
  if (!ids.length) return '<p class="muted">none</p>';
  return `<ul class="nodes">${ids.map((id) => `<li>${links.node(depth, id)}</li>`).join('')}</ul>`;
}
