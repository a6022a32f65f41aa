import type { PipelinePage, PipelineStep, RunPoint, SiteModel } from '../model.ts';
import { classWord, esc, jsonForScript } from './html.ts';
import { lastRunBadge } from './index-page.ts';
import type { SiteLinks } from './links.ts';
import { formatDuration, formatInstant, formatRate, renderPage } from './page.ts';

/** Runs listed as a table under the charts (readable without scripts); the charts show them all. */
const LISTED_RUNS = 20;

/**
 * What site.js charts, columnar to keep pages small: runs oldest first, and per DQ rule its pass
 * rate (0..100) per UTC day.
 */
interface PipelineChartData {
  runs: { at: number[]; status: string[]; durationMs: Array<number | null>; rows: Array<number | null> };
  dq: Array<{ label: string; days: string[]; passRate: number[] }>;
}

function chartData(pipeline: PipelinePage): PipelineChartData {
  return {
    runs: {
      at: pipeline.runs.map((r) => r.at),
      status: pipeline.runs.map((r) => r.status),
      durationMs: pipeline.runs.map((r) => r.durationMs),
      rows: pipeline.runs.map((r) => r.rowsProcessed),
    },
    dq: pipeline.dq.map((series) => ({
      label: `${series.step}/${series.rule} on ${series.table}`,
      days: series.days.map((d) => d.day),
      passRate: series.days.map((d) => (d.checks ? Math.round((d.passed / d.checks) * 1000) / 10 : 0)),
    })),
  };
}

/** pipelines/<id>.html: what the pipeline is, its steps and YAML, its summary and its charts. */
export function renderPipelinePage(model: SiteModel, pipeline: PipelinePage, links: SiteLinks): string {
  const body = [
    `<h1>${esc(pipeline.pipelineId)}</h1>`,
    pipeline.description === null ? '' : `<p class="description">${esc(pipeline.description)}</p>`,
    pipeline.error === null ? '' : `<div class="error"><h2>This pipeline's config is invalid</h2><pre>${esc(pipeline.error)}</pre></div>`,
    facts(pipeline),
    summarySection(pipeline),
    chartsSection(pipeline),
    stepsSection(pipeline.steps, links),
    '<section><h2>Configuration</h2>',
    pipeline.yaml === null
      ? '<p class="muted">The pipeline file could not be read.</p>'
      : `<pre class="yaml"><code>${esc(pipeline.yaml)}</code></pre>`,
    '</section>',
  ].join('\n');
  return renderPage(model, { title: pipeline.pipelineId, depth: 1, body, charts: true, dataJson: jsonForScript(chartData(pipeline)) });
}

function facts(pipeline: PipelinePage): string {
  const schedule = pipeline.schedule ? `<code>${esc(pipeline.schedule.cron)}</code> (${esc(pipeline.schedule.timezone)})` : 'not scheduled';
  return [
    '<dl class="facts">',
    `<dt>File</dt><dd>${pipeline.file === null ? 'pushed only' : `<code>${esc(pipeline.file)}</code>`}</dd>`,
    `<dt>Config</dt><dd><code>${esc(pipeline.configFrom)}</code></dd>`,
    `<dt>Schedule</dt><dd>${schedule}</dd>`,
    '</dl>',
  ].join('');
}

function summarySection(pipeline: PipelinePage): string {
  const s = pipeline.summary;
  return [
    '<section><h2>Summary</h2><dl class="facts summary">',
    `<dt>Runs</dt><dd>${s.runs}</dd><dt>Succeeded</dt><dd>${s.succeeded}</dd><dt>Failed</dt><dd>${s.failed}</dd>`,
    `<dt>Success rate</dt><dd>${formatRate(s.successRate)}</dd>`,
    `<dt>p50 duration</dt><dd>${formatDuration(s.p50DurationMs)}</dd><dt>p95 duration</dt><dd>${formatDuration(s.p95DurationMs)}</dd>`,
    `<dt>Last run</dt><dd>${lastRunBadge(pipeline)}</dd>`,
    '</dl></section>',
  ].join('');
}

const CHARTS = [
  { name: 'duration', title: 'Duration per run (seconds)' },
  { name: 'rows', title: 'Rows per run' },
  { name: 'status', title: 'Runs per day by status' },
] as const;

function chartsSection(pipeline: PipelinePage): string {
  const charted = pipeline.runs.length < pipeline.summary.runs ? ` (the newest ${pipeline.runs.length} of ${pipeline.summary.runs})` : '';
  if (!pipeline.runs.length && !pipeline.dq.length)
    return '<section class="charts"><h2>History</h2><p class="empty">no runs recorded</p></section>';
  const runCharts = pipeline.runs.length
    ? CHARTS.map((c) => `<figure><figcaption>${c.title}</figcaption><div class="chart" data-chart="${c.name}"></div></figure>`)
    : ['<p class="empty">no runs recorded</p>'];
  const dqChart = pipeline.dq.length
    ? '<figure><figcaption>Data quality pass rate per rule per day (%)</figcaption><div class="chart" data-chart="dq"></div></figure>'
    : '<p class="empty">no data quality results recorded</p>';
  return [
    `<section class="charts"><h2>History${esc(charted)}</h2>`,
    '<noscript><p class="muted">The charts need scripts; the newest runs are listed below.</p></noscript>',
    ...runCharts,
    dqChart,
    recentRuns(pipeline.runs),
    '</section>',
  ].join('\n');
}

function recentRuns(runs: RunPoint[]): string {
  if (!runs.length) return '';
  const rows = runs
    .slice(-LISTED_RUNS)
    .reverse()
    .map(
      (r) =>
        `<tr><td>${esc(formatInstant(r.at))}</td><td><span class="status status-${classWord(r.status)}">${esc(r.status)}</span></td><td>${esc(r.trigger)}</td><td class="num">${formatDuration(r.durationMs)}</td><td class="num">${r.rowsProcessed ?? '–'}</td><td><code>${esc(r.runId)}</code></td></tr>`,
    );
  return `<details class="recent-runs"><summary>Newest runs</summary><table class="list"><thead><tr><th>Started</th><th>Status</th><th>Trigger</th><th>Duration</th><th>Rows</th><th>Run</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></details>`;
}

function stepsSection(steps: PipelineStep[], links: SiteLinks): string {
  if (!steps.length) return '<section><h2>Steps</h2><p class="muted">No steps could be read.</p></section>';
  const rows = steps.map((s) =>
    [
      `<tr id="step-${esc(s.name)}"><td><code>${esc(s.name)}</code></td><td>${esc(s.type)}</td><td>${esc(s.summary)}</td>`,
      `<td>${s.reads.map((id) => links.node(1, id)).join('<br>')}</td><td>${links.node(1, s.writes)}</td><td>${esc(s.onFailure)}</td></tr>`,
    ].join(''),
  );
  return `<section><h2>Steps</h2><table class="list"><thead><tr><th>Step</th><th>Type</th><th>What it does</th><th>Reads</th><th>Writes</th><th>On failure</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></section>`;
}
