/**
 * The generated site in a real browser (Debian's Chromium through playwright-core), opened from
 * file:// with every other request aborted. The demo is built end to end (two runs of p_usage_daily,
 * then `docs generate`'s generateSite and writeSite): the lineage graph's nodes and edges, a click through
 * to a table page, the pipeline charts drawn by uPlot, no console errors or policy violations,
 * and hostile tenant text that never runs. Screenshots go to test-artifacts/docs-site/.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { bootstrap } from '../../src/services/bootstrap.ts';
import type { SiteModel } from '../../src/services/docs/model.ts';
import { renderSite } from '../../src/services/docs/render/index.ts';
import { generateSite, writeSite } from '../../src/services/docs/site.ts';
import { EXAMPLE_TENANT, installExample } from '../../src/services/example.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { hostileSiteModel } from '../helpers/site-model.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const CHROMIUM = process.env.CONVERGENCE_CHROMIUM ?? '/usr/bin/chromium';
const MISSING = existsSync(CHROMIUM) ? null : `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium)`;
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts/docs-site');
const DEMO_NODES = [
  'source:usage_files',
  'table:raw_usage',
  'check:p_usage_daily/check_usage',
  'table:fct_usage_daily',
  'table:v_cost_trend',
  'table:v_daily_cost_by_provider',
  'table:v_model_mix',
  'table:v_top_users_by_cost',
];
const DEMO_CHAIN = [
  ['source:usage_files', 'table:raw_usage'],
  ['table:raw_usage', 'check:p_usage_daily/check_usage'],
  ['check:p_usage_daily/check_usage', 'table:fct_usage_daily'],
  ...DEMO_NODES.filter((id) => id.startsWith('table:v_')).map((view) => ['table:fct_usage_daily', view]),
];

interface Site {
  model: SiteModel;
  /** The folder the site was written to. */
  dir: string;
}

/** The demo end to end, in process: workspace, example, tenant, two runs of p_usage_daily, its site. */
async function demoSite(): Promise<Site> {
  const root = await newWorkspace('docs-site');
  await installExample(root);
  const { model, files } = await withContext(root, async (ctx) => {
    await bootstrap(ctx);
    await createTenant(ctx, { tenantId: EXAMPLE_TENANT, name: 'ACME Corp', plan: 'scale' });
    for (let i = 0; i < 2; i++) {
      const run = await runPipeline(ctx, { tenantId: EXAMPLE_TENANT, pipelineId: 'p_usage_daily', runDate: '2025-01-07' });
      assert.equal(run.status, 'COMPLETE');
    }
    return generateSite(ctx, EXAMPLE_TENANT);
  });
  return { model, dir: await writeSite(root, path.join(root, 'docs', EXAMPLE_TENANT), files) };
}

/** `model` rendered and written the way `docs generate` writes it. */
async function writeModel(model: SiteModel, label: string): Promise<Site> {
  const root = await makeTempDir(label);
  const dir = await writeSite(root, path.join(root, 'docs', model.tenantId), await renderSite(model));
  return { model, dir };
}

/** What a page did besides showing itself: requests off file://, console errors, errors, dialogs. */
interface PageLog {
  offline: string[];
  errors: string[];
  dialogs: string[];
}

async function openPage(browser: Browser, url: string, options: { javaScript?: boolean } = {}): Promise<{ page: Page; log: PageLog }> {
  const context = await browser.newContext({ javaScriptEnabled: options.javaScript ?? true, viewport: { width: 1280, height: 900 } });
  const log: PageLog = { offline: [], errors: [], dialogs: [] };
  await context.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : route.abort()));
  const page = await context.newPage();
  page.on('request', (request) => {
    if (!request.url().startsWith('file:')) log.offline.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') log.errors.push(message.text());
  });
  page.on('pageerror', (error) => log.errors.push(error.message));
  page.on('dialog', (dialog) => {
    log.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(url);
  return { page, log };
}

function assertQuiet(log: PageLog, what: string): void {
  assert.deepEqual(log.offline, [], `${what}: no request leaves file://`);
  assert.deepEqual(log.errors, [], `${what}: no console errors or policy violations`);
  assert.deepEqual(log.dialogs, [], `${what}: no dialogs`);
}

const fileUrl = (site: Site, page: string) => pathToFileURL(path.join(site.dir, page)).href;

/** Waits for site.js to mark every chart of the page drawn; returns chart → series drawn. */
async function drawnCharts(page: Page): Promise<Record<string, number>> {
  await page.waitForFunction("[...document.querySelectorAll('.chart')].every((c) => c.hasAttribute('data-series-drawn'))");
  return page.$$eval('.chart', (charts) =>
    Object.fromEntries(charts.map((c) => [c.getAttribute('data-chart'), Number(c.getAttribute('data-series-drawn'))])),
  );
}

if (MISSING && process.env.CI) {
  it('the docs site in a browser', () => assert.fail(`${MISSING}; CI needs it`));
}

describe('the docs site in Chromium', { skip: MISSING ?? false }, () => {
  let browser: Browser;
  let demo: Site;

  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    demo = await demoSite();
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
  });

  it("draws the demo's lineage offline, and a click on raw_usage opens its page", async () => {
    const { page, log } = await openPage(browser, fileUrl(demo, 'index.html'));
    for (const id of DEMO_NODES) {
      assert.ok(await page.locator(`svg.lineage g.node[data-node="${id}"]`).isVisible(), `node ${id} is drawn`);
    }
    for (const [from, to] of DEMO_CHAIN) {
      assert.equal(await page.locator(`svg.lineage path.edge[data-from="${from}"][data-to="${to}"]`).count(), 1, `edge ${from} → ${to}`);
    }
    const rawEdges = await page.locator('path.edge[data-from="table:raw_usage"], path.edge[data-to="table:raw_usage"]').count();
    await page.locator('g.node[data-node="table:raw_usage"]').hover();
    assert.equal(await page.locator('svg.lineage.highlighting path.edge.lit').count(), rawEdges, 'hovering raw_usage lights its edges');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'lineage.png'), fullPage: true });
    assertQuiet(log, 'index.html');

    await Promise.all([page.waitForURL(/\/tables\/raw_usage\.html$/), page.locator('g.node[data-node="table:raw_usage"]').click()]);
    assert.match(await page.locator('h1').innerText(), /raw_usage/);
    assertQuiet(log, 'tables/raw_usage.html');
    await page.context().close();
  });

  it("draws p_usage_daily's four charts with their series", async () => {
    const { page, log } = await openPage(browser, fileUrl(demo, 'pipelines/p_usage_daily.html'));
    const drawn = await drawnCharts(page);
    const pipeline = demo.model.pipelines.find((p) => p.pipelineId === 'p_usage_daily')!;
    const rulesWithResults = pipeline.dq.filter((series) => series.days.length > 0).length;
    assert.deepEqual(Object.keys(drawn), ['duration', 'rows', 'status', 'dq']);
    for (const chart of ['duration', 'rows', 'status']) assert.ok(drawn[chart]! >= 1, `${chart} drew a series`);
    assert.equal(drawn['dq'], rulesWithResults, 'a DQ series per rule with results');
    assert.ok(rulesWithResults >= 1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'p_usage_daily.png'), fullPage: true });
    assertQuiet(log, 'pipelines/p_usage_daily.html');
    await page.context().close();
  });

  it('reads without scripts: the graph is there and its nodes are links', async () => {
    const { page, log } = await openPage(browser, fileUrl(demo, 'index.html'), { javaScript: false });
    assert.ok(await page.locator('g.node[data-node="table:raw_usage"]').isVisible());
    assert.equal(await page.locator('svg.lineage a[href="tables/raw_usage.html"]').count(), 1);
    assertQuiet(log, 'index.html without scripts');
    await page.context().close();
  });

  it('shows hostile tenant text without running any of it', async () => {
    const hostile = await writeModel(hostileSiteModel(), 'docs-site-hostile');
    for (const file of [
      'index.html',
      ...hostile.model.tables.slice(0, 3).map((t) => t.href),
      ...hostile.model.pipelines.map((p) => p.href),
    ]) {
      const { page, log } = await openPage(browser, fileUrl(hostile, file));
      await drawnCharts(page);
      assert.equal(
        await page.locator('img, iframe, style, script:not([src]):not([type="application/json"])').count(),
        0,
        `${file}: no injected elements`,
      );
      assertQuiet(log, file);
      await page.context().close();
    }
  });
});
