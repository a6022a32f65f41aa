import type { PipelineStats } from '../services/runs/stats.ts';
import type { RunRecord, StepRecord } from '../services/runs/store.ts';

/** The API speaks the column names of the metadata tables (snake_case), as the seeds' clients expect. */
export function runView(run: RunRecord) {
  return {
    pipeline_logging_id: run.runId,
    tenant_id: run.tenantId,
    pipeline_id: run.pipelineId,
    status: run.status,
    trigger_type: run.trigger,
    triggered_by: run.triggeredBy,
    config_version: run.configVersion,
    run_date: run.runDate,
    parameters: run.parameters,
    start_time: run.startTime,
    end_time: run.endTime,
    timeout_at: run.timeoutAt,
    duration_ms: run.durationMs,
    rows_processed: run.rowsProcessed,
    error_message: run.errorMessage,
    exit_code: run.exitCode,
    cancel_requested: run.cancelRequested,
    execution_name: run.executionName,
    created_at: run.createdAt,
    updated_at: run.updatedAt,
  };
}

export function stepView(step: StepRecord) {
  return {
    step_logging_id: step.stepLoggingId,
    step_name: step.stepName,
    step_type: step.stepType,
    step_index: step.stepIndex,
    status: step.status,
    start_time: step.startTime,
    end_time: step.endTime,
    duration_ms: step.durationMs,
    rows_in: step.rowsIn,
    rows_out: step.rowsOut,
    bytes_processed: step.bytesProcessed,
    error_message: step.errorMessage,
  };
}

export function statsView(stats: PipelineStats) {
  return {
    pipeline_id: stats.pipelineId,
    total_runs: stats.runs,
    finished_runs: stats.finished,
    successful: stats.succeeded,
    failed: stats.failed,
    success_rate_pct: stats.successRate === null ? null : Math.round(stats.successRate * 10_000) / 100,
    p50_duration_ms: stats.p50DurationMs,
    p95_duration_ms: stats.p95DurationMs,
    rows_processed: stats.rowsProcessed,
    last_failure: stats.lastFailure
      ? {
          pipeline_logging_id: stats.lastFailure.runId,
          status: stats.lastFailure.status,
          created_at: stats.lastFailure.at,
          error_message: stats.lastFailure.error,
        }
      : null,
  };
}
