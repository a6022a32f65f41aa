/**
 * Load jobs with `sourceUris`: the fake reads the objects from the GCS fake as BigQuery reads
 * Cloud Storage, and turns CSV or NDJSON into the Parquet file its load path takes. What it
 * enforces, as BigQuery does: a bucket or object that is not there fails the job with
 * `notFound` "Not found: URI gs://…", one `*` per URI, CSV columns by position after
 * `skipLeadingRows`, shorter lines only with `allowJaggedRows`, longer lines fail the job.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { FakeError, invalid } from './errors.ts';

/** What the fake needs of the GCS fake: its objects. */
export interface ObjectStore {
  hasBucket(bucket: string): boolean;
  objects(bucket: string): Array<{ name: string; data: Buffer }>;
  /** Why the current caller (the load job's principal) may not read the bucket's objects, or undefined. */
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

const notFoundUri = (uri: string) => new FakeError(404, 'notFound', `Not found: URI ${uri}`);

/** The objects one URI names, in name order; none is an error, as in BigQuery. */
function objectsOf(store: ObjectStore, uri: string): Buffer[] {
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
    .map((o) => o.data);
  if (found.length === 0) throw notFoundUri(uri);
  return found;
}

const quoteSql = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** Writes the rows of every object as one Parquet file of STRING columns named as the schema. */
export async function objectsToParquet(store: ObjectStore, config: ObjectLoadConfig, folder: string, out: string): Promise<number> {
  const uris = Array.isArray(config.sourceUris) ? config.sourceUris.map(String) : [];
  if (uris.length === 0) throw invalid('sourceUris must name at least one object');
  const names = (config.schema?.fields ?? []).map((f) => f.name);
  if (names.length === 0) throw invalid('No schema specified on job or table.');
  const format = String(config.sourceFormat ?? 'CSV').toUpperCase();
  const files: string[] = [];
  let index = 0;
  for (const uri of uris) {
    for (const data of objectsOf(store, uri)) {
      const file = path.join(folder, `object-${index++}`);
      await writeFile(file, data);
      files.push(file);
    }
  }
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const selects: string[] = [];
    for (const file of files) {
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
        selects.push(`SELECT ${columns.join(', ')} FROM ${read}`);
      } else if (format === 'NEWLINE_DELIMITED_JSON') {
        const spec = `{${names.map((n) => `${quoteSql(n)}: 'VARCHAR'`).join(', ')}}`;
        selects.push(
          `SELECT ${names.map((n) => `"${n}"`).join(', ')} FROM read_json(${quoteSql(file)}, format = 'newline_delimited', columns = ${spec})`,
        );
      } else {
        throw invalid(`This fake loads sourceUris as CSV or NEWLINE_DELIMITED_JSON, not ${format}`);
      }
    }
    await connection.run(`COPY (${selects.join(' UNION ALL ')}) TO ${quoteSql(out)} (FORMAT parquet)`);
    const counted = await (await connection.runAndReadAll(`SELECT COUNT(*) AS n FROM read_parquet(${quoteSql(out)})`)).getRowObjects();
    return Number(counted[0]?.['n'] ?? 0);
  } catch (err) {
    if (err instanceof FakeError) throw err;
    throw invalid(`Error while reading data, error message: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  } finally {
    connection.closeSync();
  }
}
