import type { SiteModel, TablePage, TableRule, TableWriter } from '../model.ts';
import { esc } from './html.ts';
import { nodeList, type SiteLinks } from './links.ts';
import { formatInstant, renderPage } from './page.ts';

/** tables/<name>.html: columns, who writes the table and how, its DQ rules, its neighbours. */
export function renderTablePage(model: SiteModel, table: TablePage, links: SiteLinks): string {
  const body = [
    `<h1><span class="kind kind-${table.kind}">${esc(table.kind)}</span> ${esc(table.name)}</h1>`,
    '<section><h2>Columns</h2>',
    columnsTable(table),
    '</section>',
    '<section><h2>Written by</h2>',
    table.writers.length ? writersTable(table.writers, links) : '<p class="muted">No pipeline writes it.</p>',
    '</section>',
    '<section><h2>Data quality</h2>',
    table.rules.length ? rulesTable(table.rules, links) : '<p class="muted">No rules check it.</p>',
    '</section>',
    '<section class="neighbours"><div><h2>Upstream</h2>',
    nodeList(links, 1, table.upstream),
    '</div><div><h2>Downstream</h2>',
    nodeList(links, 1, table.downstream),
    '</div></section>',
  ].join('\n');
  return renderPage(model, { title: table.name, depth: 1, body });
}

function columnsTable(table: TablePage): string {
  if (table.columns === null) return '<p class="muted">Not in the warehouse yet.</p>';
  const rows = table.columns.map(
    (c) => `<tr><td><code>${esc(c.name)}</code></td><td>${esc(c.type)}</td><td>${esc(c.mode ?? '')}</td></tr>`,
  );
  return `<table class="list"><thead><tr><th>Column</th><th>Type</th><th>Mode</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function writersTable(writers: TableWriter[], links: SiteLinks): string {
  const rows = writers.map((w) =>
    [
      `<tr><td>${links.pipeline(1, w.pipelineId)} / <code>${esc(w.step)}</code></td><td>${esc(w.stepType)}</td><td>${esc(w.writeMode)}</td>`,
      `<td>${esc(w.mergeKeys.join(', '))}</td><td>${esc(w.partitionBy ?? '')}</td><td>${esc(w.clusterBy.join(', '))}</td><td><code>${esc(w.from)}</code></td></tr>`,
    ].join(''),
  );
  return `<table class="list"><thead><tr><th>Step</th><th>Type</th><th>Write mode</th><th>Merge keys</th><th>Partition</th><th>Cluster</th><th>From</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function lastResult(rule: TableRule): string {
  const last = rule.last;
  if (!last) return '<td><span class="status status-none">never checked</span></td><td></td><td></td><td></td>';
  return [
    `<td><span class="status status-${last.passed ? 'pass' : 'fail'}">${last.passed ? 'pass' : 'fail'}</span></td>`,
    `<td class="num">${last.failingCount} / ${last.totalCount}</td><td>${esc(formatInstant(last.checkedAt))}</td><td><code>${esc(last.runId)}</code></td>`,
  ].join('');
}

function rulesTable(rules: TableRule[], links: SiteLinks): string {
  const rows = rules.map((r) =>
    [
      `<tr><td>${esc(r.rule)}</td><td>${esc(r.check)}</td><td>${esc(r.columns.join(', '))}</td><td>${esc(r.severity)}</td>`,
      `<td>${links.pipeline(1, r.pipelineId)} / <code>${esc(r.step)}</code></td>${lastResult(r)}</tr>`,
    ].join(''),
  );
  return `<table class="list"><thead><tr><th>Rule</th><th>Check</th><th>Columns</th><th>Severity</th><th>Step</th><th>Last result</th><th>Failing / total</th><th>When</th><th>Run</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}
