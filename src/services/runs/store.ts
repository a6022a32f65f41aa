import { randomUUID } from 'node:crypto';
import type { Row, Warehouse } from '../../backends/warehouse/port.ts';
import { isCalendarDate } from '../../domain/dates.ts';
import { assertName, assertTenantId, UUID_PATTERN } from '../../domain/ids.ts';
import { RUN_STATES, STEP_STATES, TERMINAL_RUN_STATES, type RunState, type StepState } from '../../domain/states.ts';
import { conflictError, notFoundError, validationError } from '../../lib/errors.ts';
import { redactKnownSecrets, redactKnownSecretsDeep } from '../../lib/redaction.ts';
import type { ServiceContext } from '../context.ts';
import { requireBootstrapped } from '../metadata/guard.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { requireTenant } from '../tenants.ts';

/**
 * Run and step records (tenant_pipeline_runs, tenant_step_logs). State changes are conditional
 * updates on the current status, so a run that cleanup-orphans already ended is never
 * resurrected by the process that owned it.
 */
const RUN_TRIGGERS = ['manual', 'scheduled', 'api', 'remote'] as const;
type RunTrigger = (typeof RUN_TRIGGERS)[number];
type RunOutcome = 'COMPLETE' | 'FAILED' | 'CANCELLED' | 'TIMEOUT';
const LIVE_RUN_STATES: RunState[] = ['PENDING', 'RUNNING'];

export interface RunRecord {
  runId: string;
  tenantId: string;
  pipelineId: string;
  status: RunState;
  trigger: RunTrigger;
  triggeredBy: string | null;
  configVersion: string | null;
  runDate: string | null;
  parameters: Record<string, string>;
  startTime: Date | null;
  endTime: Date | null;
  timeoutAt: Date | null;
  durationMs: number | null;
  rowsProcessed: number | null;
  errorMessage: string | null;
  exitCode: number | null;
  cancelRequested: boolean;
  executionName: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface StepRecord {
  stepLoggingId: string;
  runId: string;
  tenantId: string;
  pipelineId: string;
  stepName: string;
  stepType: string;
  stepIndex: number;
  status: StepState;
  startTime: Date | null;
  endTime: Date | null;
  durationMs: number | null;
  rowsIn: number | null;
  rowsOut: number | null;
  bytesProcessed: number | null;
  errorMessage: string | null;
  details: Record<string, unknown> | null;
}

export interface CreateRunInput {
  runId: string;
  tenantId: string;
  pipelineId: string;
  trigger: RunTrigger;
  triggeredBy?: string;
  configVersion?: string;
  runDate: string;
  parameters: Record<string, string>;
  timeoutAt: Date;
  /**
   * Continue a PENDING row of the same id, tenant and pipeline instead of refusing the id: the row
   * a remote start wrote before handing the run to its container.
   */
  adoptPending?: boolean;
}

export interface FinishRunInput {
  status: RunOutcome;
  exitCode: number;
  errorMessage?: string;
  /** Omitted: the column keeps what it had. */
  rowsProcessed?: number;
  /** End the run only while it is in one of these states (default: PENDING or RUNNING). */
  onlyIf?: RunState[];
}

export interface StepInput {
  runId: string;
  tenantId: string;
  pipelineId: string;
  stepName: string;
  stepType: string;
  stepIndex: number;
}

export interface FinishStepInput {
  status: StepState;
  rowsIn: number;
  rowsOut: number;
  bytesProcessed: number;
  errorMessage?: string;
  details?: object;
}

export interface ListRunsOptions {
  tenantId: string;
  pipelineId?: string;
  status?: RunState;
  limit?: number;
  /** Rows to skip (pagination). */
  offset?: number;
  since?: Date;
}

export const MAX_LIST_LIMIT = 1000;

const str = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
const num = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const date = (value: unknown): Date | null => (value instanceof Date ? value : null);

function parseJson<T>(value: unknown, fallback: T): T {
  if (value === null || value === undefined) return fallback;
  if (typeof value !== 'string') return value as T;
  try {
    return JSON.parse(value) as T;
  } catch {
    return fallback;
  }
}

function toRunRecord(row: Row): RunRecord {
  return {
    runId: String(row.pipeline_logging_id),
    tenantId: String(row.tenant_id),
    pipelineId: String(row.pipeline_id),
    status: row.status as RunState,
    trigger: row.trigger_type as RunTrigger,
    triggeredBy: str(row.triggered_by),
    configVersion: str(row.config_version),
    runDate: str(row.run_date),
    parameters: parseJson<Record<string, string>>(row.parameters, {}),
    startTime: date(row.start_time),
    endTime: date(row.end_time),
    timeoutAt: date(row.timeout_at),
    durationMs: num(row.duration_ms),
    rowsProcessed: num(row.rows_processed),
    errorMessage: str(row.error_message),
    exitCode: num(row.exit_code),
    cancelRequested: row.cancel_requested === true,
    executionName: str(row.execution_name),
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
}

function toStepRecord(row: Row): StepRecord {
  return {
    stepLoggingId: String(row.step_logging_id),
    runId: String(row.pipeline_logging_id),
    tenantId: String(row.tenant_id),
    pipelineId: String(row.pipeline_id),
    stepName: String(row.step_name),
    stepType: String(row.step_type),
    stepIndex: Number(row.step_index),
    status: row.status as StepState,
    startTime: date(row.start_time),
    endTime: date(row.end_time),
    durationMs: num(row.duration_ms),
    rowsIn: num(row.rows_in),
    rowsOut: num(row.rows_out),
    bytesProcessed: num(row.bytes_processed),
    errorMessage: str(row.error_message),
    details: parseJson<Record<string, unknown> | null>(row.details, null),
  };
}

/** Ids are printed lowercase; accept what a user pastes in either case. */
function assertUuid(kind: string, value: string): string {
  const id = value.trim().toLowerCase();
  if (!UUID_PATTERN.test(id)) {
    throw validationError(`invalid ${kind} ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`, {
      suggestion: `a ${kind} is a uuid such as 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b; list runs with \`convergence pipeline runs --tenant <id>\``,
    });
  }
  return id;
}

export const assertRunId = (value: string) => assertUuid('run id', value);

function assertCount(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw validationError(`${what} must be a non-negative integer, got ${value}`);
}

async function metadata(ctx: ServiceContext): Promise<Warehouse> {
  const warehouse = await ctx.backends.warehouse();
  await requireBootstrapped(warehouse, ctx.env.name);
  return warehouse;
}

async function findRunRow(warehouse: Warehouse, runId: string): Promise<Row | undefined> {
  const [row] = await warehouse.select(METADATA_DATASET, T.runs, { where: { pipeline_logging_id: runId }, limit: 1 });
  return row;
}

const elapsed = (from: unknown, to: Date): number | null => (from instanceof Date ? Math.max(0, to.getTime() - from.getTime()) : null);

export async function createRun(ctx: ServiceContext, input: CreateRunInput): Promise<RunRecord> {
  const runId = assertRunId(input.runId);
  assertTenantId(input.tenantId);
  assertName('pipeline id', input.pipelineId);
  if (!RUN_TRIGGERS.includes(input.trigger)) throw validationError(`unknown trigger ${JSON.stringify(input.trigger)}`);
  if (!isCalendarDate(input.runDate)) {
    throw validationError(`run date ${JSON.stringify(input.runDate)} is not a YYYY-MM-DD date`);
  }
  if (Number.isNaN(input.timeoutAt.getTime())) throw validationError('timeoutAt is not a valid date');
  const warehouse = await metadata(ctx);
  const existing = await findRunRow(warehouse, runId);
  const now = ctx.now();
  if (existing) {
    const adoptable =
      input.adoptPending &&
      existing.status === 'PENDING' &&
      existing.tenant_id === input.tenantId &&
      existing.pipeline_id === input.pipelineId;
    if (!adoptable) throw conflictError(`run ${runId} already exists`);
    const set: Row = {
      config_version: input.configVersion ?? (existing.config_version as string | null) ?? null,
      run_date: input.runDate,
      parameters: JSON.stringify(input.parameters),
      timeout_at: input.timeoutAt,
      updated_at: now,
    };
    const changed = await warehouse.update(METADATA_DATASET, T.runs, set, { pipeline_logging_id: runId, status: 'PENDING' });
    // Cancelled or timed out between our read and our update.
    if (changed === 0) throw conflictError(`run ${runId} is no longer pending`);
    return toRunRecord({ ...existing, ...set });
  }
  const row: Row = {
    pipeline_logging_id: runId,
    tenant_id: input.tenantId,
    pipeline_id: input.pipelineId,
    status: 'PENDING',
    trigger_type: input.trigger,
    triggered_by: input.triggeredBy ?? ctx.actor,
    config_version: input.configVersion ?? null,
    run_date: input.runDate,
    parameters: JSON.stringify(input.parameters),
    // Set at creation so a run stuck in PENDING still ages for cleanup-orphans --older-than.
    start_time: now,
    timeout_at: input.timeoutAt,
    cancel_requested: false,
    created_at: now,
    updated_at: now,
  };
  await warehouse.insert(METADATA_DATASET, T.runs, [row]);
  return toRunRecord({ ...row, cancel_requested: false });
}

/** Names the Cloud Run execution that carries a remote run. */
export async function recordExecution(ctx: ServiceContext, runId: string, execution: string): Promise<void> {
  const warehouse = await metadata(ctx);
  await warehouse.update(
    METADATA_DATASET,
    T.runs,
    { execution_name: execution, updated_at: ctx.now() },
    { pipeline_logging_id: assertRunId(runId) },
  );
}

/** PENDING → RUNNING; false when the run is no longer pending (cancelled, timed out by cleanup). */
export async function markRunning(ctx: ServiceContext, runId: string): Promise<boolean> {
  const id = assertRunId(runId);
  const warehouse = await metadata(ctx);
  const changed = await warehouse.update(
    METADATA_DATASET,
    T.runs,
    { status: 'RUNNING', updated_at: ctx.now() },
    { pipeline_logging_id: id, status: 'PENDING' },
  );
  return changed > 0;
}

/**
 * Ends a run. Returns false and changes nothing when the run is already terminal (e.g.
 * cleanup-orphans marked it TIMEOUT) or unknown. Steps still RUNNING are closed with it, so a
 * crashed step never stays RUNNING forever.
 */
export async function finishRun(ctx: ServiceContext, runId: string, input: FinishRunInput): Promise<boolean> {
  const id = assertRunId(runId);
  if (!TERMINAL_RUN_STATES.has(input.status)) throw validationError(`finishRun needs a terminal status, got ${input.status}`);
  if (input.rowsProcessed !== undefined) assertCount('rowsProcessed', input.rowsProcessed);
  const warehouse = await metadata(ctx);
  const row = await findRunRow(warehouse, id);
  const endable = (input.onlyIf ?? LIVE_RUN_STATES).filter((state) => !TERMINAL_RUN_STATES.has(state));
  if (!row || !endable.includes(row.status as RunState)) return false;
  const now = ctx.now();
  const changed = await warehouse.update(
    METADATA_DATASET,
    T.runs,
    {
      status: input.status,
      end_time: now,
      duration_ms: elapsed(row.start_time, now),
      exit_code: input.exitCode,
      // The last line of defence: no secret this process resolved is ever recorded.
      error_message: input.errorMessage === undefined ? null : redactKnownSecrets(input.errorMessage),
      ...(input.rowsProcessed !== undefined ? { rows_processed: input.rowsProcessed } : {}),
      updated_at: now,
    },
    { pipeline_logging_id: id, status: { op: 'in', values: endable } },
  );
  if (changed === 0) return false;
  await closeOpenSteps(ctx, id, input.status === 'COMPLETE' ? 'FAILED' : input.status, `the run ended ${input.status} before the step did`);
  return true;
}

/** Gives every RUNNING step of a run an end; returns how many were closed. */
export async function closeOpenSteps(ctx: ServiceContext, runId: string, status: StepState, message: string): Promise<number> {
  const warehouse = await metadata(ctx);
  const open = await warehouse.select(METADATA_DATASET, T.stepLogs, { where: { pipeline_logging_id: runId, status: 'RUNNING' } });
  const now = ctx.now();
  for (const step of open) {
    await warehouse.update(
      METADATA_DATASET,
      T.stepLogs,
      { status, end_time: now, duration_ms: elapsed(step.start_time, now), error_message: message, updated_at: now },
      { step_logging_id: String(step.step_logging_id), status: 'RUNNING' },
    );
  }
  return open.length;
}

function stepRow(ctx: ServiceContext, input: StepInput, status: StepState, extra: Row = {}): Row {
  const runId = assertRunId(input.runId);
  assertTenantId(input.tenantId);
  assertName('pipeline id', input.pipelineId);
  assertName('step name', input.stepName);
  assertCount('stepIndex', input.stepIndex);
  const now = ctx.now();
  return {
    step_logging_id: randomUUID(),
    pipeline_logging_id: runId,
    tenant_id: input.tenantId,
    pipeline_id: input.pipelineId,
    step_name: input.stepName,
    step_type: input.stepType,
    step_index: input.stepIndex,
    status,
    start_time: now,
    created_at: now,
    updated_at: now,
    ...extra,
  };
}

/** Records a step as RUNNING and returns its step_logging_id. */
export async function startStep(ctx: ServiceContext, input: StepInput): Promise<string> {
  const row = stepRow(ctx, input, 'RUNNING');
  const warehouse = await metadata(ctx);
  await warehouse.insert(METADATA_DATASET, T.stepLogs, [row]);
  return String(row.step_logging_id);
}

/** Records a step that never ran (an earlier step failed with on_failure: stop, or a cancel). */
export async function skipStep(ctx: ServiceContext, input: StepInput & { reason?: string }): Promise<string> {
  const row = stepRow(ctx, input, 'SKIPPED', {
    duration_ms: 0,
    rows_in: 0,
    rows_out: 0,
    bytes_processed: 0,
    details: input.reason ? JSON.stringify({ reason: input.reason }) : null,
  });
  row.end_time = row.start_time ?? null;
  const warehouse = await metadata(ctx);
  await warehouse.insert(METADATA_DATASET, T.stepLogs, [row]);
  return String(row.step_logging_id);
}

/** Ends a RUNNING step; false when it had already ended (e.g. closed by cleanup-orphans). */
export async function finishStep(ctx: ServiceContext, stepLoggingId: string, input: FinishStepInput): Promise<boolean> {
  const id = assertUuid('step logging id', stepLoggingId);
  if (!STEP_STATES.includes(input.status) || input.status === 'PENDING' || input.status === 'RUNNING') {
    throw validationError(`finishStep needs a final status, got ${input.status}`);
  }
  assertCount('rowsIn', input.rowsIn);
  assertCount('rowsOut', input.rowsOut);
  assertCount('bytesProcessed', input.bytesProcessed);
  const warehouse = await metadata(ctx);
  const [row] = await warehouse.select(METADATA_DATASET, T.stepLogs, { where: { step_logging_id: id }, limit: 1 });
  if (!row) throw notFoundError(`step ${id} not found`);
  const now = ctx.now();
  const changed = await warehouse.update(
    METADATA_DATASET,
    T.stepLogs,
    {
      status: input.status,
      end_time: now,
      duration_ms: elapsed(row.start_time, now),
      rows_in: input.rowsIn,
      rows_out: input.rowsOut,
      bytes_processed: input.bytesProcessed,
      error_message: input.errorMessage === undefined ? null : redactKnownSecrets(input.errorMessage),
      details: input.details === undefined ? null : JSON.stringify(redactKnownSecretsDeep(input.details)),
      updated_at: now,
    },
    { step_logging_id: id, status: 'RUNNING' },
  );
  return changed > 0;
}

export async function getRun(ctx: ServiceContext, runId: string): Promise<RunRecord> {
  const id = assertRunId(runId);
  const row = await findRunRow(await metadata(ctx), id);
  if (!row) {
    throw notFoundError(`run ${id} not found`, {
      suggestion: 'list recent runs with `convergence pipeline runs --tenant <tenant_id>` (check --env too)',
    });
  }
  return toRunRecord(row);
}

export async function getStepLogs(ctx: ServiceContext, runId: string): Promise<StepRecord[]> {
  const id = assertRunId(runId);
  const warehouse = await metadata(ctx);
  const rows = await warehouse.select(METADATA_DATASET, T.stepLogs, {
    where: { pipeline_logging_id: id },
    orderBy: [
      ['step_index', 'asc'],
      ['start_time', 'asc'],
    ],
  });
  return rows.map(toStepRecord);
}

export interface RunDetails {
  run: RunRecord;
  steps: StepRecord[];
}

/** A run and its step logs (unknown run: exit 8). */
export async function getRunDetails(ctx: ServiceContext, runId: string): Promise<RunDetails> {
  const run = await getRun(ctx, runId);
  return { run, steps: await getStepLogs(ctx, run.runId) };
}

/** Newest first. A deleted tenant's history stays readable. */
export async function listRuns(ctx: ServiceContext, options: ListRunsOptions): Promise<RunRecord[]> {
  await requireTenant(ctx, options.tenantId, { allowDeleted: true });
  const limit = options.limit ?? 20;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw validationError(`limit must be between 1 and ${MAX_LIST_LIMIT}, got ${limit}`);
  }
  if (options.status !== undefined && !RUN_STATES.includes(options.status)) {
    throw validationError(`unknown run status ${JSON.stringify(options.status)}`, { suggestion: `one of ${RUN_STATES.join(', ')}` });
  }
  if (options.pipelineId !== undefined) assertName('pipeline id', options.pipelineId);
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw validationError(`offset must be a whole number >= 0, got ${offset}`);
  const warehouse = await metadata(ctx);
  const rows = await warehouse.select(METADATA_DATASET, T.runs, {
    where: {
      tenant_id: options.tenantId,
      ...(options.pipelineId !== undefined ? { pipeline_id: options.pipelineId } : {}),
      ...(options.status !== undefined ? { status: options.status } : {}),
      ...(options.since !== undefined ? { created_at: { op: '>=', value: options.since } } : {}),
    },
    orderBy: [
      ['created_at', 'desc'],
      ['pipeline_logging_id', 'asc'],
    ],
    limit,
    ...(offset ? { offset } : {}),
  });
  return rows.map(toRunRecord);
}

export interface CancelRequest {
  runId: string;
  tenantId: string;
  pipelineId: string;
  status: RunState;
  /** False when a cancel had already been requested. */
  changed: boolean;
}

/** Flags a live run for cancellation; the engine stops it at its next checkpoint. */
export async function requestCancel(ctx: ServiceContext, runId: string): Promise<CancelRequest> {
  const run = await getRun(ctx, runId);
  if (TERMINAL_RUN_STATES.has(run.status)) throw alreadyFinished(run);
  const base = { runId: run.runId, tenantId: run.tenantId, pipelineId: run.pipelineId, status: run.status };
  if (run.cancelRequested) return { ...base, changed: false };
  const warehouse = await metadata(ctx);
  const changed = await warehouse.update(
    METADATA_DATASET,
    T.runs,
    { cancel_requested: true, updated_at: ctx.now() },
    { pipeline_logging_id: run.runId, status: { op: 'in', values: LIVE_RUN_STATES } },
  );
  // It ended between our read and our update.
  if (changed === 0) throw alreadyFinished(await getRun(ctx, run.runId));
  return { ...base, changed: true };
}

function alreadyFinished(run: RunRecord) {
  return conflictError(`run ${run.runId} already finished (${run.status}${run.endTime ? ` at ${run.endTime.toISOString()}` : ''})`, {
    suggestion: `see what happened with \`convergence pipeline status ${run.runId}\``,
    data: { status: run.status },
  });
}

export async function isCancelRequested(ctx: ServiceContext, runId: string): Promise<boolean> {
  const id = assertRunId(runId);
  const warehouse = await metadata(ctx);
  const [row] = await warehouse.select(METADATA_DATASET, T.runs, {
    where: { pipeline_logging_id: id },
    columns: ['cancel_requested'],
    limit: 1,
  });
  return row?.cancel_requested === true;
}

/** PENDING/RUNNING runs of a tenant whose timeout has not passed: the runs that hold a concurrency slot. */
export async function countLiveRuns(ctx: ServiceContext, tenantId: string, options: { excludeRunId?: string } = {}): Promise<number> {
  const warehouse = await metadata(ctx);
  return warehouse.count(METADATA_DATASET, T.runs, {
    tenant_id: tenantId,
    status: { op: 'in', values: LIVE_RUN_STATES },
    timeout_at: { op: '>', value: ctx.now() },
    ...(options.excludeRunId ? { pipeline_logging_id: { op: '!=', value: options.excludeRunId } } : {}),
  });
}

/** Live runs matching the given conditions, oldest first (cleanup-orphans, tenant delete). */
export async function findLiveRuns(
  ctx: ServiceContext,
  condition: { tenantId?: string; timedOutBy?: Date; startedBefore?: Date },
): Promise<RunRecord[]> {
  const warehouse = await metadata(ctx);
  const rows = await warehouse.select(METADATA_DATASET, T.runs, {
    where: {
      status: { op: 'in', values: LIVE_RUN_STATES },
      ...(condition.tenantId ? { tenant_id: assertTenantId(condition.tenantId) } : {}),
      ...(condition.timedOutBy ? { timeout_at: { op: '<=', value: condition.timedOutBy } } : {}),
      ...(condition.startedBefore ? { start_time: { op: '<', value: condition.startedBefore } } : {}),
    },
    orderBy: [['created_at', 'asc']],
  });
  return rows.map(toRunRecord);
}

/** Runs by id (unknown ids are absent from the result). */
export async function findRuns(ctx: ServiceContext, runIds: string[]): Promise<RunRecord[]> {
  if (runIds.length === 0) return [];
  const warehouse = await metadata(ctx);
  const rows = await warehouse.select(METADATA_DATASET, T.runs, { where: { pipeline_logging_id: { op: 'in', values: runIds } } });
  return rows.map(toRunRecord);
}

/**
 * The runs of one pipeline whose run date lies in [from, to] (YYYY-MM-DD), newest first, in one
 * statement: what a backfill reads to know which dates already completed.
 */
export async function findRunsByRunDate(
  ctx: ServiceContext,
  range: { tenantId: string; pipelineId: string; from: string; to: string },
): Promise<RunRecord[]> {
  assertTenantId(range.tenantId);
  assertName('pipeline id', range.pipelineId);
  for (const day of [range.from, range.to]) {
    if (!isCalendarDate(day)) throw validationError(`run date ${JSON.stringify(day)} is not a YYYY-MM-DD date`);
  }
  const warehouse = await metadata(ctx);
  const d = warehouse.dialect;
  const p = d.params();
  const rows = await warehouse.query(
    `SELECT * FROM ${warehouse.qualify(METADATA_DATASET, T.runs)}
     WHERE tenant_id = ${p.add(range.tenantId)} AND pipeline_id = ${p.add(range.pipelineId)}
       AND run_date BETWEEN ${d.date(p.add(range.from))} AND ${d.date(p.add(range.to))}
     ORDER BY created_at DESC, pipeline_logging_id`,
    p.values,
  );
  return rows.map(toRunRecord);
}
