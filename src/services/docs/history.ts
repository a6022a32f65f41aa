import type { Row, Warehouse } from '../../backends/warehouse/port.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { MAX_CHARTED_RUNS, type DqLastResult, type DqSeries, type RunPoint } from './model.ts';

/**
 * The run and DQ history of one tenant for its site, in three statements whatever the number of
 * pipelines: charted runs, DQ results per rule per UTC day, last result per rule (the run
 * summaries are `pipeline runs --stats` over all time).
 * Every statement is a SELECT filtered by the tenant id, bound as a parameter.
 */
export interface TenantHistory {
  /** The newest MAX_CHARTED_RUNS runs of each pipeline, oldest first. */
  runs: Map<string, RunPoint[]>;
  /** By pipeline id. */
  dq: Map<string, DqSeries[]>;
  /** By `<pipeline_id>/<step>/<rule>`. */
  lastResults: Map<string, DqLastResult>;
}

export const ruleKey = (pipelineId: string, step: string, rule: string) => `${pipelineId}/${step}/${rule}`;

export async function readHistory(warehouse: Warehouse, tenantId: string): Promise<TenantHistory> {
  const [runs, dq, lastResults] = await Promise.all([
    chartedRuns(warehouse, tenantId),
    dqSeries(warehouse, tenantId),
    lastRuleResults(warehouse, tenantId),
  ]);
  return { runs, dq, lastResults };
}

const numberOrNull = (value: unknown) => (value === null || value === undefined ? null : Number(value));
const count = (value: unknown) => (value === null || value === undefined ? 0 : Number(value));
const instant = (value: unknown) => (value instanceof Date ? value : new Date(String(value)));

/** A DATE as the adapters give it ('YYYY-MM-DD'), or a Date at midnight UTC. */
const dayOf = (value: unknown) => (value instanceof Date ? value.toISOString().slice(0, 10) : String(value).slice(0, 10));

function groupBy<V>(rows: Row[], key: (row: Row) => string, value: (row: Row) => V): Map<string, V[]> {
  const groups = new Map<string, V[]>();
  for (const row of rows) {
    const k = key(row);
    const list = groups.get(k) ?? [];
    list.push(value(row));
    groups.set(k, list);
  }
  return groups;
}

async function chartedRuns(warehouse: Warehouse, tenantId: string): Promise<Map<string, RunPoint[]>> {
  const p = warehouse.dialect.params();
  const sql = `SELECT pipeline_id, pipeline_logging_id, created_at, status, trigger_type, duration_ms, rows_processed
FROM (
  SELECT pipeline_id, pipeline_logging_id, created_at, status, trigger_type, duration_ms, rows_processed,
    ROW_NUMBER() OVER (PARTITION BY pipeline_id ORDER BY created_at DESC, pipeline_logging_id DESC) AS recency
  FROM ${warehouse.qualify(METADATA_DATASET, T.runs)}
  WHERE tenant_id = ${p.add(tenantId)}
) AS ranked
WHERE recency <= ${p.add(MAX_CHARTED_RUNS)}
ORDER BY pipeline_id, created_at, pipeline_logging_id`;
  const rows = await warehouse.query(sql, p.values);
  return groupBy(
    rows,
    (r) => String(r.pipeline_id),
    (r): RunPoint => ({
      runId: String(r.pipeline_logging_id),
      at: instant(r.created_at).getTime(),
      status: String(r.status),
      trigger: String(r.trigger_type),
      durationMs: numberOrNull(r.duration_ms),
      rowsProcessed: numberOrNull(r.rows_processed),
    }),
  );
}

async function dqSeries(warehouse: Warehouse, tenantId: string): Promise<Map<string, DqSeries[]>> {
  const d = warehouse.dialect;
  const p = d.params();
  // Both warehouses read a TIMESTAMP's date in UTC (the DuckDB sessions run in UTC).
  const sql = `SELECT pipeline_id, step_name, table_name, rule_name, day, COUNT(*) AS checks, ${d.countIf('passed')} AS passed
FROM (
  SELECT pipeline_id, step_name, table_name, rule_name, passed, CAST(checked_at AS DATE) AS day
  FROM ${warehouse.qualify(METADATA_DATASET, T.dqResults)}
  WHERE tenant_id = ${p.add(tenantId)}
) AS checked
GROUP BY pipeline_id, step_name, table_name, rule_name, day
ORDER BY pipeline_id, step_name, rule_name, table_name, day`;
  const rows = await warehouse.query(sql, p.values);
  const series = new Map<string, DqSeries[]>();
  let current: (DqSeries & { pipelineId: string }) | undefined;
  for (const r of rows) {
    const pipelineId = String(r.pipeline_id);
    const step = String(r.step_name);
    const table = String(r.table_name);
    const rule = String(r.rule_name);
    if (!current || current.pipelineId !== pipelineId || current.step !== step || current.table !== table || current.rule !== rule) {
      current = { pipelineId, step, table, rule, days: [] };
      const list = series.get(pipelineId) ?? [];
      list.push(current);
      series.set(pipelineId, list);
    }
    current.days.push({ day: dayOf(r.day), checks: count(r.checks), passed: count(r.passed) });
  }
  // The pipeline id was only needed to group; the page already says whose series these are.
  return new Map([...series].map(([id, list]) => [id, list.map(({ step, table, rule, days }) => ({ step, table, rule, days }))]));
}

async function lastRuleResults(warehouse: Warehouse, tenantId: string): Promise<Map<string, DqLastResult>> {
  const p = warehouse.dialect.params();
  const sql = `SELECT pipeline_id, step_name, rule_name, passed, failing_count, total_count, checked_at, pipeline_logging_id
FROM (
  SELECT pipeline_id, step_name, rule_name, passed, failing_count, total_count, checked_at, pipeline_logging_id,
    ROW_NUMBER() OVER (PARTITION BY pipeline_id, step_name, rule_name ORDER BY checked_at DESC, dq_result_id DESC) AS recency
  FROM ${warehouse.qualify(METADATA_DATASET, T.dqResults)}
  WHERE tenant_id = ${p.add(tenantId)}
) AS ranked
WHERE recency = 1`;
  const rows = await warehouse.query(sql, p.values);
  return new Map(
    rows.map((r) => [
      ruleKey(String(r.pipeline_id), String(r.step_name), String(r.rule_name)),
      {
        passed: r.passed === true,
        failingCount: count(r.failing_count),
        totalCount: count(r.total_count),
        checkedAt: instant(r.checked_at).toISOString(),
        runId: String(r.pipeline_logging_id),
      },
    ]),
  );
}
