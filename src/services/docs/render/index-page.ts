import type { PipelinePage, SiteModel, TablePage } from '../model.ts';
import { classWord, esc, hrefFrom } from './html.ts';
import { formatDuration, formatInstant, formatRate, renderPage } from './page.ts';

/** index.html: who and where, the lineage graph, every pipeline and table, and what could not be shown. */
export function renderIndexPage(model: SiteModel, lineageSvg: string): string {
  const body = [
    `<h1>${esc(model.tenantName ?? model.tenantId)}</h1>`,
    `<dl class="facts"><dt>Tenant</dt><dd><code>${esc(model.tenantId)}</code></dd><dt>Environment</dt><dd>${esc(model.env)}</dd>`,
    `<dt>Warehouse</dt><dd>${esc(model.warehouse)}</dd><dt>Generated</dt><dd>${esc(formatInstant(model.generatedAt))}</dd></dl>`,
    problemsSection(model.problems),
    '<section class="lineage-section"><h2>Lineage</h2>',
    model.lineage.nodes.length
      ? `<div class="graph" id="lineage">${lineageSvg}</div>`
      : '<p class="empty">No lineage yet: no pipeline reads or writes a table.</p>',
    legend(),
    '</section>',
    pipelinesSection(model.pipelines),
    tablesSection(model.tables),
  ].join('\n');
  return renderPage(model, { title: 'Overview', depth: 0, body });
}

function legend(): string {
  const kinds = ['source', 'table', 'view', 'check'];
  return `<p class="legend">${kinds.map((kind) => `<span class="key key-${kind}">${kind}</span>`).join(' ')}</p>`;
}

function problemsSection(problems: string[]): string {
  if (!problems.length) return '';
  return `<section class="problems"><h2>Problems</h2><ul>${problems.map((p) => `<li><pre>${esc(p)}</pre></li>`).join('')}</ul></section>`;
}

/** The status of a pipeline's newest run as a badge, or a dash. */
export function lastRunBadge(pipeline: PipelinePage): string {
  const last = pipeline.summary.lastRun;
  if (!last) return '<span class="status status-none">no runs</span>';
  return `<span class="status status-${classWord(last.status)}">${esc(last.status)}</span> <span class="when">${esc(formatInstant(last.at))}</span>`;
}

function pipelinesSection(pipelines: PipelinePage[]): string {
  const rows = pipelines.map((p) => {
    const s = p.summary;
    return [
      `<tr><td><a href="${hrefFrom(0, p.href)}">${esc(p.pipelineId)}</a>${p.error === null ? '' : ' <span class="status status-invalid">invalid</span>'}</td>`,
      `<td>${esc(p.description ?? '')}</td><td class="num">${s.runs}</td><td class="num">${formatRate(s.successRate)}</td>`,
      `<td class="num">${formatDuration(s.p50DurationMs)}</td><td class="num">${formatDuration(s.p95DurationMs)}</td><td>${lastRunBadge(p)}</td></tr>`,
    ].join('');
  });
  return [
    '<section><h2>Pipelines</h2>',
    pipelines.length
      ? `<table class="list"><thead><tr><th>Pipeline</th><th>Description</th><th>Runs</th><th>Success</th><th>p50</th><th>p95</th><th>Last run</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`
      : '<p class="empty">No pipelines.</p>',
    '</section>',
  ].join('\n');
}

function tablesSection(tables: TablePage[]): string {
  const rows = tables.map((t) => {
    const failing = t.rules.filter((r) => r.last && !r.last.passed).length;
    const checked = t.rules.filter((r) => r.last).length;
    const rules = t.rules.length
      ? `${t.rules.length} rules, ${checked} checked${failing ? `, <span class="fail">${failing} failing</span>` : ''}`
      : '–';
    const columns = t.columns === null ? '<span class="muted">not in the warehouse yet</span>' : `${t.columns.length} columns`;
    return `<tr><td><a href="${hrefFrom(0, t.href)}">${esc(t.name)}</a></td><td>${esc(t.kind)}</td><td>${columns}</td><td>${rules}</td></tr>`;
  });
  return [
    '<section><h2>Tables and views</h2>',
    tables.length
      ? `<table class="list"><thead><tr><th>Name</th><th>Kind</th><th>Columns</th><th>Data quality</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`
      : '<p class="empty">No tables.</p>',
    '</section>',
  ].join('\n');
}
