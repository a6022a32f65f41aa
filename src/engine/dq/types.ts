import type { Warehouse } from '../../backends/warehouse/port.ts';
import type { DqRule } from '../../domain/pipeline.ts';

/** The slice of the Warehouse port the DQ engine needs; tests can stand in for it with a small fake. */
export type DqWarehouse = Pick<Warehouse, 'dialect' | 'qualify' | 'query' | 'getTableFields' | 'checkTenantExpression' | 'queryTenant'>;

type DqCheck = DqRule['check'];
export type DqSeverity = DqRule['severity'];

export interface RuleResult {
  ruleName: string;
  check: DqCheck;
  /** Columns the rule reads; empty for row_count, the referenced columns for expression. */
  columns: string[];
  severity: DqSeverity;
  passed: boolean;
  /** Rows that break the rule; 1/0 for the table-level checks row_count and freshness. */
  failingCount: number;
  totalCount: number;
  /** JSON-safe (dates as ISO text, big integers as text); empty when the rule passed. */
  sampleValues: unknown[];
  details: Record<string, unknown>;
}

export interface DqOutcome {
  totalRows: number;
  results: RuleResult[];
  failedErrors: RuleResult[];
  failedWarnings: RuleResult[];
}
