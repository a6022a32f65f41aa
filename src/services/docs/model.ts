/**
 * What the generated tenant site shows (`convergence docs generate`): read from the tenant's
 * configs and the metadata tables of one environment, then rendered to static files. Everything
 * here is tenant-written or tenant-derived text: the renderer escapes every string it places.
 */
export interface SiteModel {
  tenantId: string;
  /** tenant_profiles.company_name, when the tenant has one. */
  tenantName: string | null;
  /** The environment the metadata and columns were read from (`local`, `staging`, …). */
  env: string;
  /** `duckdb` or `bigquery`: the warehouse's dialect name, never a file path or credential. */
  warehouse: string;
  /** ISO 8601 instant of generation. */
  generatedAt: string;
  lineage: LineageGraph;
  /** One page per table or view a pipeline writes or checks, sorted by name. */
  tables: TablePage[];
  /** One page per pipeline (workspace file or pushed config), sorted by id. */
  pipelines: PipelinePage[];
  /** Things the site could not show, e.g. an invalid pipeline file with its first error line. */
  problems: string[];
}

/** `source`: a file glob or REST endpoint; `check`: a DQ step (its rules gate what comes after it). */
type LineageNodeKind = 'source' | 'table' | 'view' | 'check';

export interface LineageNode {
  /**
   * Unique and stable: `source:<source_id>`, `table:<name>` (views too), `check:<pipeline_id>/<step>`.
   * Browser tests look nodes up by it.
   */
  id: string;
  kind: LineageNodeKind;
  /** What the box says: the table or source id, or the DQ step name. */
  label: string;
  /**
   * A second line: `file csv data/acme_corp/usage_*.csv`, `GET https://api.example.com/v1/usage`
   * (origin and path only: no query values, user info or headers), `8 rules`, `view`.
   */
  detail: string | null;
  /** The node's page, relative to the site root (`tables/raw_usage.html`); null when it has none. */
  href: string | null;
}

export interface LineageEdge {
  /** Node ids. */
  from: string;
  to: string;
  /** The step that makes the edge, `<pipeline_id>/<step>`. */
  via: string;
}

/**
 * Edges: source → the ingest's table (`source_config`); table → DQ check (`table:`); a table a
 * transform reads (`{{ ref() }}`) → the transform's table, or → the check that gates it when an
 * earlier DQ step of the same pipeline checks the table read (so the demo reads usage files →
 * raw_usage → checks → fct_usage_daily). No duplicate edges; nodes sorted by id.
 */
export interface LineageGraph {
  nodes: LineageNode[];
  edges: LineageEdge[];
}

export interface ColumnInfo {
  name: string;
  /** The warehouse's type name (STRING, INT64, TIMESTAMP, …). */
  type: string;
  /** REQUIRED or NULLABLE where the warehouse tells. */
  mode: string | null;
}

export interface TableWriter {
  pipelineId: string;
  step: string;
  stepType: 'ingest' | 'transform';
  writeMode: 'append' | 'replace' | 'merge' | 'view';
  mergeKeys: string[];
  partitionBy: string | null;
  clusterBy: string[];
  /** The ingest's source id, or the transform's SQL file relative to the tenant folder. */
  from: string;
}

export interface DqLastResult {
  passed: boolean;
  failingCount: number;
  totalCount: number;
  /** ISO instant. */
  checkedAt: string;
  runId: string;
}

export interface TableRule {
  pipelineId: string;
  step: string;
  /** The rule's name as recorded in tenant_dq_results (the configured name, or the engine's default). */
  rule: string;
  check: string;
  columns: string[];
  severity: 'error' | 'warn';
  /** Newest recorded result of this rule in this environment; null when never checked. */
  last: DqLastResult | null;
}

export interface TablePage {
  name: string;
  kind: 'table' | 'view';
  /** `tables/<name>.html`. */
  href: string;
  /** Columns as the warehouse has them now; null when the table does not exist there yet. */
  columns: ColumnInfo[] | null;
  writers: TableWriter[];
  rules: TableRule[];
  /** Lineage node ids one edge away, sorted. */
  upstream: string[];
  downstream: string[];
}

export interface PipelineStep {
  name: string;
  type: 'ingest' | 'dq' | 'transform';
  /** Lineage node ids the step reads: the source, the checked table or the ref()'d tables. */
  reads: string[];
  /** The lineage node id it writes (ingest/transform), or the check node (dq). */
  writes: string;
  /** One line: `append into raw_usage from usage_files`, `8 rules on raw_usage`, `view v_cost from sql/v_cost.sql`. */
  summary: string;
  onFailure: 'stop' | 'continue';
}

/** One recorded run, for the charts. */
export interface RunPoint {
  runId: string;
  /** created_at, epoch milliseconds. */
  at: number;
  status: string;
  trigger: string;
  durationMs: number | null;
  rowsProcessed: number | null;
}

/** DQ results of one rule of one pipeline per UTC day: the pass-rate chart's series. */
export interface DqSeries {
  step: string;
  table: string;
  rule: string;
  days: Array<{ day: string; checks: number; passed: number }>;
}

interface PipelineSummary {
  /** Runs recorded in this environment (all of them, not only those charted). */
  runs: number;
  succeeded: number;
  failed: number;
  /** COMPLETE out of the runs that ended; null while none has. */
  successRate: number | null;
  p50DurationMs: number | null;
  p95DurationMs: number | null;
  lastRun: RunPoint | null;
}

export interface PipelinePage {
  pipelineId: string;
  /** `pipelines/<pipeline_id>.html`. */
  href: string;
  description: string | null;
  /** `configs/<tenant>/pipelines/<id>.yml`, or null for a pipeline that exists only pushed. */
  file: string | null;
  /** `workspace` or the pushed version (content hash) the page was built from. */
  configFrom: string;
  schedule: { cron: string; timezone: string } | null;
  /** The pipeline file's text, credential-looking values masked; null when unreadable. */
  yaml: string | null;
  /** Why the config could not be read (the first lines of the validation error); steps are then empty. */
  error: string | null;
  steps: PipelineStep[];
  summary: PipelineSummary;
  /** The newest MAX_CHARTED_RUNS runs, oldest first. */
  runs: RunPoint[];
  dq: DqSeries[];
}

/** Runs charted per pipeline page; older ones are counted in the summary only. */
export const MAX_CHARTED_RUNS = 5_000;

/** Relative path → content of every file of the site. */
export type SiteFiles = Map<string, string | Buffer>;

export const tableHref = (name: string) => `tables/${name}.html`;
export const pipelineHref = (pipelineId: string) => `pipelines/${pipelineId}.html`;
