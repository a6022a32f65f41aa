/**
 * Logs: what a run's container wrote, read back from the environment's log store (Cloud Logging
 * for a cloud environment; the local environment has none, its runs write step logs only).
 * Queries name a run by validated ids, never by free text: the adapter builds its filter from
 * these fields alone.
 */

/** Cloud Logging's severities, lowest first (DEFAULT is an entry that set none). */
export const LOG_SEVERITIES = ['DEFAULT', 'DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR', 'CRITICAL', 'ALERT', 'EMERGENCY'] as const;
export type LogSeverity = (typeof LOG_SEVERITIES)[number];

export interface RunLogEntry {
  /** Unique per entry within a log; what a tail dedupes on. */
  insertId: string;
  timestamp: Date;
  severity: LogSeverity;
  /** The entry's `message` (JSON lines) or its text (plain lines). */
  message: string;
  /** The entry's own labels: tenant_id, pipeline_id, run_id, run.googleapis.com/execution_name, ... */
  labels: Record<string, string>;
}

export interface RunLogQuery {
  /** Short id of the Cloud Run job whose executions ran the run. */
  job: string;
  /** The run id (a uuid) the container labels its lines with. */
  runId: string;
  /**
   * The short id of the execution the run had to itself (a remote start): its lines are then all
   * the execution's, plain-text ones (a crash on stderr) included. Without it, the lines labelled
   * with the run id (a run among others in a dispatcher's execution).
   */
  execution?: string;
  /** Entries at or after this instant only. */
  since: Date;
  /** Entries of at least this severity only. */
  minSeverity?: LogSeverity;
  order: 'asc' | 'desc';
  /** At most this many entries per page (1..1000). */
  pageSize: number;
  pageToken?: string;
}

export interface RunLogPage {
  entries: RunLogEntry[];
  /** Set when more entries match; pass it back as pageToken. */
  nextPageToken?: string;
}

export interface RunLogs {
  list(query: RunLogQuery): Promise<RunLogPage>;
  close(): Promise<void>;
}
