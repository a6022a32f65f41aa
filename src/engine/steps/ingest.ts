import type { SourceConfig } from '../../domain/pipeline.ts';
import { CsvNeedsStaging, type LoadResult } from '../../backends/warehouse/port.ts';
import type { StagedData } from '../staging/staged-data.ts';
import { cursorWrites, ensureStateTable, readCursor } from '../cursor.ts';
import { isGcsPath } from '../sources/file/gcs-path.ts';
import type { ObjectPlan } from '../sources/file/gcs-source.ts';
import { destinationOptions, fullRefreshMode, loadDetails, loadNotes, stateKey, type IngestStep } from './ingest-load.ts';
import { restConfig, stageRest } from './rest-request.ts';
import { runWindows } from './rest-windows.ts';
import type { StepEnv, StepOutcome } from './types.ts';
import type { Storage } from '@google-cloud/storage';

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
