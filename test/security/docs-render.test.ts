/**
 * Tenant text on the generated site stays text: names, descriptions, YAML, errors and problems
 * holding markup, script or `javascript:` never become elements, handlers or links; the JSON data
 * block cannot be closed from inside; links outside the site's own pages are refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SiteFiles, SiteModel } from '../../src/services/docs/model.ts';
import { jsonForScript, sitePage } from '../../src/services/docs/render/html.ts';
import { renderSite } from '../../src/services/docs/render/index.ts';
import { attr, htmlTags } from '../helpers/html-tags.ts';
import { HOSTILE, demoSiteModel, hostileSiteModel } from '../helpers/site-model.ts';

/** Every element a page may hold; injected markup would add others (img, iframe, a second svg…). */
const EXPECTED_ELEMENTS = new Set(
  'html head meta title link script body header main footer section div span a p h1 h2 dl dt dd ul li table thead tbody tr th td code pre figure figcaption details summary noscript br svg defs marker path g rect text'.split(
    ' ',
  ),
);
const OWN_SCRIPTS = new Set(['assets/site.js', 'assets/uPlot.iife.min.js', '../assets/site.js', '../assets/uPlot.iife.min.js']);

const pages = (files: SiteFiles) =>
  [...files].filter(([file]) => file.endsWith('.html')).map(([file, html]) => [file, String(html)] as const);

describe('the site renders hostile tenant text as text', () => {
  let model: SiteModel;
  let files: SiteFiles;

  it('makes no element, handler or link of it', async () => {
    model = hostileSiteModel();
    files = await renderSite(model);
    for (const [file, html] of pages(files)) {
      const tags = htmlTags(html);
      for (const tag of tags) {
        assert.ok(EXPECTED_ELEMENTS.has(tag.name), `${file}: unexpected <${tag.name}>`);
        for (const [name, value] of tag.attrs) {
          assert.doesNotMatch(name, /^on/, `${file}: <${tag.name}> has a ${name} handler`);
          assert.notEqual(name, 'style', `${file}: <${tag.name}> has a style attribute`);
          if (['href', 'src', 'action', 'xlink:href', 'formaction'].includes(name)) {
            assert.doesNotMatch(value, /^\s*[a-z][a-z0-9+.-]*:|^\s*\/|evil/i, `${file}: <${tag.name} ${name}="${value}">`);
          }
        }
      }
      assert.equal(tags.filter((t) => t.name === 'svg').length, file === 'index.html' ? 1 : 0, `${file}: only the lineage graph is SVG`);
      const scripts = tags.filter((t) => t.name === 'script');
      for (const script of scripts) {
        const src = attr(script, 'src');
        if (src !== undefined) assert.ok(OWN_SCRIPTS.has(src) && script.text === '', `${file}: script ${src}`);
        else assert.equal(attr(script, 'type'), 'application/json', `${file}: the only inline script is the data block`);
      }
    }
  });

  it('shows the hostile text itself, escaped, on the pages', () => {
    const index = String(files.get('index.html'));
    for (const text of HOSTILE)
      assert.ok(
        index.includes(
          text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;'),
        ),
      );
    const pipeline = String(files.get('pipelines/p_usage_daily.html'));
    assert.match(pipeline, /<pre class="yaml"><code>&lt;\/script&gt;&lt;script&gt;alert\(1\)&lt;\/script&gt;\n/);
  });

  it('keeps the data block closed: no `<` inside, and it parses back to the same strings', () => {
    for (const [file, html] of pages(files)) {
      const block = htmlTags(html).find((t) => t.name === 'script' && attr(t, 'id') === 'page-data');
      if (!block) continue;
      assert.ok(!block.text!.includes('<'), `${file}: the data block holds no <`);
      assert.ok(!/[\u2028\u2029]/.test(block.text!), `${file}: line separators are escaped`);
      const data = JSON.parse(block.text!);
      const statuses = model.pipelines.find((p) => file === p.href)!.runs.map((r) => r.status);
      assert.deepEqual(data.runs.status, statuses);
    }
    const encoded = jsonForScript({ s: '</script><script>alert(1)</script><!--\u2028' });
    assert.equal(encoded, '{"s":"\\u003c/script>\\u003cscript>alert(1)\\u003c/script>\\u003c!--\\u2028"}');
    assert.deepEqual(JSON.parse(encoded), { s: '</script><script>alert(1)</script><!--\u2028' });
  });
});

describe('links outside the site are refused', () => {
  const REFUSED = [
    'javascript:alert(1)',
    'JavaScript:alert(1)//tables/x.html',
    'https://evil.example/tables/x.html',
    '//evil.example/x.html',
    '/etc/passwd',
    '../index.html',
    'tables/../../x.html',
    'tables/..html',
    'tables/a/b.html',
    'tables/x.html?q=1',
    'tables/x.html#top',
    'tables/x.htm',
    'tables/ x.html',
    'tables/x.html"><script>',
    'data:text/html,<script>alert(1)</script>',
    'other/x.html',
    '',
  ];

  it('accepts only index.html and tables/ or pipelines/ pages', () => {
    for (const href of ['index.html', 'tables/raw_usage.html', 'pipelines/p_usage_daily.html', 'tables/v-1.x.html'])
      assert.equal(sitePage(href), href);
    for (const href of REFUSED) assert.throws(() => sitePage(href), /refusing site link/, href);
  });

  it('refuses to render a model whose table, pipeline or node links leave the site', async () => {
    const cases: Array<(m: SiteModel) => void> = [
      (m) => (m.tables[0]!.href = 'javascript:alert(1)'),
      (m) => (m.pipelines[0]!.href = 'https://evil.example/pipelines/x.html'),
      (m) => (m.lineage.nodes[0]!.href = '../../../etc/passwd.html'),
    ];
    for (const corrupt of cases) {
      const m = demoSiteModel();
      corrupt(m);
      await assert.rejects(renderSite(m), /refusing site link/);
    }
  });
});
