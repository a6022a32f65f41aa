import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { SourceConfig } from '../../domain/pipeline.ts';
import type { LoadRequest, LoadResult } from '../../backends/warehouse/port.ts';
import type { RestSourceConfig } from '../sources/rest/types.ts';
import type { StagedData } from '../staging/staged-data.ts';
import { asStepFailure, validationError } from '../../lib/errors.ts';
import { cursorWrites, ensureStateTable } from '../cursor.ts';
import { formatDate } from '../instants.ts';
import { planWindows, replaceWithWindows, windowBounds, type DateWindow } from '../sources/rest/windows.ts';
import { destinationOptions, fullRefreshMode, loadDetails, loadNotes, sourceFile, stateKey, type IngestStep } from './ingest-load.ts';
import { restConfig, stageRest } from './rest-request.ts';
import type { StepEnv, StepOutcome } from './types.ts';

type RestSource = Extract<SourceConfig, { type: 'rest_api' }>;
export type WindowedSource = RestSource & { windows: NonNullable<RestSource['windows']> };

/** What one window did, for the step's details. */
interface WindowDone {
  start: string;
  end: string;
  rows: number;
}

/**
 * A REST source with `windows`: each window is fetched, staged and loaded with its cursor (the
 * window's end) in one transaction, so a failure in window k leaves the windows before it landed
 * and the next run starts at window k. The first window that lands rows writes with the step's
 * mode (a full refresh replaces an append table); the others append, or merge.
 */
export async function runWindows(
  env: StepEnv,
  step: IngestStep,
  source: WindowedSource,
  cursor: { value: string; committed: boolean } | undefined,
): Promise<StepOutcome> {
  const file = sourceFile(env, step);
  const dest = step.destination;
  if (dest.write_mode === 'replace') throw validationError(`${file}: step ${step.name}: ${replaceWithWindows}`);
  const runDate = env.variables['run_date'] ?? formatDate(env.now());
  const bounds = windowBounds(source.windows, { file, cursor: cursor?.value, runDate, now: env.now() });
  const windows = planWindows({ ...bounds, size: source.windows.size }, file);
  const details = { table: dest.table, source: source.type, cursorFrom: cursor?.value ?? null };
  if (windows.length === 0) {
    return {
      rowsIn: 0,
      rowsOut: 0,
      bytes: 0,
      details: { ...details, windows: [], cursorTo: cursor?.value ?? null },
      notes: [`no new window since ${bounds.from} (windows end at ${bounds.to})`],
    };
  }
  const variablesOf = (window: DateWindow, committed: string | undefined) => ({
    ...env.variables,
    cursor: committed ?? '',
    window_start: window.start,
    window_end: window.end,
  });
  const configFor = await restConfig(env, step, source, variablesOf(windows[0]!, cursor?.value));
  await ensureStateTable(env.warehouse, env.dataset);
  const done: WindowDone[] = [];
  const notes = new Set<string>();
  const totals = { rowsIn: 0, rowsOut: 0, bytes: 0 };
  let committed = cursor?.value;
  let landed: LoadResult | undefined;
  let writeMode = fullRefreshMode(env, dest.write_mode);
  const outcome = (): StepOutcome => ({
    ...totals,
    details: {
      ...(landed ? loadDetails(dest.table, fullRefreshMode(env, dest.write_mode), source.type, landed) : details),
      cursorFrom: cursor?.value ?? null,
      cursorTo: committed ?? null,
      windows: done,
    },
    notes: [...notes, ...(landed ? loadNotes(env, dest.table, landed) : [])],
  });
  for (const [k, window] of windows.entries()) {
    env.signal.throwIfAborted();
    const label = `window ${k + 1}/${windows.length} ${window.start}..${window.end}`;
    env.progress({ message: label });
    const variables = variablesOf(window, committed);
    let one: WindowLoad;
    try {
      one = await loadWindow(
        env,
        step,
        { label, window, writeMode, stagingDir: path.join(env.stagingDir, `window-${k + 1}`), rowsBefore: totals.rowsIn },
        () => configFor(variables),
      );
    } catch (error) {
      const failure = windowFailure(error, label, window, env.signal);
      // Nothing landed yet, or the run was stopped: the step fails as any step does.
      if (done.length === 0 || env.signal.aborted) throw failure;
      // The windows before it are committed: the step reports what they landed, and fails.
      return { ...outcome(), failure: asStepFailure(failure) };
    }
    if (one.result) {
      landed = mergeLoads(landed, one.result);
      writeMode = dest.write_mode === 'merge' ? 'merge' : 'append';
    }
    for (const warning of one.staged.warnings ?? []) notes.add(warning);
    committed = window.end;
    totals.rowsIn += one.staged.rows;
    totals.rowsOut += one.result?.rowsLoaded ?? 0;
    totals.bytes += one.staged.bytesRead;
    done.push({ start: window.start, end: window.end, rows: one.staged.rows });
    env.progress({ rows: totals.rowsOut });
  }
  return outcome();
}

interface WindowLoad {
  staged: StagedData;
  /** Absent when the window had nothing to load. */
  result?: LoadResult;
}

interface WindowRun {
  label: string;
  window: DateWindow;
  writeMode: LoadRequest['writeMode'];
  stagingDir: string;
  /** Rows the step staged before this window, so progress counts the step's rows. */
  rowsBefore: number;
}

/** Fetches and stages one window, then loads it together with its cursor (the window's end) in one transaction. */
async function loadWindow(env: StepEnv, step: IngestStep, run: WindowRun, config: () => RestSourceConfig): Promise<WindowLoad> {
  const dest = step.destination;
  const source = env.source(step.source_config);
  const staged = await stageRest(env, step, config(), {
    stagingDir: run.stagingDir,
    label: run.label,
    onRows: (rows) => run.rowsBefore + rows,
  });
  env.signal.throwIfAborted();
  const commit = cursorWrites(stateKey(env, step), {
    field: source.incremental!.cursor_field,
    value: run.window.end,
    runId: env.runId,
    at: env.now(),
  });
  let result: LoadResult | undefined;
  // An empty answer without a schema has no columns to load: the window is done all the same.
  if (staged.fields.length === 0 && staged.rows === 0) await env.warehouse.atomic(commit);
  else {
    env.progress({ message: `${run.label}: loading ${staged.rows - staged.rejected} rows into ${dest.table} (${run.writeMode})` });
    result = await env.warehouse.load({
      dataset: env.dataset,
      table: dest.table,
      source: { kind: 'parquet', files: staged.files, fields: staged.fields },
      writeMode: run.writeMode,
      ...destinationOptions(dest),
      runId: env.runId,
      alsoWrite: commit,
    });
  }
  // The window is committed: its staged files are no longer needed, and a long backfill would pile them up.
  await rm(run.stagingDir, { recursive: true, force: true });
  return { staged, ...(result ? { result } : {}) };
}

/**
 * A window failed: its error says which window and that the next run resumes there. An
 * interruption stays as it is (the run reports it as such).
 */
function windowFailure(error: unknown, label: string, window: DateWindow, signal: AbortSignal): unknown {
  if (signal.aborted || !(error instanceof Error)) return error;
  error.message = `${label}: ${error.message} (the windows before it are loaded; the next run starts at ${window.start})`;
  return error;
}

/** Two loads' results as one, for the details of a step that loaded several windows. */
function mergeLoads(a: LoadResult | undefined, b: LoadResult): LoadResult {
  if (!a) return b;
  return {
    ...b,
    rowsLoaded: a.rowsLoaded + b.rowsLoaded,
    rowsQuarantined: a.rowsQuarantined + b.rowsQuarantined,
    rowsInserted: a.rowsInserted + b.rowsInserted,
    rowsUpdated: a.rowsUpdated + b.rowsUpdated,
    columnsAdded: [...new Set([...a.columnsAdded, ...b.columnsAdded])],
    created: a.created || b.created,
  };
}
