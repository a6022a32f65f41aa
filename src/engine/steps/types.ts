import type { Storage } from '@google-cloud/storage';
import type { Warehouse } from '../../backends/warehouse/port.ts';
import type { DqOutcome } from '../dq/types.ts';
import type { ConvergenceError } from '../../lib/errors.ts';
import type { SourceConfig, TableSchemaFile } from '../../domain/pipeline.ts';
import type { FileScope } from '../sources/file/scope.ts';
import type { StepProgress } from '../staging/staged-data.ts';
import type { RestSourceAccess } from '../sources/rest/auth/index.ts';

/** What a step needs from the run around it; the engine itself knows nothing of metadata tables. */
export interface StepEnv {
  warehouse: Warehouse;
  tenantId: string;
  /** The tenant's dataset, where destinations live. */
  dataset: string;
  pipelineId: string;
  runId: string;
  /** run_date, cursor-free params and --param values, for templates. */
  variables: Record<string, string>;
  /** Where the tenant's file sources may read: its data folder and the environment's file roots. */
  fileScope: FileScope;
  /** Cloud Storage as this tenant reads its gs:// sources (its own service account where one is set). */
  objectStorage(): Promise<Storage>;
  /** Folder for this step's staged files; removed after a successful run. */
  stagingDir: string;
  fullRefresh: boolean;
  signal: AbortSignal;
  progress: StepProgress;
  now(): Date;
  warn(message: string): void;
  source(relative: string): SourceConfig;
  schema(relative: string | undefined): TableSchemaFile | undefined;
  sql(relative: string): string;
  /** What the operator lets tenant REST sources reach and use; nothing special when absent. */
  restSources?: RestSourceAccess;
  /** Resolves a tenant secret by name; throws a clear error when it is missing. */
  secret(name: string): Promise<string>;
}

export interface StepOutcome {
  rowsIn: number;
  rowsOut: number;
  bytes: number;
  /** Kept in tenant_step_logs.details and shown by `pipeline logs`. */
  details: Record<string, unknown>;
  /** Not a failure, worth telling: DQ warnings, quarantined rows, added columns. */
  notes: string[];
  /** Set when the step ran to the end but its verdict is a failure (a data-quality error rule). */
  failure?: ConvergenceError;
  /** A DQ step's per-rule outcome; the run around the step records it (tenant_dq_results). */
  dq?: DqOutcome;
}
