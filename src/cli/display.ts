import type { RunLogEntry } from '../services/runs/remote-logs.ts';
import type { RunRecord, StepRecord } from '../services/runs/store.ts';

/** Text shapes shared by the run commands (terminal output only; --json gets the records). */
export function formatDuration(ms: number | null): string | null {
  if (ms === null) return null;
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** A run's status, with the pending cancel that has not taken effect yet. */
export const runStatus = (run: RunRecord) =>
  run.cancelRequested && (run.status === 'RUNNING' || run.status === 'PENDING') ? `${run.status} (cancel requested)` : run.status;

export const firstLine = (text: string | null) => (text === null ? null : (text.split('\n')[0] ?? null));

/** Why a step failed, or why it was skipped. */
export function stepNote(step: StepRecord): string | null {
  if (step.errorMessage) return firstLine(step.errorMessage);
  const reason = step.details?.reason;
  return typeof reason === 'string' ? reason : null;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * One Cloud Logging line of a run as the terminal shows it: time, severity, message. A message can
 * carry tenant data (a value quoted in an error), so control characters other than newline and tab
 * are shown as "?": an escape sequence in it must not drive the operator's terminal.
 */
export const formatLogEntry = (entry: RunLogEntry) =>
  `${entry.timestamp.toISOString()} ${entry.severity.padEnd(8)} ${entry.message.replace(TERMINAL_CONTROL, '?')}`;
