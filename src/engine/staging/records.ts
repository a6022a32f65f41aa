import pl from 'nodejs-polars';
import type { Expr } from 'nodejs-polars';
import type { FieldSpec, FieldType } from '../../backends/warehouse/port.ts';
import type { TableSchemaFile } from '../../domain/pipeline.ts';
import type { StagedData, StepProgress } from './staged-data.ts';
import { fieldsFromSchema, matchColumn, uniqueIdentifier } from './fields.ts';
import { TypeVote, valueType } from './infer.ts';
import { typeFrame } from './frame.ts';
import { conformPart, countRows, ensureStagingDir, partPath, sinkPart, summarizeParts } from './parts.ts';
import { cursorFieldOf, cursorFilter } from './typing.ts';
import { rm } from 'node:fs/promises';
import { nestsDeeperThan } from '../../lib/nesting.ts';

/**
 * Stages JSON records (REST pages, NDJSON lines) as Parquet parts with the same typing and
 * quarantine rules as the file source. Records are gathered into parts of `rowsPerPart`, so memory
 * holds one part at a time and a 10,000-page API does not make 10,000 files.
 *
 * Columns: a schema file fixes them (keys it does not name are dropped, with a warning). Without
 * one, the first part's keys and inferred types fix the columns — `fields` pins known types — and
 * a value of a later part that does not fit its column's type is quarantined. A key first seen in
 * a later part becomes a new column, typed from that part, and the earlier parts are rewritten
 * with it as null, so every staged file has every column (the load adds it to the table).
 * Nested objects and arrays are kept as JSON text.
 */
export interface StageRecordsOptions {
  stagingDir: string;
  /** `__source_file` of every row, e.g. the URL without its query string. */
  sourceLabel: string;
  tableSchema?: TableSchemaFile;
  /** Known column types (e.g. the destination's), used before inference. */
  fields?: FieldSpec[];
  /** `after` drops records whose cursor is not greater; cursorMax is reported either way. */
  incremental?: { cursorField: string; after?: string };
  signal?: AbortSignal;
  onProgress?: StepProgress;
  rowsPerPart?: number;
  /** Bytes behind the records (response bodies), when the caller knows them. */
  bytesRead?: () => number;
}

/** Entries of one input batch; `errors` marks entries that could not be parsed (their record is ignored). */
export interface RecordBatch {
  sourceFile: string;
  records: unknown[];
  rows: number[];
  errors?: Map<number, string>;
}

export async function stageRecords(
  batches: AsyncIterable<Array<Record<string, unknown>>>,
  options: StageRecordsOptions,
): Promise<StagedData> {
  let row = 0;
  async function* numbered(): AsyncGenerator<RecordBatch> {
    for await (const records of batches) {
      yield { sourceFile: options.sourceLabel, records, rows: records.map(() => ++row) };
    }
  }
  return stageRecordBatches(numbered(), options);
}

const DEFAULT_ROWS_PER_PART = 50_000;

export async function stageRecordBatches(batches: AsyncIterable<RecordBatch>, options: StageRecordsOptions): Promise<StagedData> {
  await ensureStagingDir(options.stagingDir);
  const stager = new RecordStager(options);
  const limit = options.rowsPerPart ?? DEFAULT_ROWS_PER_PART;
  for await (const batch of batches) {
    options.signal?.throwIfAborted();
    stager.add(batch);
    if (stager.pendingCount >= limit) await stager.flush();
  }
  await stager.flush();
  return stager.finish();
}

interface Part {
  file: string;
  columns: Set<string>;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Levels of arrays and objects a record may nest (the record itself is one). A JSON column's value
 * is validated by polars' JSON reader, which stops at 128 levels, and JSON.stringify recurses: a
 * record past this limit is quarantined as too deep rather than misreported as invalid JSON.
 */
const MAX_NESTING = 100;

/** Why a parsed record cannot be staged, or null when it can. */
function recordProblem(record: unknown): string | null {
  if (nestsDeeperThan(record, MAX_NESTING)) return `record nests arrays and objects more than ${MAX_NESTING} levels deep`;
  if (!isRecord(record)) return `record is not a JSON object: ${JSON.stringify(record)?.slice(0, 80)}`;
  return null;
}

/** Text handed to polars; JSON columns keep the JSON encoding of every value (a string becomes "\"x\""). */
function toText(value: unknown, type: FieldType): string | null {
  if (value === null || value === undefined) return null;
  if (type === 'JSON') return JSON.stringify(value);
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

class RecordStager {
  private readonly options: StageRecordsOptions;
  private readonly schemaFields: FieldSpec[] | undefined;
  private fields: FieldSpec[];
  /** Raw key -> field name; null when the key is dropped. */
  private readonly keyToField = new Map<string, string | null>();
  private readonly fieldToKey = new Map<string, string>();
  private readonly parts: Part[] = [];
  private readonly dropped = new Set<string>();
  private readonly renamed: string[] = [];
  private readonly added: string[] = [];
  private readonly usedNames = new Set<string>();
  private pending: { records: unknown[]; rows: number[]; files: string[]; errors: Array<string | null> } = this.empty();
  /** Set once the cursor field is known to exist (schema: at once; otherwise after the first part). */
  private cursorChecked = false;
  private keep: Expr | undefined;
  private staged = 0;

  constructor(options: StageRecordsOptions) {
    this.options = options;
    this.schemaFields = options.tableSchema ? fieldsFromSchema(options.tableSchema) : undefined;
    this.fields = this.schemaFields ? [...this.schemaFields] : [];
    if (this.schemaFields && options.incremental) this.prepareCursor();
  }

  get pendingCount(): number {
    return this.pending.records.length;
  }

  add(batch: RecordBatch): void {
    const p = this.pending;
    batch.records.forEach((record, i) => {
      p.records.push(record);
      p.rows.push(batch.rows[i]!);
      p.files.push(batch.sourceFile);
      p.errors.push(batch.errors?.get(i) ?? recordProblem(record));
    });
  }

  async flush(): Promise<void> {
    const p = this.pending;
    if (p.records.length === 0) return;
    this.pending = this.empty();
    this.learnKeys(p.records, p.errors);
    if (this.options.incremental && !this.cursorChecked) this.prepareCursor();

    const fields = this.fields;
    const columns = fields.map((field, i) => {
      const key = this.fieldToKey.get(field.name);
      const values = p.records.map((r, j) =>
        key === undefined || p.errors[j] !== null ? null : toText((r as Record<string, unknown>)[key], field.type),
      );
      return pl.Series(`r${i}`, values, pl.Utf8);
    });
    const frame = pl.DataFrame([
      ...columns,
      pl.Series('pre_reason', p.errors, pl.Utf8),
      pl.Series('file', p.files, pl.Utf8),
      pl.Series('row', p.rows, pl.Float64),
    ]);
    const cursorField = this.options.incremental?.cursorField;
    let lazy = typeFrame(frame.lazy(), fields, (f) => ({ expr: pl.col(`r${fields.indexOf(f)}`), dtype: 'text' }), {
      rowReason: pl.col('pre_reason'),
      ...(cursorField ? { cursorField } : {}),
      sourceFile: pl.col('file'),
      sourceRow: pl.col('row'),
    });
    if (this.keep) lazy = lazy.filter(this.keep);

    const file = partPath(this.options.stagingDir, this.parts.length);
    await sinkPart(lazy, file);
    if (this.keep && (await countRows(file)) === 0) {
      await rm(file, { force: true });
    } else {
      this.parts.push({ file, columns: new Set(fields.map((f) => f.name)) });
    }
    this.staged += p.records.length;
    this.options.onProgress?.({ rows: this.staged, ...(this.options.bytesRead ? { bytes: this.options.bytesRead() } : {}) });
  }

  async finish(): Promise<StagedData> {
    if (this.fields.length === 0 && this.options.fields) this.fields = [...this.options.fields];
    for (const part of this.parts) {
      if (part.columns.size < this.fields.length) await conformPart(part.file, this.fields, part.columns);
    }
    const files = this.parts.map((p) => p.file);
    const cursor =
      this.options.incremental && files.length > 0 ? cursorFieldOf(this.fields, this.options.incremental.cursorField) : undefined;
    const summary = await summarizeParts(files, cursor);
    const warnings: string[] = [];
    if (this.dropped.size > 0) warnings.push(`keys not in the schema were not loaded: ${[...this.dropped].join(', ')}`);
    if (this.renamed.length > 0) warnings.push(`keys renamed to column names: ${this.renamed.join(', ')}`);
    if (this.added.length > 0)
      warnings.push(
        `keys first seen after the first ${this.options.rowsPerPart ?? DEFAULT_ROWS_PER_PART} records became columns: ${this.added.join(', ')}`,
      );
    return {
      files,
      fields: this.fields,
      ...summary,
      bytesRead: this.options.bytesRead?.() ?? 0,
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  }

  private empty() {
    return { records: [] as unknown[], rows: [] as number[], files: [] as string[], errors: [] as Array<string | null> };
  }

  private prepareCursor(): void {
    const { cursorField, after } = this.options.incremental!;
    const field = cursorFieldOf(this.fields, cursorField);
    this.cursorChecked = true;
    if (after !== undefined) this.keep = cursorFilter(field, pl.col(cursorField), after);
  }

  /** Maps keys never seen before to columns; without a schema, new keys become new columns. */
  private learnKeys(records: unknown[], errors: Array<string | null>): void {
    const fresh: string[] = [];
    records.forEach((r, j) => {
      if (errors[j] !== null) return;
      for (const key of Object.keys(r as object)) {
        if (!this.keyToField.has(key)) {
          this.keyToField.set(key, null);
          fresh.push(key);
        }
      }
    });
    if (fresh.length === 0) return;
    if (this.schemaFields) {
      for (const key of fresh) {
        const field = this.schemaFields.find((f) => !this.fieldToKey.has(f.name) && matchColumn(f.name, [key]) === key);
        if (field) this.claim(key, field.name);
        else this.dropped.add(key);
      }
      return;
    }
    const firstPart = this.fields.length === 0;
    for (const key of fresh) {
      const name = uniqueIdentifier(key, this.fieldToKey.size, this.usedNames);
      if (name !== key) this.renamed.push(`"${key}" -> ${name}`);
      const known = this.options.fields?.find((f) => f.name === name);
      const vote = new TypeVote();
      if (!known) records.forEach((r, j) => errors[j] === null && vote.add(valueType((r as Record<string, unknown>)[key])));
      this.fields.push(known ? { ...known } : { name, type: vote.result });
      this.claim(key, name);
      if (!firstPart) this.added.push(name);
    }
  }

  private claim(key: string, name: string): void {
    this.keyToField.set(key, name);
    this.fieldToKey.set(name, key);
  }
}
