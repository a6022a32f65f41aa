/**
 * The tenant site's renderer on fixture models: which files it writes, that every link lands on
 * a file of the site, the lineage graph's nodes and edges, the pipeline charts' containers and
 * data, and pages for a pipeline never run and one whose config is invalid.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { SiteFiles, SiteModel } from '../../src/services/docs/model.ts';
import { renderSite } from '../../src/services/docs/render/index.ts';
import { attr, htmlTags, type HtmlTag } from '../helpers/html-tags.ts';
import { DEMO_RULES, DEMO_VIEWS, demoSiteModel, largeSiteModel } from '../helpers/site-model.ts';

const page = (files: SiteFiles, file: string) => {
  const content = files.get(file);
  assert.equal(typeof content, 'string', `${file} is a page of the site`);
  return content as string;
};
const tagsOf = (files: SiteFiles, file: string) => htmlTags(page(files, file));
const withClass = (tags: HtmlTag[], name: string, cls: string) =>
  tags.filter((t) => t.name === name && (attr(t, 'class') ?? '').split(' ').includes(cls));
const CHART_NAMES = ['duration', 'rows', 'status', 'dq'];

describe('renderSite', () => {
  let model: SiteModel;
  let files: SiteFiles;

  it('writes the index, a page per table and pipeline, and the assets the pages load', async () => {
    model = demoSiteModel();
    files = await renderSite(model);
    assert.deepEqual(
      [...files.keys()].sort(),
      [
        'assets/site.css',
        'assets/site.js',
        'assets/uPlot.iife.min.js',
        'assets/uPlot.min.css',
        'index.html',
        'pipelines/p_broken.html',
        'pipelines/p_idle.html',
        'pipelines/p_usage_daily.html',
        ...model.tables.map((t) => `tables/${t.name}.html`),
      ].sort(),
    );
    assert.match(String(files.get('assets/uPlot.iife.min.js')), /uPlot/);
  });

  it('links only to files of the site, relative to each page', () => {
    for (const file of [...files.keys()].filter((f) => f.endsWith('.html'))) {
      const tags = tagsOf(files, file);
      const targets = tags.flatMap((t) => [attr(t, 'href'), attr(t, 'src')]).filter((v): v is string => v !== undefined);
      assert.ok(targets.length > 0, `${file} links somewhere`);
      for (const target of targets) {
        assert.doesNotMatch(target, /^[a-z]+:|^\/|^#?$/i, `${file}: ${target} is a relative link`);
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), target.split('#')[0]!));
        assert.ok(files.has(resolved), `${file}: ${target} resolves to ${resolved}, a file of the site`);
      }
    }
  });

  it('carries the page policy on every page and no inline script or style', () => {
    for (const file of [...files.keys()].filter((f) => f.endsWith('.html'))) {
      const tags = tagsOf(files, file);
      const policy = tags.find((t) => t.name === 'meta' && attr(t, 'http-equiv') === 'Content-Security-Policy');
      assert.match(attr(policy!, 'content') ?? '', /^default-src 'none'; script-src 'self'; style-src 'self';/, file);
      assert.equal(tags.filter((t) => t.name === 'style').length, 0, `${file} has no <style>`);
      assert.ok(!tags.some((t) => attr(t, 'style') !== undefined), `${file} has no style attribute`);
      for (const script of tags.filter((t) => t.name === 'script')) {
        const external = attr(script, 'src') !== undefined && script.text === '';
        const data = attr(script, 'type') === 'application/json' && attr(script, 'id') === 'page-data';
        assert.ok(external || data, `${file}: every script is a file of the site or the data block`);
      }
    }
  });

  it('draws every lineage node and edge with its id, linking nodes that have a page', () => {
    const html = page(files, 'index.html');
    const tags = htmlTags(html);
    const nodes = withClass(tags, 'g', 'node');
    assert.deepEqual(nodes.map((g) => attr(g, 'data-node')).sort(), model.lineage.nodes.map((n) => n.id).sort());
    for (const node of model.lineage.nodes) {
      const g = nodes.find((t) => attr(t, 'data-node') === node.id)!;
      assert.ok((attr(g, 'class') ?? '').split(' ').includes(`node-${node.kind}`), `${node.id} is styled as a ${node.kind}`);
      const linked = html.includes(`<a href="${node.href}"><g class="node node-${node.kind}" data-node="${node.id}"`);
      assert.equal(linked, node.href !== null, `${node.id} is a link exactly when it has a page`);
    }
    const edges = withClass(tags, 'path', 'edge');
    assert.deepEqual(
      edges.map((e) => `${attr(e, 'data-from')} -> ${attr(e, 'data-to')}`).sort(),
      model.lineage.edges.map((e) => `${e.from} -> ${e.to}`).sort(),
    );
    for (const edge of edges) {
      assert.match(attr(edge, 'd') ?? '', /^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+)+$/, 'an edge is a routed path');
      assert.equal(attr(edge, 'marker-end'), 'url(#arrow)');
    }
    for (const view of DEMO_VIEWS) assert.ok(nodes.some((g) => attr(g, 'data-node') === `table:${view}`));
  });

  it('lists pipelines with their summary, tables, and the problems', () => {
    const html = page(files, 'index.html');
    assert.match(html, /<a href="pipelines\/p_usage_daily.html">p_usage_daily<\/a>/);
    assert.match(html, /<td class="num">30<\/td><td class="num">80.0%<\/td>/, 'runs and success rate');
    assert.match(html, /status-failed">FAILED<\/span>/, 'the last run failed');
    assert.match(html, /p_broken<\/a> <span class="status status-invalid">invalid/);
    assert.match(html, /<section class="problems">.*steps: must be a list/s);
    assert.match(
      html,
      /<a href="tables\/idle_table.html">idle_table<\/a><\/td><td>table<\/td><td><span class="muted">not in the warehouse yet/,
    );
  });

  it('gives a pipeline with runs its four chart containers and the data they draw', () => {
    const tags = tagsOf(files, 'pipelines/p_usage_daily.html');
    assert.deepEqual(
      withClass(tags, 'div', 'chart').map((t) => attr(t, 'data-chart')),
      CHART_NAMES,
    );
    const block = tags.find((t) => t.name === 'script' && attr(t, 'id') === 'page-data')!;
    const data = JSON.parse(block.text!);
    assert.equal(data.runs.at.length, 30);
    assert.equal(data.runs.status.filter((s: string) => s === 'FAILED').length, 6);
    assert.deepEqual(
      data.dq.map((s: { label: string }) => s.label),
      DEMO_RULES.map((rule) => `check_usage/${rule} on raw_usage`),
    );
    assert.ok(tags.some((t) => t.name === 'script' && attr(t, 'src') === '../assets/uPlot.iife.min.js'));
    const html = page(files, 'pipelines/p_usage_daily.html');
    assert.match(html, /<tr id="step-check_usage"><td><code>check_usage<\/code><\/td><td>dq<\/td><td>4 rules on raw_usage<\/td>/);
    assert.match(html, /<pre class="yaml"><code>pipeline_id: p_usage_daily/);
  });

  it('says "no runs recorded" for a pipeline never run, instead of empty charts', () => {
    const html = page(files, 'pipelines/p_idle.html');
    assert.match(html, /<p class="empty">no runs recorded<\/p>/);
    assert.equal(withClass(htmlTags(html), 'div', 'chart').length, 0);
  });

  it("shows an invalid pipeline's error, its file's text and no steps", () => {
    const html = page(files, 'pipelines/p_broken.html');
    assert.match(html, /<div class="error"><h2>This pipeline's config is invalid<\/h2><pre>steps: must be a list<\/pre><\/div>/);
    assert.match(html, /<pre class="yaml"><code>pipeline_id: p_broken\nsteps: 7\n<\/code><\/pre>/);
    assert.match(html, /No steps could be read/);
  });

  it("shows a table's columns, writers, rules with their last result, and its neighbours", () => {
    const html = page(files, 'tables/raw_usage.html');
    assert.match(html, /<td><code>usage_date<\/code><\/td><td>DATE<\/td><td>NULLABLE<\/td>/);
    assert.match(
      html,
      /<a href="..\/pipelines\/p_usage_daily.html">p_usage_daily<\/a> \/ <code>ingest_usage<\/code><\/td><td>ingest<\/td><td>merge<\/td><td>request_id<\/td><td>usage_date<\/td><td>provider, model<\/td>/,
    );
    assert.match(html, /<td>unique<\/td>.*status-fail">fail<\/span><\/td><td class="num">3 \/ 300<\/td><td>2025-01-30 06:00:05 UTC<\/td>/);
    assert.match(html, /<td>not_null<\/td>.*status-pass">pass<\/span><\/td><td class="num">0 \/ 300<\/td>/);
    assert.match(html, /<h2>Upstream<\/h2>\n<ul class="nodes"><li><span class="kind kind-source">source<\/span> usage_files<\/li><\/ul>/);
    assert.match(
      html,
      /<h2>Downstream<\/h2>\n<ul class="nodes"><li><a href="..\/pipelines\/p_usage_daily.html"><span class="kind kind-check">check<\/span> check_usage<\/a><\/li><\/ul>/,
    );
    assert.match(page(files, 'tables/idle_table.html'), /Not in the warehouse yet/);
  });

  it('renders 100 pipelines with 10,000 runs and a 410-node lineage', async (t) => {
    const large = largeSiteModel(100, 10_000);
    const started = performance.now();
    const site = await renderSite(large);
    t.diagnostic(`rendered ${site.size} files in ${Math.round(performance.now() - started)} ms`);
    assert.equal(site.size, 1 + large.tables.length + large.pipelines.length + 4);
    assert.equal(withClass(tagsOf(site, 'index.html'), 'g', 'node').length, large.lineage.nodes.length);
  });
});
