import elkBundled from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode, ElkPoint } from 'elkjs/lib/elk-api.js';
import type { LineageGraph, LineageNode } from '../model.ts';
import { esc, hrefFrom, type PageDepth } from './html.ts';

/**
 * The lineage graph as inline SVG, laid out here (not in the browser) so it reads with scripts
 * off: ELK's layered layout, left to right, boxes sized to their text in a monospace font.
 */

/** Box text metrics; site.css sets the same fonts (monospace, 13px labels, 11px details). */
const LABEL_CHAR = 13 * 0.62;
const DETAIL_CHAR = 11 * 0.62;
const PAD_X = 10;
const MAX_CHARS = 48;
const HEIGHT_ONE_LINE = 30;
const HEIGHT_TWO_LINES = 46;
const MARGIN = 12;

interface Box {
  node: LineageNode;
  label: string;
  detail: string | null;
  width: number;
  height: number;
}

/** Text past MAX_CHARS is cut with an ellipsis; the whole text stays in the node's <title>. */
const clip = (text: string) => (text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS - 1)}…` : text);

function boxOf(node: LineageNode): Box {
  const label = clip(node.label);
  const detail = node.detail === null ? null : clip(node.detail);
  const textWidth = Math.max(label.length * LABEL_CHAR, (detail?.length ?? 0) * DETAIL_CHAR);
  return { node, label, detail, width: Math.ceil(textWidth + 2 * PAD_X), height: detail === null ? HEIGHT_ONE_LINE : HEIGHT_TWO_LINES };
}

const LAYOUT_OPTIONS = {
  'elk.algorithm': 'layered',
  'elk.direction': 'RIGHT',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.spacing.nodeNode': '16',
  'elk.layered.spacing.nodeNodeBetweenLayers': '48',
  'elk.layered.spacing.edgeNodeBetweenLayers': '16',
  'elk.padding': `[top=${MARGIN},left=${MARGIN},bottom=${MARGIN},right=${MARGIN}]`,
};

/**
 * Beyond this many nodes crossing minimisation makes one pass instead of ELK's default seven:
 * a tenant of a hundred pipelines lays out in half the time, and a graph that large is read by
 * following highlighted edges rather than by the last few crossings saved.
 */
const THOROUGH_LAYOUT_NODES = 150;

export interface LaidOutGraph {
  width: number;
  height: number;
  nodes: Array<Box & { x: number; y: number }>;
  edges: Array<{ from: string; to: string; via: string; points: ElkPoint[] }>;
}

/** Positions of every node and the route of every edge (edges to unknown nodes are left out). */
export async function layoutLineage(graph: LineageGraph): Promise<LaidOutGraph> {
  const boxes = new Map(graph.nodes.map((node) => [node.id, boxOf(node)]));
  const edges = graph.edges.filter((edge) => boxes.has(edge.from) && boxes.has(edge.to));
  const ids = new Map(graph.nodes.map((node, i) => [node.id, `n${i}`]));
  const root: ElkNode = {
    id: 'root',
    layoutOptions: { ...LAYOUT_OPTIONS, 'elk.layered.thoroughness': graph.nodes.length > THOROUGH_LAYOUT_NODES ? '1' : '7' },
    children: [...boxes.values()].map((box) => ({ id: ids.get(box.node.id)!, width: box.width, height: box.height })),
    edges: edges.map((edge, i): ElkExtendedEdge => ({ id: `e${i}`, sources: [ids.get(edge.from)!], targets: [ids.get(edge.to)!] })),
  };
  const laid = await new ELK().layout(root);
  const position = new Map((laid.children ?? []).map((child) => [child.id, child]));
  const routes = new Map((laid.edges ?? []).map((edge) => [edge.id, edge.sections ?? []]));
  return {
    width: Math.ceil(laid.width ?? 0),
    height: Math.ceil(laid.height ?? 0),
    nodes: [...boxes.values()].map((box) => {
      const at = position.get(ids.get(box.node.id)!);
      return { ...box, x: at?.x ?? 0, y: at?.y ?? 0 };
    }),
    edges: edges.map((edge, i) => ({
      ...edge,
      points: (routes.get(`e${i}`) ?? []).flatMap((section) => [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]),
    })),
  };
}

/** The bundle is CommonJS; its constructor is also its `default` export, which its typings describe. */
const ELK = elkBundled.default;

const num = (n: number) => String(Math.round(n * 10) / 10);

function nodeSvg(depth: PageDepth, box: LaidOutGraph['nodes'][number]): string {
  const { node } = box;
  const labelY = box.detail === null ? box.height / 2 + 4.5 : 19;
  const group = [
    `<g class="node node-${node.kind}" data-node="${esc(node.id)}" transform="translate(${num(box.x)},${num(box.y)})">`,
    `<title>${esc(node.detail === null ? node.label : `${node.label}\n${node.detail}`)}</title>`,
    `<rect width="${box.width}" height="${box.height}" rx="5"></rect>`,
    `<text class="label" x="${PAD_X}" y="${num(labelY)}">${esc(box.label)}</text>`,
    box.detail === null ? '' : `<text class="detail" x="${PAD_X}" y="36">${esc(box.detail)}</text>`,
    '</g>',
  ].join('');
  return node.href === null ? group : `<a href="${hrefFrom(depth, node.href)}">${group}</a>`;
}

function edgeSvg(edge: LaidOutGraph['edges'][number]): string {
  const d = edge.points.map((p, i) => `${i ? 'L' : 'M'}${num(p.x)} ${num(p.y)}`).join(' ');
  return `<path class="edge" data-from="${esc(edge.from)}" data-to="${esc(edge.to)}" data-via="${esc(edge.via)}" d="${d}" marker-end="url(#arrow)"></path>`;
}

/** The laid-out graph as an <svg> for a page at `depth`; links go to the nodes' pages. */
export function lineageSvg(depth: PageDepth, laid: LaidOutGraph): string {
  return [
    `<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="${laid.width}" height="${laid.height}" viewBox="0 0 ${laid.width} ${laid.height}" role="img" aria-label="Lineage graph">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">',
    '<path class="arrow-head" d="M0 0 L10 5 L0 10 z"></path></marker></defs>',
    '<g class="viewport">',
    `<g class="edges">${laid.edges.map(edgeSvg).join('\n')}</g>`,
    `<g class="nodes">${laid.nodes.map((box) => nodeSvg(depth, box)).join('\n')}</g>`,
    '</g></svg>',
  ].join('\n');
}
