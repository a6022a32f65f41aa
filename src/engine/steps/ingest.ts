import path from 'node:path';
import { rm } from 'node:fs/promises';
import type { PipelineStep, SourceConfig } from '../../domain/pipeline.ts';
import { parseDuration } from '../../lib/duration.ts';
import { validationError } from '../../lib/errors.ts';
import { CsvNeedsStaging, quarantineTable, type LoadResult } from '../../backends/warehouse/port.ts';
import type { RestSourceConfig } from '../sources/rest/types.ts';
import { NO_SPECIAL_ACCESS, resolveRestAuth } from '../sources/rest/auth/index.ts';
import type { StagedData } from '../staging/staged-data.ts';
import { cursorWrites, ensureStateTable, readCursor } from '../cursor.ts';
import { isGcsPath } from '../sources/file/gcs-path.ts';
import type { ObjectPlan } from '../sources/file/gcs-source.ts';
import { renderJson, renderText, templateNames } from '../template.ts';
import { formatDate } from '../instants.ts';
import { planWindows, replaceWithWindows, windowBounds, type DateWindow } from '../sources/rest/windows.ts';
import { rememberSecret, userinfoSecrets } from '../../lib/redaction.ts';
import type { StepEnv, StepOutcome } from './types.ts';
import type { Storage } from '@google-cloud/storage';

type IngestStep = Extract<PipelineStep, { type: 'ingest' }>;
type RestSource = Extract<SourceConfig, { type: 'rest_api' }>;

/**
 * The cursor a run starts from: the committed one, else the source's `initial`; neither on
 * --full-refresh. Only a committed cursor filters file rows (strictly after it); `initial` is the
 * value `{{ cursor }}` takes before the first run, so a first run of a file source reads everything.
 */
export async function startingCursor(env: StepEnv, step: IngestStep): Promise<{ value: string; committed: boolean } | undefined> {
  const source = env.source(step.source_config);
  if (!source.incremental) return undefined;
  const committed = env.fullRefresh ? undefined : await readCursor(env.warehouse, stateKey(env, step));
  if (committed !== undefined) return { value: committed, committed: true };
  return source.incremental.initial === undefined ? undefined : { value: source.incremental.initial, committed: false };
}

const stateKey = (env: StepEnv, step: IngestStep) => ({ dataset: env.dataset, pipelineId: env.pipelineId, stepName: step.name });

/** The source file of a step as messages name it. */
const sourceFile = (env: StepEnv, step: IngestStep) => `configs/${env.tenantId}/${step.source_config}`;

/** The strings of a JSON body, depth first: each may name secrets. */
function bodyStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(bodyStrings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(bodyStrings);
  return [];
}

/** The request config of a REST source for one set of template variables (a window's, or the run's). */
type RestConfigFor = (variables: Record<string, string>) => RestSourceConfig;

/**
 * The request config of a REST source: url, params, headers and body rendered (variables, filters
 * and `{{ secret() }}`), auth resolved once for every window. Every secret value that goes into a
 * request is listed in `secrets`, so the client redacts it from everything it reports, and
 * remembered process-wide, so the places that record run errors and logs redact it too.
 */
async function restConfig(env: StepEnv, step: IngestStep, source: RestSource, first: Record<string, string>): Promise<RestConfigFor> {
  const file = sourceFile(env, step);
  const secrets = new Map<string, string>();
  const resolve = async (name: string) => {
    const value = secrets.get(name) ?? (await env.secret(name));
    secrets.set(name, value);
    rememberSecret(value);
    return value;
  };
  const texts = [
    source.url,
    ...Object.values(source.params ?? {}).flat(),
    ...Object.values(source.headers ?? {}),
    ...bodyStrings(source.body),
  ];
  for (const text of texts) {
    for (const name of templateNames(text).secrets) await resolve(name);
  }
  // Every secret a template names is resolved above, before any rendering.
  const templateInput = (variables: Record<string, string>) => ({ file, variables, secret: (n: string) => secrets.get(n)! });
  const renderWith = (variables: Record<string, string>) => (text: string) => renderText(text, templateInput(variables));
  const auth = source.auth
    ? await resolveRestAuth(source.auth, {
        secret: resolve,
        url: renderWith(first)(source.url),
        access: env.restSources ?? NO_SPECIAL_ACCESS,
        signal: env.signal,
        onSecret: rememberSecret,
      })
    : undefined;
  for (const value of userinfoSecrets(source.url)) rememberSecret(value);
  return (variables) => {
    const renderOne = renderWith(variables);
    const render = (values: Record<string, string> | undefined) =>
      values ? Object.fromEntries(Object.entries(values).map(([k, v]) => [k, renderOne(v)])) : undefined;
    const renderParams = (values: Record<string, string | string[]> | undefined) =>
      values
        ? Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Array.isArray(v) ? v.map(renderOne) : renderOne(v)]))
        : undefined;
    const params = renderParams(source.params);
    const headers = render(source.headers);
    const body = source.body === undefined ? undefined : renderJson(source.body, templateInput(variables));
    const url = renderOne(source.url);
    // Checked here so that the parser's own error, which carries the URL and so its secrets, never surfaces.
    if (!URL.canParse(url)) throw validationError(`${file}: url is not a valid absolute URL once its templates are rendered`);
    return {
      url,
      method: source.method,
      pagination: source.pagination,
      secrets: [...secrets.values()],
      ...(env.restSources?.privateHosts.length ? { private_hosts: env.restSources.privateHosts } : {}),
      ...(params ? { params } : {}),
      ...(headers ? { headers } : {}),
      ...(body !== undefined ? { body } : {}),
      ...(auth ? { auth } : {}),
      ...(source.records_path ? { records_path: source.records_path } : {}),
      ...(source.include_parent ? { include_parent: source.include_parent } : {}),
      ...(source.records_format !== 'objects' ? { records_format: source.records_format } : {}),
      ...(source.rate_limit ? { rate_limit: source.rate_limit } : {}),
      ...(source.retry ? { retry: { max_attempts: source.retry.max_attempts } } : {}),
      ...(source.timeout ? { timeout_ms: parseDuration(source.timeout, 'timeout') } : {}),
    };
  };
}

/** Where a REST source's rows came from, for messages: origin and path, no query, no userinfo, no secret. */
function restSourceLabel(config: RestSourceConfig, redactor: { redact(text: string): string }): string {
  const url = new URL(config.url);
  return redactor.redact(url.origin + url.pathname);
}

/** A gs:// source's objects and what this run loads of them (see sources/file/gcs-source.ts). */
interface SourceObjects {
  storage: Storage;
  plan: ObjectPlan;
  /** What the step's notes say of the objects, whichever way they are loaded. */
  notes: string[];
}

/**
 * An append loads a rewritten object in full, so its earlier rows are in the table twice. Only a
 * merge can update them: destination tables keep no column saying which object a row came from
 * (users' tables hold their schema's columns only), so the step says so instead of removing rows.
 */
const appendedAgain = (object: { bucket: string; name: string }) =>
  `gs://${object.bucket}/${object.name} was rewritten since it was loaded: its rows were appended again; ` +
  'use write_mode: merge with merge_keys to update rows instead';

/**
 * For a gs:// file source: lists its objects and, for append and merge writes, leaves out those
 * already loaded at their current generation. Undefined for any other source.
 */
async function sourceObjects(env: StepEnv, step: IngestStep): Promise<SourceObjects | undefined> {
  const source = env.source(step.source_config);
  if (source.type !== 'file' || !isGcsPath(source.path)) return undefined;
  const { planObjects } = await import('../sources/file/gcs-source.ts');
  const storage = await env.objectStorage();
  env.progress({ message: `listing ${source.path}` });
  const byObject = !env.fullRefresh && step.destination.write_mode !== 'replace';
  const plan = await planObjects(storage, source, {
    scope: env.fileScope,
    warehouse: env.warehouse,
    key: stateKey(env, step),
    byObject,
    runId: env.runId,
    at: env.now(),
  });
  const appending = byObject && step.destination.write_mode === 'append';
  return { storage, plan, notes: appending ? plan.rewritten.map(appendedAgain) : [] };
}

async function stage(
  env: StepEnv,
  step: IngestStep,
  cursor: { value: string; committed: boolean } | undefined,
  objects: SourceObjects | undefined,
): Promise<StagedData> {
  const source = env.source(step.source_config);
  const tableSchema = env.schema(source.schema ?? step.destination.schema);
  const onProgress = env.progress;
  if (source.type === 'file') {
    const options = {
      stagingDir: env.stagingDir,
      ...(tableSchema ? { tableSchema } : {}),
      ...(source.incremental
        ? { incremental: { cursorField: source.incremental.cursor_field, ...(cursor?.committed ? { after: cursor.value } : {}) } }
        : {}),
      signal: env.signal,
      onProgress,
    };
    if (objects) {
      const { stageObjects } = await import('../sources/file/gcs-source.ts');
      return stageObjects(objects.storage, objects.plan.toLoad, source, options);
    }
    const { stageFileSource } = await import('../sources/file/index.ts');
    return stageFileSource(source, { ...options, scope: env.fileScope });
  }
  const variables = { ...env.variables, cursor: cursor?.value ?? '' };
  const configFor = await restConfig(env, step, source, variables);
  // The API is asked from the cursor on; its answer is kept whole (merge makes a re-read idempotent).
  return stageRest(env, step, configFor(variables), {
    stagingDir: env.stagingDir,
    ...(source.incremental ? { cursorField: source.incremental.cursor_field } : {}),
  });
}

/** How one fetch of a REST source is staged: where, under which progress label, with which cursor column. */
interface RestStaging {
  stagingDir: string;
  /** Prefix of the page progress messages (a window's "window 3/12 2025-03-01..2025-03-31"). */
  label?: string;
  /** The column whose greatest value becomes the cursor (sources without windows). */
  cursorField?: string;
  /** The step's row count for a count of this fetch's staged rows (windows add up). */
  onRows?: (rows: number) => number;
}

/** Fetches every page of one request config and stages its records; errors and warnings leave redacted. */
async function stageRest(env: StepEnv, step: IngestStep, config: RestSourceConfig, staging: RestStaging): Promise<StagedData> {
  const source = env.source(step.source_config);
  const tableSchema = env.schema(source.schema ?? step.destination.schema);
  const [{ fetchPages, sourceRedactor }, { stageRecords }] = await Promise.all([
    import('../sources/rest/client.ts'),
    import('../staging/records.ts'),
  ]);
  const redactor = sourceRedactor(config);
  let pages = 0;
  async function* batches() {
    for await (const page of fetchPages(config, { signal: env.signal })) {
      pages++;
      env.progress({ message: staging.label ? `${staging.label}, page ${pages}` : `page ${pages}` });
      yield page.records as Array<Record<string, unknown>>;
    }
  }
  const onProgress: StepEnv['progress'] = (update) =>
    env.progress(update.rows !== undefined && staging.onRows ? { ...update, rows: staging.onRows(update.rows) } : update);
  const staged = stageRecords(batches(), {
    stagingDir: staging.stagingDir,
    sourceLabel: restSourceLabel(config, redactor),
    ...(tableSchema ? { tableSchema } : {}),
    ...(staging.cursorField ? { incremental: { cursorField: staging.cursorField } } : {}),
    signal: env.signal,
    onProgress,
  });
  // What staging reports (warnings, errors) may quote the API's answer, which may echo the request.
  return staged.then(
    (result) => (result.warnings ? { ...result, warnings: result.warnings.map((w) => redactor.redact(w)) } : result),
    (error: unknown) => {
      throw redactor.redactError(error);
    },
  );
}

/**
 * True when the destination warehouse should read a gs:// source's objects itself (BigQuery reads
 * them from Cloud Storage): it can, the format is text (CSV or NDJSON, typed in SQL) and a schema
 * fixes the columns. An incremental cursor is filtered and found in SQL too. A Parquet source or one without a schema
 * is downloaded and staged instead.
 */
function warehouseReadsObjects(env: StepEnv, step: IngestStep): boolean {
  const source = env.source(step.source_config);
  if (!env.warehouse.loadsObjects || source.type !== 'file' || source.format === 'parquet') return false;
  return env.schema(source.schema ?? step.destination.schema) !== undefined;
}

/**
 * The warehouse loads the objects into the destination, with their loaded-object state and the
 * moved cursor, in one transaction. CSV objects are read by their header names (their layout is
 * read first); objects whose headers differ cannot share one external table, so the step falls back
 * to staging them here, with `fallback` saying why.
 */
async function loadObjectsInWarehouse(
  env: StepEnv,
  step: IngestStep,
  objects: SourceObjects,
  cursor: { value: string; committed: boolean } | undefined,
): Promise<{ outcome: StepOutcome } | { fallback: string }> {
  const source = env.source(step.source_config) as Extract<SourceConfig, { type: 'file' }>;
  const [{ fieldsFromSchema }, { cursorFieldOf, cursorFilter }, { csvObjectLayout }] = await Promise.all([
    import('../staging/fields.ts'),
    import('../staging/typing.ts'),
    import('../sources/file/gcs-csv-columns.ts'),
  ]);
  const fields = fieldsFromSchema(env.schema(source.schema ?? step.destination.schema)!);
  const dest = step.destination;
  const writeMode = fullRefreshMode(env, dest.write_mode);
  const { plan } = objects;
  const csv = { delimiter: source.csv?.delimiter ?? ',', hasHeader: source.csv?.has_header ?? true };
  const notes: string[] = [...objects.notes];
  let columns: Array<string | null> | undefined;
  if (source.format !== 'ndjson' && csv.hasHeader) {
    env.progress({ message: `reading the header of ${plan.toLoad.length} object${plan.toLoad.length === 1 ? '' : 's'}` });
    const layout = await csvObjectLayout(objects.storage, plan.toLoad, fields, csv.delimiter);
    if ('differs' in layout) {
      const why = 'BigQuery reads CSV columns by position, so this run staged the objects through the engine';
      return { fallback: `${layout.differs}: ${why}` };
    }
    ({ columns } = layout);
    notes.push(...layout.notes);
  }
  // The cursor is checked as the staged path checks it: a column of the schema, of an ordered type, and the committed value typed.
  const cursorField = source.incremental ? cursorFieldOf(fields, source.incremental.cursor_field) : undefined;
  const after = cursorField && cursor?.committed ? cursor.value : undefined;
  if (cursorField && after !== undefined) {
    const pl = (await import('nodejs-polars')).default;
    cursorFilter(cursorField, pl.col(cursorField.name), after);
  }
  if (plan.stateWrites.length > 0 || cursorField) await ensureStateTable(env.warehouse, env.dataset);
  // Every object to load named by its URI: a rerun must not pick up objects written since listing.
  const uris = plan.toLoad.map((o) => `gs://${o.bucket}/${o.name}`);
  env.progress({ message: `loading ${uris.length} object${uris.length === 1 ? '' : 's'} into ${dest.table} (${writeMode})` });
  const result = await env.warehouse.load({
    dataset: env.dataset,
    table: dest.table,
    source: {
      kind: 'objects',
      uris,
      format: source.format === 'ndjson' ? 'ndjson' : 'csv',
      csv: { ...csv, ...(columns ? { columns } : {}) },
      fields,
      ...(cursorField
        ? {
            cursor: {
              field: cursorField.name,
              ...(after !== undefined ? { after } : {}),
              commit: (value: string) =>
                cursorWrites(stateKey(env, step), { field: cursorField.name, value, runId: env.runId, at: env.now() }),
            },
          }
        : {}),
    },
    writeMode,
    ...destinationOptions(dest),
    runId: env.runId,
    alsoWrite: plan.stateWrites,
  });
  env.progress({ rows: result.rowsLoaded });
  notes.push(...loadNotes(env, dest.table, result));
  return {
    outcome: {
      rowsIn: result.rowsLoaded + result.rowsQuarantined,
      rowsOut: result.rowsLoaded,
      bytes: plan.toLoad.reduce((sum, o) => sum + o.size, 0),
      details: {
        ...loadDetails(dest.table, writeMode, source.type, result),
        objects: plan.toLoad.length,
        loadedBy: 'warehouse',
        cursorFrom: cursor?.value ?? null,
        cursorTo: result.cursorMax ?? cursor?.value ?? null,
      },
      notes,
    },
  };
}

/**
 * Local CSV on a warehouse that reads CSV itself (sources/file/csv-in-warehouse.ts): one load
 * transaction, no staging. No outcome when it does not apply or a file needs staging; `declined`
 * then says why, for the step's details.
 */
async function loadCsvInWarehouse(
  env: StepEnv,
  step: IngestStep,
  writeMode: 'append' | 'replace' | 'merge',
): Promise<{ outcome?: StepOutcome; declined?: string }> {
  const source = env.source(step.source_config);
  const types = env.warehouse.csvFileTypes;
  if (!types || source.type !== 'file' || source.format !== 'csv' || isGcsPath(source.path)) return {};
  // An incremental source filters and moves its cursor on staged rows; a merge keeps the last row of a key by line.
  if (source.incremental || writeMode === 'merge') return {};
  const [{ planCsvInWarehouse }, { emptyFileNote }] = await Promise.all([
    import('../sources/file/csv-in-warehouse.ts'),
    import('../sources/file/index.ts'),
  ]);
  const tableSchema = env.schema(source.schema ?? step.destination.schema);
  const plan = await planCsvInWarehouse(source, {
    scope: env.fileScope,
    types,
    signal: env.signal,
    ...(tableSchema ? { tableSchema } : {}),
  });
  if ('skip' in plan) return { declined: plan.skip };
  if (plan.source.fields.length === 0) return {};
  const dest = step.destination;
  const count = plan.source.files.length;
  env.progress({ message: `loading ${count} file${count === 1 ? '' : 's'} into ${dest.table} (${writeMode})` });
  let result: LoadResult;
  try {
    result = await env.warehouse.load({
      dataset: env.dataset,
      table: dest.table,
      source: plan.source,
      writeMode,
      ...destinationOptions(dest),
      runId: env.runId,
    });
  } catch (err) {
    if (err instanceof CsvNeedsStaging) return { declined: err.why };
    throw err;
  }
  env.progress({ rows: result.rowsLoaded, bytes: plan.bytes });
  const empty = emptyFileNote(plan.files);
  const notes = [...plan.notes, ...(empty ? [empty] : [])];
  return {
    outcome: {
      rowsIn: result.rowsLoaded,
      rowsOut: result.rowsLoaded,
      bytes: plan.bytes,
      details: { ...loadDetails(dest.table, writeMode, source.type, result), loadedBy: 'warehouse', cursorFrom: null, cursorTo: null },
      notes: [...notes, ...loadNotes(env, dest.table, result)],
    },
  };
}

/** Stages the source, then lands it in one transaction together with the moved cursor. */
export async function runIngest(env: StepEnv, step: IngestStep): Promise<StepOutcome> {
  const source = env.source(step.source_config);
  const cursor = await startingCursor(env, step);
  if (source.type === 'rest_api' && source.windows) return runWindows(env, step, { ...source, windows: source.windows }, cursor);
  const dest = step.destination;
  const objects = await sourceObjects(env, step);
  if (objects && objects.plan.toLoad.length === 0) {
    return {
      rowsIn: 0,
      rowsOut: 0,
      bytes: 0,
      details: { table: dest.table, source: source.type, objects: 0, cursorFrom: cursor?.value ?? null, cursorTo: cursor?.value ?? null },
      notes: [`no new or changed objects in ${source.type === 'file' ? source.path : ''} (${objects.plan.matched.length} already loaded)`],
    };
  }
  const inWarehouse = objects && warehouseReadsObjects(env, step) ? await loadObjectsInWarehouse(env, step, objects, cursor) : undefined;
  if (inWarehouse && 'outcome' in inWarehouse) return inWarehouse.outcome;
  const csv = objects ? {} : await loadCsvInWarehouse(env, step, fullRefreshMode(env, dest.write_mode));
  if (csv.outcome) return csv.outcome;
  const staged = await stage(env, step, cursor, objects);
  env.signal.throwIfAborted();
  // Nothing read and no column known (an empty file without a schema): nothing to load or create.
  if (staged.fields.length === 0 && staged.rows === 0) {
    return {
      rowsIn: 0,
      rowsOut: 0,
      bytes: staged.bytesRead,
      details: { table: dest.table, source: source.type, cursorFrom: cursor?.value ?? null, cursorTo: cursor?.value ?? null },
      notes: [...(staged.warnings ?? []), `nothing to load into ${dest.table}: the source had no rows and no columns`],
    };
  }
  const writeMode = fullRefreshMode(env, dest.write_mode);
  const moveCursor = source.incremental && staged.cursorMax !== undefined;
  const objectWrites = objects?.plan.stateWrites ?? [];
  if (moveCursor || objectWrites.length > 0) await ensureStateTable(env.warehouse, env.dataset);
  env.progress({ message: `loading ${staged.rows - staged.rejected} rows into ${dest.table} (${writeMode})` });
  const result = await env.warehouse.load({
    dataset: env.dataset,
    table: dest.table,
    source: { kind: 'parquet', files: staged.files, fields: staged.fields },
    writeMode,
    ...destinationOptions(dest),
    runId: env.runId,
    alsoWrite: [
      ...(moveCursor
        ? cursorWrites(stateKey(env, step), {
            field: source.incremental!.cursor_field,
            value: staged.cursorMax!,
            runId: env.runId,
            at: env.now(),
          })
        : []),
      ...objectWrites,
    ],
  });
  env.progress({ rows: result.rowsLoaded });
  const notes = [
    ...(inWarehouse ? [inWarehouse.fallback] : []),
    ...(objects?.notes ?? []),
    ...(staged.warnings ?? []),
    ...loadNotes(env, dest.table, result),
  ];
  return {
    rowsIn: staged.rows,
    rowsOut: result.rowsLoaded,
    bytes: staged.bytesRead,
    details: {
      ...loadDetails(dest.table, writeMode, source.type, result),
      ...(objects ? { objects: objects.plan.toLoad.length } : {}),
      ...(csv.declined ? { stagedBecause: csv.declined } : {}),
      cursorFrom: cursor?.value ?? null,
      cursorTo: moveCursor ? staged.cursorMax : (cursor?.value ?? null),
    },
    notes,
  };
}

type WindowedSource = RestSource & { windows: NonNullable<RestSource['windows']> };

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
async function runWindows(
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
  for (const [k, window] of windows.entries()) {
    env.signal.throwIfAborted();
    const label = `window ${k + 1}/${windows.length} ${window.start}..${window.end}`;
    env.progress({ message: label });
    const stagingDir = path.join(env.stagingDir, `window-${k + 1}`);
    const before = totals.rowsIn;
    const staged = await stageRest(env, step, configFor(variablesOf(window, committed)), {
      stagingDir,
      label,
      onRows: (rows) => before + rows,
    }).catch((error: unknown) => {
      throw windowFailure(error, label, window, env.signal);
    });
    env.signal.throwIfAborted();
    const commit = cursorWrites(stateKey(env, step), {
      field: source.incremental!.cursor_field,
      value: window.end,
      runId: env.runId,
      at: env.now(),
    });
    let loaded = 0;
    // An empty answer without a schema has no columns to load: the window is done all the same.
    if (staged.fields.length === 0 && staged.rows === 0) await env.warehouse.atomic(commit);
    else {
      env.progress({ message: `${label}: loading ${staged.rows - staged.rejected} rows into ${dest.table} (${writeMode})` });
      const result = await env.warehouse.load({
        dataset: env.dataset,
        table: dest.table,
        source: { kind: 'parquet', files: staged.files, fields: staged.fields },
        writeMode,
        ...destinationOptions(dest),
        runId: env.runId,
        alsoWrite: commit,
      });
      landed = mergeLoads(landed, result);
      loaded = result.rowsLoaded;
      writeMode = dest.write_mode === 'merge' ? 'merge' : 'append';
    }
    for (const warning of staged.warnings ?? []) notes.add(warning);
    committed = window.end;
    totals.rowsIn += staged.rows;
    totals.rowsOut += loaded;
    totals.bytes += staged.bytesRead;
    done.push({ start: window.start, end: window.end, rows: staged.rows });
    env.progress({ rows: totals.rowsOut });
    // The window is committed: its staged files are no longer needed, and a long backfill would pile them up.
    await rm(stagingDir, { recursive: true, force: true });
  }
  return {
    ...totals,
    details: {
      ...(landed ? loadDetails(dest.table, fullRefreshMode(env, dest.write_mode), source.type, landed) : details),
      cursorFrom: cursor?.value ?? null,
      cursorTo: committed ?? null,
      windows: done,
    },
    notes: [...notes, ...(landed ? loadNotes(env, dest.table, landed) : [])],
  };
}

/**
 * A window's fetch failed: its error says which window and that the next run resumes there. An
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

/** A full refresh of an append-only table would duplicate what is there: it replaces instead. */
function fullRefreshMode(env: StepEnv, mode: IngestStep['destination']['write_mode']) {
  return env.fullRefresh && mode === 'append' ? 'replace' : mode;
}

/** How the step's destination asks to be laid out and merged, as the warehouse's load takes it. */
function destinationOptions(dest: IngestStep['destination']) {
  return {
    ...(dest.merge_keys ? { mergeKeys: dest.merge_keys } : {}),
    ...(dest.partition_by ? { partitionBy: dest.partition_by } : {}),
    ...(dest.cluster_by ? { clusterBy: dest.cluster_by } : {}),
  };
}

/** What a load did, for the step log, however the rows got there. */
function loadDetails(table: string, writeMode: string, source: string, result: LoadResult) {
  return {
    table,
    writeMode,
    source,
    quarantined: result.rowsQuarantined,
    inserted: result.rowsInserted,
    updated: result.rowsUpdated,
    columnsAdded: result.columnsAdded,
    created: result.created,
  };
}

/** The notes a load leaves: rows quarantined, columns added. */
function loadNotes(env: StepEnv, table: string, result: LoadResult): string[] {
  const notes: string[] = [];
  if (result.rowsQuarantined > 0)
    notes.push(`${result.rowsQuarantined} rows could not be typed: see ${env.dataset}.${quarantineTable(table)}`);
  if (result.columnsAdded.length > 0) notes.push(`added columns to ${table}: ${result.columnsAdded.join(', ')}`);
  return notes;
}
