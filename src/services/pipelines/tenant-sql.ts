import type { Warehouse } from '../../backends/warehouse/port.ts';
import type { PipelineConfig } from '../../domain/pipeline.ts';
import { expressionOrigin, nameRules } from '../../engine/dq/index.ts';
import { checkTransformSql } from '../../engine/steps/transform.ts';
import { isConvergenceError } from '../../lib/errors.ts';
import type { ServiceContext } from '../context.ts';
import type { PipelineBundle } from './bundle.ts';

/**
 * Every piece of SQL a tenant wrote — transform files and DQ expressions — put to the warehouse's
 * tenant SQL gate before anything runs: `pipeline validate` reports what it refuses, and a run
 * refuses to start (exit 2, before any lock or run row). The gate checks again when the SQL runs.
 *
 * On BigQuery the gate is a dry run, which needs the tables to exist: a table of the tenant's
 * dataset an earlier step has not created yet (TENANT_SQL_UNCHECKED) leaves that piece to the
 * check at run time.
 */

export interface TenantSqlItem {
  /** Where it is reported: the SQL file, or the pipeline step. */
  at: string;
  check(): Promise<unknown>;
}

/** The tenant SQL of a pipeline, as checks to run. `sql` reads a file relative to the tenant folder. */
export function pipelineSqlItems(
  warehouse: Warehouse,
  input: { tenantId: string; display: string; pipeline: PipelineConfig; sql: (relative: string) => Promise<string> },
): TenantSqlItem[] {
  const dataset = input.tenantId;
  const items: TenantSqlItem[] = [];
  for (const [index, step] of input.pipeline.steps.entries()) {
    const at = `${input.display}: steps.${index} (${step.name})`;
    if (step.type === 'transform') {
      items.push({
        at,
        check: async () => {
          // A file that cannot be read is the reference checks' to report, not the gate's.
          const text = await input.sql(step.sql).catch(() => undefined);
          if (text !== undefined) {
            const view = step.destination.write_mode === 'view';
            await checkTransformSql(warehouse, { tenantId: input.tenantId, dataset, relative: step.sql, text, view });
          }
        },
      });
    } else if (step.type === 'dq') {
      const names = nameRules(step.rules);
      step.rules.forEach((rule, i) => {
        if (rule.check !== 'expression') return;
        items.push({
          at,
          check: () =>
            warehouse.checkTenantExpression(rule.expr, {
              dataset,
              table: step.table,
              origin: `${at}: ${expressionOrigin(names[i]!, rule.expr)}`,
            }),
        });
      });
    }
  }
  return items;
}

/** A standalone SQL file of the tenant, checked as a transform. */
export function sqlFileItem(warehouse: Warehouse, input: { tenantId: string; relative: string; text: string }): TenantSqlItem {
  return {
    at: `configs/${input.tenantId}/${input.relative}`,
    check: () => checkTransformSql(warehouse, { ...input, dataset: input.tenantId }),
  };
}

const notYetCheckable = (err: unknown) => isConvergenceError(err) && err.code === 'TENANT_SQL_UNCHECKED';

/** Runs the checks; returns one message per refusal (the gate's message names file and line). */
export async function tenantSqlProblems(items: TenantSqlItem[]): Promise<string[]> {
  const problems: string[] = [];
  for (const item of items) {
    try {
      await item.check();
    } catch (err) {
      if (notYetCheckable(err)) continue;
      if (!isConvergenceError(err)) throw err;
      // The gate's refusals name their file (and line); other failures get the item's place.
      problems.push(err.message.startsWith('configs/') ? err.message : `${item.at}: ${err.message}`);
    }
  }
  return problems;
}

/** Before a run: the first refusal of the pipeline's tenant SQL, thrown as the gate made it (exit 2). */
export async function assertTenantSql(ctx: ServiceContext, bundle: PipelineBundle): Promise<void> {
  // Dry runs cost nothing and precede the run id, so they carry no run labels.
  const warehouse = await ctx.backends.tenantWarehouse(bundle.tenantId);
  const items = pipelineSqlItems(warehouse, {
    tenantId: bundle.tenantId,
    display: `configs/${bundle.tenantId}/${bundle.file}`,
    pipeline: bundle.pipeline,
    sql: async (relative) => bundle.sql.get(relative)!,
  });
  for (const item of items) {
    try {
      await item.check();
    } catch (err) {
      if (!notYetCheckable(err)) throw err;
    }
  }
}
