/**
 * BigQuery reading Cloud Storage: load jobs with `sourceUris`, and query jobs whose
 * `tableDefinitions` define temporary external tables over objects. The fake reads the objects from
 * the GCS fake as BigQuery reads Cloud Storage, as the job's caller, and turns each CSV or NDJSON
 * object into a Parquet file of STRING columns. What it enforces, as BigQuery does: a bucket or
 * object that is not there fails the job with `notFound` "Not found: URI gs://…", a caller who may
 * not read the bucket fails it `accessDenied`, one `*` per URI, CSV columns by position after
 * `skipLeadingRows`, shorter lines only with `allowJaggedRows`, longer lines fail the job; an
 * external table definition takes only the fields of ExternalDataConfiguration (CSV settings in
 * `csvOptions`), as the API refuses unknown ones.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { FakeError, invalid } from './errors.ts';

/** What the fake needs of the GCS fake: its objects. */
export interface ObjectStore {
  hasBucket(bucket: string): boolean;
  objects(bucket: string): Array<{ name: string; data: Buffer }>;
  /** Why the current caller (the job's principal) may not read the bucket's objects, or undefined. */
  readDenied(bucket: string): string | undefined;
}

export interface ObjectLoadConfig {
  sourceUris?: unknown;
  sourceFormat?: string;
  schema?: { fields?: Array<{ name: string }> };
  skipLeadingRows?: number | string;
  fieldDelimiter?: string;
  allowJaggedRows?: boolean;
}

/** One object read: its gs:// URI (what `_FILE_NAME` holds), its rows as Parquet, and how many. */
export interface ObjectRows {
  uri: string;
  file: string;
  rows: number;
}

const notFoundUri = (uri: string) => new FakeError(404, 'notFound', `Not found: URI ${uri}`);

/** The objects one URI names, in name order; none is an error, as in BigQuery. */
function objectsOf(store: ObjectStore, uri: string): Array<{ uri: string; data: Buffer }> {
  const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw invalid(`Invalid source URI: ${uri}`);
  const [, bucket, pattern] = match as unknown as [string, string, string];
  if ((pattern.match(/\*/g) ?? []).length > 1) throw invalid(`Only one * wildcard is supported per URI: ${uri}`);
  if (!store.hasBucket(bucket)) throw notFoundUri(uri);
  // BigQuery reads the objects as the job's principal; one it may not read fails the job.
  if (store.readDenied(bucket)) throw new FakeError(403, 'accessDenied', `Access Denied: File ${uri}: Access Denied`);
  const star = pattern.indexOf('*');
  const [before, after] = star < 0 ? [pattern, undefined] : [pattern.slice(0, star), pattern.slice(star + 1)];
  const found = store
    .objects(bucket)
    .filter((o) => (after === undefined ? o.name === before : o.name.startsWith(before) && o.name.endsWith(after)))
    .map((o) => ({ uri: `gs://${bucket}/${o.name}`, data: o.data }));
  if (found.length === 0) throw notFoundUri(uri);
  return found;
}

const quoteSql = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** The SELECT that reads one object file as STRING columns named as the schema. */
async function objectSelect(connection: DuckDBConnection, file: string, format: string, names: string[], config: ObjectLoadConfig) {
  if (format === 'CSV') {
    const skip = Number(config.skipLeadingRows ?? 0);
    const delimiter = config.fieldDelimiter ?? ',';
    const read = `read_csv(${quoteSql(file)}, header = false, skip = ${skip}, delim = ${quoteSql(delimiter)}, quote = '"', escape = '"', all_varchar = true, null_padding = true)`;
    const described = await (await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${read}`)).getRowObjects();
    if (described.length > names.length) {
      throw invalid(
        `Error while reading data, error message: Too many values in row: ${described.length} values, schema has ${names.length}`,
      );
    }
    const columns = names.map((name, i) => {
      const column = described[i]?.['column_name'];
      return column === undefined ? `CAST(NULL AS VARCHAR) AS "${name}"` : `CAST("${String(column)}" AS VARCHAR) AS "${name}"`;
    });
    if (!config.allowJaggedRows && described.length < names.length) {
      throw invalid(
        `Error while reading data, error message: CSV table references column position ${described.length}, but line contains only ${described.length} columns.`,
      );
    }
    return `SELECT ${columns.join(', ')} FROM ${read}`;
  }
  if (format === 'NEWLINE_DELIMITED_JSON') {
    const spec = `{${names.map((n) => `${quoteSql(n)}: 'VARCHAR'`).join(', ')}}`;
    return `SELECT ${names.map((n) => `"${n}"`).join(', ')} FROM read_json(${quoteSql(file)}, format = 'newline_delimited', columns = ${spec})`;
  }
  throw invalid(`This fake reads Cloud Storage objects as CSV or NEWLINE_DELIMITED_JSON, not ${format}`);
}

/** Every object the config's URIs name, in URI then name order, each as a Parquet file in `folder`. */
export async function readObjects(store: ObjectStore, config: ObjectLoadConfig, folder: string): Promise<ObjectRows[]> {
  const uris = Array.isArray(config.sourceUris) ? config.sourceUris.map(String) : [];
  if (uris.length === 0) throw invalid('sourceUris must name at least one object');
  const names = (config.schema?.fields ?? []).map((f) => f.name);
  if (names.length === 0) throw invalid('No schema specified on job or table.');
  const format = String(config.sourceFormat ?? 'CSV').toUpperCase();
  const objects = uris.flatMap((uri) => objectsOf(store, uri));
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const read: ObjectRows[] = [];
    for (const [index, object] of objects.entries()) {
      const source = path.join(folder, `object-${index}`);
      await writeFile(source, object.data);
      const file = `${source}.parquet`;
      await connection.run(`COPY (${await objectSelect(connection, source, format, names, config)}) TO ${quoteSql(file)} (FORMAT parquet)`);
      const counted = await (await connection.runAndReadAll(`SELECT COUNT(*) AS n FROM read_parquet(${quoteSql(file)})`)).getRowObjects();
      read.push({ uri: object.uri, file, rows: Number(counted[0]?.['n'] ?? 0) });
    }
    return read;
  } catch (err) {
    if (err instanceof FakeError) throw err;
    throw invalid(`Error while reading data, error message: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Writes the rows of every object as one Parquet file of STRING columns named as the schema (a load job's input). */
export async function objectsToParquet(store: ObjectStore, config: ObjectLoadConfig, folder: string, out: string): Promise<number> {
  const objects = await readObjects(store, config, folder);
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const files = objects.map((o) => quoteSql(o.file)).join(', ');
    await connection.run(`COPY (SELECT * FROM read_parquet([${files}])) TO ${quoteSql(out)} (FORMAT parquet)`);
    return objects.reduce((sum, o) => sum + o.rows, 0);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

const EXTERNAL_FIELDS = new Set([
  'sourceUris',
  'sourceFormat',
  'schema',
  'autodetect',
  'maxBadRecords',
  'ignoreUnknownValues',
  'compression',
  'csvOptions',
  'jsonOptions',
]);
const CSV_OPTIONS = new Set([
  'fieldDelimiter',
  'skipLeadingRows',
  'allowJaggedRows',
  'allowQuotedNewlines',
  'quote',
  'encoding',
  'nullMarker',
  'preserveAsciiControlCharacters',
]);

const unknownField = (name: string, at: string) =>
  invalid(`Invalid JSON payload received. Unknown name "${name}" at '${at}': Cannot find field.`);

/**
 * A query job's `tableDefinitions` entry (ExternalDataConfiguration) as the object reader takes
 * it. The API refuses a field ExternalDataConfiguration does not have, so a load job's top-level
 * `skipLeadingRows` or `fieldDelimiter` here fails the request instead of being ignored.
 */
export function externalTableConfig(name: string, definition: unknown): ObjectLoadConfig {
  const at = `job.configuration.query.table_definitions[${JSON.stringify(name)}].value`;
  if (!definition || typeof definition !== 'object') throw invalid(`Invalid table definition for ${name}`);
  const given = definition as Record<string, unknown>;
  for (const key of Object.keys(given)) if (!EXTERNAL_FIELDS.has(key)) throw unknownField(key, at);
  const csv = (given['csvOptions'] ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(csv)) if (!CSV_OPTIONS.has(key)) throw unknownField(key, `${at}.csv_options`);
  if (given['sourceFormat'] === undefined) throw invalid(`Source format must be specified for external table ${name}`);
  return {
    sourceUris: given['sourceUris'],
    sourceFormat: String(given['sourceFormat']),
    ...(given['schema'] ? { schema: given['schema'] as ObjectLoadConfig['schema'] } : {}),
    ...(csv['skipLeadingRows'] !== undefined ? { skipLeadingRows: csv['skipLeadingRows'] as string } : {}),
    ...(csv['fieldDelimiter'] !== undefined ? { fieldDelimiter: String(csv['fieldDelimiter']) } : {}),
    ...(csv['allowJaggedRows'] !== undefined ? { allowJaggedRows: csv['allowJaggedRows'] === true } : {}),
  };
}
