/**
 * Site models for the renderer's tests, without a warehouse: the demo's shape (usage files →
 * raw_usage → check_usage → fct_usage_daily → dimensions and views), a pipeline with no runs, an
 * invalid one, and a large tenant for timing.
 */
import type {
  DqSeries,
  LineageEdge,
  LineageNode,
  PipelinePage,
  RunPoint,
  SiteModel,
  TablePage,
  TableRule,
} from '../../src/services/docs/model.ts';
import { pipelineHref, tableHref } from '../../src/services/docs/model.ts';

const DAY_MS = 86_400_000;
const START = Date.parse('2025-01-01T06:00:00Z');

export const DEMO_VIEWS = ['v_cost_trend', 'v_daily_cost_by_provider', 'v_model_mix', 'v_top_users_by_cost'];
const DEMO_DIMS = ['dim_models', 'dim_providers', 'dim_users'];
export const DEMO_RULES = ['not_null', 'unique', 'accepted_values', 'row_count'];

const tableNode = (name: string, kind: 'table' | 'view' = 'table'): LineageNode => ({
  id: `table:${name}`,
  kind,
  label: name,
  detail: kind === 'view' ? 'view' : null,
  href: tableHref(name),
});

/** `count` runs a day apart, every `failEvery`-th FAILED, oldest first. */
export function runPoints(count: number, failEvery = 5, start = START): RunPoint[] {
  return Array.from({ length: count }, (_, i) => ({
    runId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    at: start + i * DAY_MS,
    status: (i + 1) % failEvery === 0 ? 'FAILED' : 'COMPLETE',
    trigger: i % 2 ? 'scheduler' : 'cli',
    durationMs: 40_000 + ((i * 7919) % 20_000),
    rowsProcessed: 300 + ((i * 31) % 50),
  }));
}

function dqSeries(step: string, table: string, rules: string[], days: number): DqSeries[] {
  return rules.map((rule, r) => ({
    step,
    table,
    rule,
    days: Array.from({ length: days }, (_, d) => ({
      day: new Date(START + d * DAY_MS).toISOString().slice(0, 10),
      checks: 1,
      passed: (d + r) % 4 === 0 ? 0 : 1,
    })),
  }));
}

function summaryOf(runs: RunPoint[]): PipelinePage['summary'] {
  const ended = runs.filter((r) => r.status === 'COMPLETE' || r.status === 'FAILED');
  const succeeded = runs.filter((r) => r.status === 'COMPLETE').length;
  const durations = runs.map((r) => r.durationMs ?? 0).sort((a, b) => a - b);
  const at = (q: number) => (durations.length ? durations[Math.min(durations.length - 1, Math.floor(q * durations.length))]! : null);
  return {
    runs: runs.length,
    succeeded,
    failed: runs.length - succeeded,
    successRate: ended.length ? succeeded / ended.length : null,
    p50DurationMs: at(0.5),
    p95DurationMs: at(0.95),
    lastRun: runs.at(-1) ?? null,
  };
}

function pipelinePage(pipelineId: string, runs: RunPoint[], overrides: Partial<PipelinePage> = {}): PipelinePage {
  return {
    pipelineId,
    href: pipelineHref(pipelineId),
    description: `Pipeline ${pipelineId}`,
    file: `configs/acme_corp/pipelines/${pipelineId}.yml`,
    configFrom: 'workspace',
    schedule: { cron: '0 6 * * *', timezone: 'America/Los_Angeles' },
    yaml: `pipeline_id: ${pipelineId}\nsteps: []\n`,
    error: null,
    steps: [],
    summary: summaryOf(runs),
    runs,
    dq: [],
    ...overrides,
  };
}

function rulesOf(pipelineId: string, step: string, runs: RunPoint[], failingRule?: string): TableRule[] {
  const last = runs.at(-1);
  return DEMO_RULES.map((rule) => ({
    pipelineId,
    step,
    rule,
    check: rule,
    columns: rule === 'row_count' ? [] : ['request_id'],
    severity: 'error' as const,
    last: last
      ? {
          passed: rule !== failingRule,
          failingCount: rule === failingRule ? 3 : 0,
          totalCount: 300,
          checkedAt: new Date(last.at + 5000).toISOString(),
          runId: last.runId,
        }
      : null,
  }));
}

export interface DemoModelOptions {
  /** Runs of p_usage_daily (default 30). */
  runs?: number;
}

/** The demo tenant's site model, plus p_idle (never run) and p_broken (invalid config). */
export function demoSiteModel(options: DemoModelOptions = {}): SiteModel {
  const runs = runPoints(options.runs ?? 30);
  const p = 'p_usage_daily';
  const check = `check:${p}/check_usage`;
  const demoNodes: LineageNode[] = [
    { id: 'source:usage_files', kind: 'source', label: 'usage_files', detail: 'file csv data/acme_corp/usage_*.csv', href: null },
    tableNode('raw_usage'),
    { id: check, kind: 'check', label: 'check_usage', detail: `${DEMO_RULES.length} rules`, href: pipelineHref(p) },
    tableNode('fct_usage_daily'),
    ...DEMO_DIMS.map((name) => tableNode(name)),
    ...DEMO_VIEWS.map((name) => tableNode(name, 'view')),
    tableNode('idle_table'),
  ];
  const nodes = demoNodes.sort((a, b) => a.id.localeCompare(b.id));
  const edges: LineageEdge[] = [
    { from: 'source:usage_files', to: 'table:raw_usage', via: `${p}/ingest_usage` },
    { from: 'table:raw_usage', to: check, via: `${p}/check_usage` },
    { from: check, to: 'table:fct_usage_daily', via: `${p}/build_fct_usage_daily` },
    ...DEMO_DIMS.map((name) => ({ from: check, to: `table:${name}`, via: `${p}/build_${name}` })),
    ...DEMO_VIEWS.map((name) => ({ from: 'table:fct_usage_daily', to: `table:${name}`, via: `${p}/view_${name}` })),
  ];
  const neighbours = (id: string) => ({
    upstream: edges
      .filter((e) => e.to === id)
      .map((e) => e.from)
      .sort(),
    downstream: edges
      .filter((e) => e.from === id)
      .map((e) => e.to)
      .sort(),
  });
  const table = (name: string, kind: 'table' | 'view', extra: Partial<TablePage> = {}): TablePage => ({
    name,
    kind,
    href: tableHref(name),
    columns: [
      { name: 'usage_date', type: 'DATE', mode: 'NULLABLE' },
      { name: 'cost_usd', type: 'FLOAT64', mode: null },
    ],
    writers: [
      {
        pipelineId: p,
        step: kind === 'view' ? `view_${name}` : `build_${name}`,
        stepType: 'transform',
        writeMode: kind === 'view' ? 'view' : 'replace',
        mergeKeys: [],
        partitionBy: null,
        clusterBy: [],
        from: `sql/${name}.sql`,
      },
    ],
    rules: [],
    ...neighbours(`table:${name}`),
    ...extra,
  });
  const tables: TablePage[] = [
    table('raw_usage', 'table', {
      writers: [
        {
          pipelineId: p,
          step: 'ingest_usage',
          stepType: 'ingest',
          writeMode: 'merge',
          mergeKeys: ['request_id'],
          partitionBy: 'usage_date',
          clusterBy: ['provider', 'model'],
          from: 'usage_files',
        },
      ],
      rules: rulesOf(p, 'check_usage', runs, 'unique'),
    }),
    table('fct_usage_daily', 'table'),
    ...DEMO_DIMS.map((name) => table(name, 'table')),
    ...DEMO_VIEWS.map((name) => table(name, 'view')),
    table('idle_table', 'table', { columns: null, writers: [], upstream: [], downstream: [] }),
  ].sort((a, b) => a.name.localeCompare(b.name));
  const usage = pipelinePage(p, runs, {
    description: 'Daily AI usage by provider, model, user and day',
    steps: [
      {
        name: 'ingest_usage',
        type: 'ingest',
        reads: ['source:usage_files'],
        writes: 'table:raw_usage',
        summary: 'merge into raw_usage from usage_files',
        onFailure: 'stop',
      },
      {
        name: 'check_usage',
        type: 'dq',
        reads: ['table:raw_usage'],
        writes: check,
        summary: `${DEMO_RULES.length} rules on raw_usage`,
        onFailure: 'stop',
      },
      {
        name: 'build_fct_usage_daily',
        type: 'transform',
        reads: ['table:raw_usage'],
        writes: 'table:fct_usage_daily',
        summary: 'replace fct_usage_daily from sql/fct_usage_daily.sql',
        onFailure: 'stop',
      },
    ],
    dq: dqSeries('check_usage', 'raw_usage', DEMO_RULES, Math.min(runs.length, 30)),
  });
  const idle = pipelinePage('p_idle', [], { description: 'Never run yet' });
  const broken = pipelinePage('p_broken', [], {
    description: null,
    schedule: null,
    yaml: 'pipeline_id: p_broken\nsteps: 7\n',
    error: 'steps: must be a list',
  });
  return {
    tenantId: 'acme_corp',
    tenantName: 'ACME Corp',
    env: 'local',
    warehouse: 'duckdb',
    generatedAt: '2025-02-01T12:00:00.000Z',
    lineage: { nodes, edges },
    tables,
    pipelines: [broken, idle, usage],
    problems: ['configs/acme_corp/pipelines/p_broken.yml: steps: must be a list'],
  };
}

/**
 * A large tenant: `pipelines` pipelines sharing `totalRuns` runs, each ingesting a source into a
 * raw table, checking it and building a fact table (three tables and a source per pipeline, so
 * 100 pipelines make a 400-node lineage).
 */
export function largeSiteModel(pipelines = 100, totalRuns = 10_000): SiteModel {
  const model: SiteModel = { ...demoSiteModel({ runs: 0 }), lineage: { nodes: [], edges: [] }, tables: [], pipelines: [], problems: [] };
  const perPipeline = Math.floor(totalRuns / pipelines);
  for (let i = 0; i < pipelines; i++) {
    const id = `p_load_${String(i).padStart(3, '0')}`;
    const raw = `raw_${String(i).padStart(3, '0')}`;
    const fct = `fct_${String(i).padStart(3, '0')}`;
    const check = `check:${id}/check_${raw}`;
    const shared = `table:dim_shared_${i % 10}`;
    model.lineage.nodes.push(
      { id: `source:files_${i}`, kind: 'source', label: `files_${i}`, detail: `file csv data/acme_corp/${raw}_*.csv`, href: null },
      tableNode(raw),
      { id: check, kind: 'check', label: `check_${raw}`, detail: '4 rules', href: pipelineHref(id) },
      tableNode(fct),
    );
    model.lineage.edges.push(
      { from: `source:files_${i}`, to: `table:${raw}`, via: `${id}/ingest` },
      { from: `table:${raw}`, to: check, via: `${id}/check` },
      { from: check, to: `table:${fct}`, via: `${id}/build` },
      { from: `table:${fct}`, to: shared, via: `p_shared/build_${i}` },
    );
    const runs = runPoints(perPipeline, 7, START + i * 3_600_000);
    for (const name of [raw, fct]) {
      model.tables.push({ name, kind: 'table', href: tableHref(name), columns: [], writers: [], rules: [], upstream: [], downstream: [] });
    }
    model.pipelines.push(pipelinePage(id, runs, { dq: dqSeries(`check_${raw}`, raw, DEMO_RULES, 60) }));
  }
  for (let s = 0; s < 10; s++) {
    const name = `dim_shared_${s}`;
    model.lineage.nodes.push(tableNode(name));
    model.tables.push({ name, kind: 'table', href: tableHref(name), columns: [], writers: [], rules: [], upstream: [], downstream: [] });
  }
  model.lineage.nodes.sort((a, b) => a.id.localeCompare(b.id));
  model.tables.sort((a, b) => a.name.localeCompare(b.name));
  return model;
}

/** Tenant text that would become markup, script or a link if it reached a page unescaped. */
export const HOSTILE = [
  '</script><script>alert(1)</script>',
  '"><img src=x onerror=alert(2)>',
  "'><svg onload=alert(3)>",
  'javascript:alert(4)',
  '<!--<script>alert(5)//',
  '</style><style>*{}</style><a href="https://evil.example/">x</a>',
  '\u2028\u2029</title><iframe src=javascript:alert(6)>',
];

/** The demo model with every tenant-written string replaced by hostile text; hrefs stay valid. */
export function hostileSiteModel(): SiteModel {
  let n = 0;
  const bad = () => `${HOSTILE[n++ % HOSTILE.length]}`;
  const model = demoSiteModel({ runs: 12 });
  model.tenantName = bad();
  model.env = bad();
  model.problems = HOSTILE.slice();
  for (const node of model.lineage.nodes) {
    node.label = bad();
    node.detail = bad();
  }
  const odd = `table:${HOSTILE[1]}`;
  model.lineage.nodes.push({ id: odd, kind: 'table', label: bad(), detail: null, href: null });
  model.lineage.edges.push({ from: 'table:raw_usage', to: odd, via: bad() });
  for (const edge of model.lineage.edges) edge.via = bad();
  for (const table of model.tables) {
    table.name = bad();
    table.columns = (table.columns ?? []).map(() => ({ name: bad(), type: bad(), mode: bad() }));
    for (const w of table.writers)
      Object.assign(w, { step: bad(), mergeKeys: [bad()], partitionBy: bad(), clusterBy: [bad()], from: bad() });
    for (const r of table.rules) {
      Object.assign(r, { rule: bad(), check: bad(), columns: [bad()] });
      if (r.last) r.last.runId = bad();
    }
    table.upstream.push(bad());
  }
  for (const p of model.pipelines) {
    Object.assign(p, {
      description: bad(),
      file: bad(),
      configFrom: bad(),
      yaml: HOSTILE.join('\n'),
      error: p.error === null ? null : bad(),
    });
    if (p.schedule) p.schedule = { cron: bad(), timezone: bad() };
    for (const s of p.steps) Object.assign(s, { name: bad(), summary: bad(), reads: [...s.reads, bad()] });
    for (const r of p.runs) Object.assign(r, { status: bad(), trigger: bad(), runId: bad() });
    for (const d of p.dq) Object.assign(d, { step: bad(), table: bad(), rule: bad() });
  }
  return model;
}
