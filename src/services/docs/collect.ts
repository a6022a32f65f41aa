import type { FieldSpec, Warehouse } from '../../backends/warehouse/port.ts';
import { assertTenantId } from '../../domain/ids.ts';
import { mapWithLimit } from '../../lib/concurrency.ts';
import { redactCredentials } from '../../lib/redaction.ts';
import type { ServiceContext } from '../context.ts';
import { pipelineStats, type PipelineStats } from '../runs/stats.ts';
import { requireTenant } from '../tenants.ts';
import { readHistory, ruleKey, type TenantHistory } from './history.ts';
import { buildLineage, tableNode, type Lineage, type TableFacts } from './lineage.ts';
import { pipelineHref, tableHref, type ColumnInfo, type LineageGraph, type PipelinePage, type SiteModel, type TablePage } from './model.ts';
import { readPipelines, type ReadPipeline } from './pipelines-read.ts';

/** Column lookups in flight at once where the warehouse looks tables up one by one (one request each on BigQuery). */
const COLUMN_LOOKUPS = 8;

/**
 * The site model of one tenant: its pipelines (workspace files, else pushed configs), the lineage
 * they make, columns from the warehouse and run/DQ history from the metadata tables. Reads only:
 * a handful of SELECTs filtered by the tenant, plus one column lookup per table.
 */
export async function collectSiteModel(
  ctx: ServiceContext,
  tenantId: string,
  options: { onLineage?(graph: LineageGraph): void } = {},
): Promise<SiteModel> {
  assertTenantId(tenantId);
  const profile = await requireTenant(ctx, tenantId, { allowDeleted: true });
  const warehouse = await ctx.backends.warehouse();
  const pipelines = await readPipelines(ctx, tenantId);
  const lineage = buildLineage(pipelines.flatMap((p) => (p.bundle ? [p.bundle] : [])));
  options.onLineage?.(lineage.graph);
  // The tenant's tables live in the dataset named after it, as the run engine writes them.
  const [history, stats, columns] = await Promise.all([
    readHistory(warehouse, tenantId),
    // Summaries count what `pipeline runs --stats` counts, over every recorded run.
    pipelineStats(ctx, { tenantId, since: new Date(0) }),
    readColumns(warehouse, tenantId, [...lineage.tables.keys()]),
  ]);
  const summaries = new Map(stats.map((s) => [s.pipelineId, s]));
  return {
    tenantId,
    tenantName: typeof profile.company_name === 'string' ? profile.company_name : null,
    env: ctx.env.name,
    warehouse: warehouse.dialect.name,
    generatedAt: ctx.now().toISOString(),
    lineage: lineage.graph,
    tables: tablePages(lineage, columns, history),
    pipelines: pipelines.map((p) => pipelinePage(p, lineage, history, summaries.get(p.pipelineId))),
    problems: [...pipelines.flatMap(problemOf), ...lineage.problems],
  };
}

function problemOf(pipeline: ReadPipeline): string[] {
  if (pipeline.error === null) return [];
  const where = pipeline.file ?? `pushed pipeline ${pipeline.pipelineId} (${pipeline.configFrom})`;
  const first = pipeline.error.split('\n')[0]!;
  return [first.startsWith(where) ? first : `${where}: ${first}`];
}

async function readColumns(warehouse: Warehouse, dataset: string, tables: string[]): Promise<Map<string, ColumnInfo[] | null>> {
  const columns = new Map<string, ColumnInfo[] | null>();
  if (warehouse.getDatasetFields) {
    const all = await warehouse.getDatasetFields(dataset);
    for (const table of tables) columns.set(table, all.get(table)?.map(columnInfo) ?? null);
    return columns;
  }
  const found = await mapWithLimit(tables, COLUMN_LOOKUPS, (table) => warehouse.getTableFields(dataset, table));
  tables.forEach((table, i) => columns.set(table, found[i]?.map(columnInfo) ?? null));
  return columns;
}

const columnInfo = (f: FieldSpec): ColumnInfo => ({ name: f.name, type: f.type, mode: f.mode ?? null });

/** Node ids one edge away from each node, sorted. */
function neighbours(graph: LineageGraph): { up: Map<string, Set<string>>; down: Map<string, Set<string>> } {
  const up = new Map<string, Set<string>>();
  const down = new Map<string, Set<string>>();
  const add = (map: Map<string, Set<string>>, key: string, value: string) => map.set(key, (map.get(key) ?? new Set()).add(value));
  for (const edge of graph.edges) {
    add(up, edge.to, edge.from);
    add(down, edge.from, edge.to);
  }
  return { up, down };
}

const sorted = (ids: Set<string> | undefined) => [...(ids ?? [])].sort();

function tablePages(lineage: Lineage, columns: Map<string, ColumnInfo[] | null>, history: TenantHistory): TablePage[] {
  const { up, down } = neighbours(lineage.graph);
  return [...lineage.tables.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((facts: TableFacts) => ({
      name: facts.name,
      kind: facts.kind,
      href: tableHref(facts.name),
      columns: columns.get(facts.name) ?? null,
      writers: facts.writers,
      rules: facts.rules.map((rule) => ({
        ...rule,
        last: history.lastResults.get(ruleKey(rule.pipelineId, rule.step, rule.rule)) ?? null,
      })),
      upstream: sorted(up.get(tableNode(facts.name))),
      downstream: sorted(down.get(tableNode(facts.name))),
    }));
}

function pipelinePage(pipeline: ReadPipeline, lineage: Lineage, history: TenantHistory, summary: PipelineStats | undefined): PipelinePage {
  const config = pipeline.bundle?.pipeline;
  const runs = history.runs.get(pipeline.pipelineId) ?? [];
  return {
    pipelineId: pipeline.pipelineId,
    href: pipelineHref(pipeline.pipelineId),
    // Free tenant text, shown as the YAML is: masked the same way.
    description: config?.description === undefined ? null : redactCredentials(config.description),
    file: pipeline.file,
    configFrom: pipeline.configFrom,
    schedule: config?.schedule ? { cron: config.schedule.cron, timezone: config.schedule.timezone } : null,
    yaml: pipeline.yaml,
    error: pipeline.error,
    steps: config ? (lineage.steps.get(config.pipeline_id) ?? []) : [],
    summary: {
      runs: summary?.runs ?? 0,
      succeeded: summary?.succeeded ?? 0,
      failed: summary?.failed ?? 0,
      successRate: summary?.successRate ?? null,
      p50DurationMs: summary?.p50DurationMs ?? null,
      p95DurationMs: summary?.p95DurationMs ?? null,
      lastRun: runs.at(-1) ?? null,
    },
    runs,
    dq: history.dq.get(pipeline.pipelineId) ?? [],
  };
}
