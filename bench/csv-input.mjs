// The engine benchmark's input: usage-event CSV files of one row shape, clean or with a known
// share of bad rows, written fast (64k-row strings) into a folder the caller deletes.
import { createWriteStream } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';

// name, BigQuery type (schema file), DuckDB type, polars type
export const COLUMNS = [
  ['id', 'INT64', 'BIGINT', 'Int64'],
  ['usage_date', 'DATE', 'DATE', 'Date'],
  ['provider', 'STRING', 'VARCHAR', 'Utf8'],
  ['model', 'STRING', 'VARCHAR', 'Utf8'],
  ['user_email', 'STRING', 'VARCHAR', 'Utf8'],
  ['input_tokens', 'INT64', 'BIGINT', 'Int64'],
  ['output_tokens', 'INT64', 'BIGINT', 'Int64'],
  ['cost_usd', 'FLOAT64', 'DOUBLE', 'Float64'],
];

const DAYS = Array.from({ length: 365 }, (_, d) => new Date(Date.UTC(2025, 0, 1 + d)).toISOString().slice(0, 10));
const PROVIDERS = ['anthropic', 'openai', 'cursor'];
const MODELS = ['claude-sonnet-4', 'claude-haiku-4', 'gpt-4.1', 'gpt-4.1-mini', 'cursor-small'];

/** Row i as a record (the NDJSON, Parquet and REST inputs of bench/sources.mjs). */
export function usageRecord(i) {
  const input = (i * 7919) % 100_000;
  const output = (i * 104_729) % 20_000;
  return {
    id: i + 1,
    usage_date: DAYS[i % 365],
    provider: PROVIDERS[i % 3],
    model: MODELS[i % 5],
    user_email: `user${i % 5000}@example.com`,
    input_tokens: input,
    output_tokens: output,
    cost_usd: (input * 3 + output * 15) / 1e6,
  };
}

/** Row i as a CSV line: the same values as usageRecord, written directly (it runs 10 M times). */
function row(i) {
  const input = (i * 7919) % 100_000;
  const output = (i * 104_729) % 20_000;
  const cost = (input * 3 + output * 15) / 1e6;
  return `${i + 1},${DAYS[i % 365]},${PROVIDERS[i % 3]},${MODELS[i % 5]},user${i % 5000}@example.com,${input},${output},${cost}\n`;
}

// The bad variant: one row in BAD_EVERY is bad (0.1 %), at the same offset in every block of
// BAD_EVERY rows, so every file holds its share. The kinds take turns block by block: half ragged
// lines, half values their column's type cannot hold.
export const BAD_EVERY = 1000;
const BAD_OFFSET = 617;
const BAD_KINDS = {
  // A ninth field, as an unquoted comma in a value would make.
  extraField: (line) => `${line},unexpected`,
  // The last field (cost_usd) missing.
  missingField: (line) => line.slice(0, line.lastIndexOf(',')),
  // input_tokens (INT64) says n/a.
  intNotANumber: (line) => line.split(',').with(5, 'n/a').join(','),
  // usage_date (DATE) is no date: month 13, day 45.
  dateOutOfRange: (line) => line.split(',').with(1, '2025-13-45').join(','),
};
const KIND_NAMES = Object.keys(BAD_KINDS);

const badKind = (i) => (i % BAD_EVERY === BAD_OFFSET ? KIND_NAMES[Math.floor(i / BAD_EVERY) % KIND_NAMES.length] : undefined);

/** How many rows of [0, rows) are bad, by kind: the generator's own ledger, which the bench checks counts against. */
function badRowCounts(rows) {
  const counts = Object.fromEntries(KIND_NAMES.map((k) => [k, 0]));
  for (let i = BAD_OFFSET; i < rows; i += BAD_EVERY) counts[badKind(i)]++;
  return counts;
}

// Rows per string written: ~330 KB, few writes yet short-lived strings. A 64k-row string (5 MB,
// 64k pieces) outlives the young generation and made generation about 6 times slower.
const ROWS_PER_WRITE = 4096;

/** Rows [from, to) as one CSV file, built in strings of ROWS_PER_WRITE rows; returns its size in bytes. */
async function writeCsv(file, from, to, withBadRows) {
  const out = createWriteStream(file);
  out.write(`${COLUMNS.map((c) => c[0]).join(',')}\n`);
  for (let start = from; start < to; start += ROWS_PER_WRITE) {
    let text = '';
    const end = Math.min(start + ROWS_PER_WRITE, to);
    for (let i = start; i < end; i++) {
      const kind = withBadRows ? badKind(i) : undefined;
      text += kind ? `${BAD_KINDS[kind](row(i).slice(0, -1))}\n` : row(i);
    }
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return out.bytesWritten;
}

/**
 * Writes `rows` rows over `files` CSV files in `dir`. `bad` counts the bad rows by kind (all zero
 * for clean input); `good` rows are the rest; `bytes` is the size of all files.
 */
export async function writeInput(dir, { rows, files, withBadRows }) {
  const csvFiles = [];
  let bytes = 0;
  for (let f = 0; f < files; f++) {
    const file = path.join(dir, `events_${f}.csv`);
    bytes += await writeCsv(file, Math.floor((rows * f) / files), Math.floor((rows * (f + 1)) / files), withBadRows);
    csvFiles.push(file);
  }
  const bad = withBadRows ? badRowCounts(rows) : Object.fromEntries(KIND_NAMES.map((k) => [k, 0]));
  const badRows = Object.values(bad).reduce((a, b) => a + b, 0);
  return { rows, good: rows - badRows, badRows, bad, bytes, csvFiles, csvGlob: path.join(dir, 'events_*.csv') };
}

/** Digits of the ids 1..rows, written in full: the one part of a row whose length grows with the row count. */
function idDigits(rows) {
  let digits = 0;
  for (let width = 1, from = 1; from <= rows; width++, from *= 10) digits += width * (Math.min(rows, from * 10 - 1) - from + 1);
  return digits;
}

/** Rows that make at least `bytes` of clean CSV: ids counted exactly, the rest of a row by its mean over a spread sample, less 1 % to stay above the size. */
export function rowsForBytes(bytes) {
  const sample = 100_000;
  let rest = 0;
  for (let s = 0; s < sample; s++) {
    const i = s * 997;
    rest += Buffer.byteLength(row(i)) - String(i + 1).length;
  }
  const meanRest = (rest / sample) * 0.99;
  let rows = Math.ceil(bytes / meanRest);
  while (rows * meanRest + idDigits(rows) > bytes) rows = Math.ceil(rows * 0.999);
  while (rows * meanRest + idDigits(rows) < bytes) rows = Math.ceil(rows * 1.0001) + 1;
  return rows;
}

/** Why the folder's file system cannot take `bytes` of input (it needs twice that: the input plus the contenders' output), or undefined. */
export async function freeSpaceShortfall(dir, bytes) {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free >= 2 * bytes) return undefined;
  const gb = (n) => (n / 2 ** 30).toFixed(1);
  return (
    `not enough free disk for the input: ${gb(bytes)} GiB of CSV needs ${gb(2 * bytes)} GiB free in ${dir}, ` +
    `which has ${gb(free)} GiB; free some space, pick a smaller --gb, or point TMPDIR at a larger disk`
  );
}
