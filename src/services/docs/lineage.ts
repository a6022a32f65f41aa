import { IDENTIFIER_PATTERN } from '../../domain/ids.ts';
import type { DqRule, PipelineStep as StepConfig, SourceConfig } from '../../domain/pipeline.ts';
import { nameRules } from '../../engine/dq/rules.ts';
import { sqlRefs } from '../../engine/template.ts';
import type { PipelineBundle } from '../pipelines/bundle.ts';
import {
  pipelineHref,
  tableHref,
  type LineageEdge,
  type LineageGraph,
  type LineageNode,
  type PipelineStep,
  type TableRule,
  type TableWriter,
} from './model.ts';

/** What the configs say about one table: how it is written and checked (results come from history). */
export interface TableFacts {
  name: string;
  kind: 'table' | 'view';
  writers: TableWriter[];
  rules: Array<Omit<TableRule, 'last'>>;
}

export interface Lineage {
  graph: LineageGraph;
  /** Steps of each parsed pipeline, by pipeline id. */
  steps: Map<string, PipelineStep[]>;
  /** Every table or view a pipeline writes, checks or reads, by name. */
  tables: Map<string, TableFacts>;
  problems: string[];
}

export const tableNode = (name: string) => `table:${name}`;
const sourceNode = (sourceId: string) => `source:${sourceId}`;
const checkNode = (pipelineId: string, step: string) => `check:${pipelineId}/${step}`;

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Second line of a source's box. A REST endpoint shows method, origin and path only: user info,
 * query values and headers may hold credentials, and the site is for reading, not for calling.
 */
function sourceDetail(source: SourceConfig): string {
  if (source.type === 'file') return `file ${source.format} ${source.path}`;
  try {
    const url = new URL(source.url);
    return `${source.method} ${url.origin}${url.pathname}`;
  } catch {
    return `${source.method} (an address that does not parse)`;
  }
}

/** Columns a rule names, for the table page (expressions and row counts name none). */
function ruleColumns(rule: DqRule): string[] {
  if (rule.check === 'not_null' || rule.check === 'unique') return [...rule.columns];
  if (rule.check === 'row_count' || rule.check === 'expression') return [];
  return [rule.column];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Collects nodes, edges and table facts; each pipeline's steps are added in their order. */
class LineageBuilder {
  readonly nodes = new Map<string, LineageNode>();
  readonly edges = new Map<string, LineageEdge>();
  readonly tables = new Map<string, TableFacts>();
  readonly steps = new Map<string, PipelineStep[]>();
  readonly problems: string[] = [];

  addPipeline(bundle: PipelineBundle): void {
    const pipelineId = bundle.pipeline.pipeline_id;
    // The check that last gated each table in this pipeline: later reads of the table come after it.
    const gates = new Map<string, string>();
    const steps = bundle.pipeline.steps.map((step) => this.addStep(bundle, step, gates));
    this.steps.set(pipelineId, steps);
  }

  private addStep(bundle: PipelineBundle, step: StepConfig, gates: Map<string, string>): PipelineStep {
    const pipelineId = bundle.pipeline.pipeline_id;
    const via = `${pipelineId}/${step.name}`;
    const base = { name: step.name, type: step.type, onFailure: step.on_failure };
    if (step.type === 'ingest') {
      const source = bundle.sources.get(step.source_config)!;
      const from = this.node({
        id: sourceNode(source.source_id),
        kind: 'source',
        label: source.source_id,
        detail: sourceDetail(source),
        href: null,
      });
      const to = this.table(step.destination.table, 'table');
      this.edge(from, to, via);
      this.writer(step.destination.table, {
        pipelineId,
        step: step.name,
        stepType: 'ingest',
        destination: step.destination,
        from: source.source_id,
      });
      return {
        ...base,
        reads: [from],
        writes: to,
        summary: `${step.destination.write_mode} into ${step.destination.table} from ${source.source_id}`,
      };
    }
    if (step.type === 'dq') {
      const table = this.table(step.table, 'table');
      const check = this.node({
        id: checkNode(pipelineId, step.name),
        kind: 'check',
        label: step.name,
        detail: plural(step.rules.length, 'rule'),
        href: pipelineHref(pipelineId),
      });
      this.edge(table, check, via);
      gates.set(step.table, check);
      this.rules(pipelineId, step.name, step.table, step.rules, bundle.file);
      return { ...base, reads: [table], writes: check, summary: `${plural(step.rules.length, 'rule')} on ${step.table}` };
    }
    const view = step.destination.write_mode === 'view';
    const to = this.table(step.destination.table, view ? 'view' : 'table');
    this.writer(step.destination.table, {
      pipelineId,
      step: step.name,
      stepType: 'transform',
      destination: step.destination,
      from: step.sql,
    });
    const reads: string[] = [];
    for (const ref of this.refsOf(bundle, step.sql)) {
      const read = this.table(ref, 'table');
      reads.push(read);
      this.edge(gates.get(ref) ?? read, to, via);
    }
    const summary = view
      ? `view ${step.destination.table} from ${step.sql}`
      : `${step.destination.write_mode} into ${step.destination.table} from ${step.sql}`;
    return { ...base, reads, writes: to, summary };
  }

  /** The tables a transform's SQL refs; a ref that is no table name is reported, not drawn. */
  private refsOf(bundle: PipelineBundle, sqlFile: string): string[] {
    const refs = sqlRefs(bundle.sql.get(sqlFile) ?? '');
    for (const ref of refs.filter((r) => !IDENTIFIER_PATTERN.test(r))) {
      this.problems.push(
        `configs/${bundle.tenantId}/${sqlFile}: ref(${JSON.stringify(ref.slice(0, 60))}) is not a table name; it is left out`,
      );
    }
    return refs.filter((r) => IDENTIFIER_PATTERN.test(r));
  }

  private node(node: LineageNode): string {
    if (!this.nodes.has(node.id)) this.nodes.set(node.id, node);
    return node.id;
  }

  /** The table's node; a view once, a view in the lineage (some pipeline creates it as one). */
  private table(name: string, kind: 'table' | 'view'): string {
    const facts = this.tables.get(name) ?? { name, kind, writers: [], rules: [] };
    if (kind === 'view') facts.kind = 'view';
    this.tables.set(name, facts);
    const id = tableNode(name);
    this.nodes.set(id, { id, kind: facts.kind, label: name, detail: facts.kind === 'view' ? 'view' : null, href: tableHref(name) });
    return id;
  }

  private edge(from: string, to: string, via: string): void {
    const key = `${from}\0${to}`;
    if (!this.edges.has(key)) this.edges.set(key, { from, to, via });
  }

  private writer(
    table: string,
    w: { pipelineId: string; step: string; stepType: 'ingest' | 'transform'; destination: DestinationConfig; from: string },
  ): void {
    this.tables.get(table)!.writers.push({
      pipelineId: w.pipelineId,
      step: w.step,
      stepType: w.stepType,
      writeMode: w.destination.write_mode,
      mergeKeys: [...(w.destination.merge_keys ?? [])],
      partitionBy: w.destination.partition_by ?? null,
      clusterBy: [...(w.destination.cluster_by ?? [])],
      from: w.from,
    });
  }

  private rules(pipelineId: string, step: string, table: string, rules: DqRule[], file: string): void {
    let names: string[];
    try {
      names = nameRules(rules);
    } catch (err) {
      this.problems.push(`${pipelineId}/${step} (${file}): ${err instanceof Error ? err.message : String(err)}`);
      names = rules.map((rule) => rule.name ?? rule.check);
    }
    const facts = this.tables.get(table)!;
    rules.forEach((rule, i) => {
      facts.rules.push({ pipelineId, step, rule: names[i]!, check: rule.check, columns: ruleColumns(rule), severity: rule.severity });
    });
  }

  build(): Lineage {
    return {
      graph: {
        nodes: [...this.nodes.values()].sort((a, b) => byText(a.id, b.id)),
        edges: [...this.edges.values()].sort((a, b) => byText(a.from, b.from) || byText(a.to, b.to)),
      },
      steps: this.steps,
      tables: this.tables,
      problems: this.problems,
    };
  }
}

type DestinationConfig = Extract<StepConfig, { type: 'transform' }>['destination'];

/**
 * The lineage the tenant's parsed pipelines make (model.ts LineageGraph): source → ingest table,
 * table → check, and a transform's ref()'d table → its table, or the check that gates the read
 * when an earlier DQ step of the same pipeline checks that table.
 */
export function buildLineage(bundles: readonly PipelineBundle[]): Lineage {
  const builder = new LineageBuilder();
  for (const bundle of bundles) builder.addPipeline(bundle);
  return builder.build();
}
