// Quickstart's last look at the analytics model: prints the first rows of a view (or table) of a
// tenant's local warehouse, opened read-only, so nothing the demo built can change.
// Usage: node show-view.mjs <warehouse.duckdb> <tenant>.<view> [rows]
import { DuckDBInstance } from '@duckdb/node-api';

const [file, name, rowsArg = '8'] = process.argv.slice(2);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const [dataset, view] = (name ?? '').split('.');
const rows = Number(rowsArg);
if (!file || !IDENTIFIER.test(dataset ?? '') || !IDENTIFIER.test(view ?? '') || !Number.isInteger(rows) || rows < 1) {
  console.error('usage: node show-view.mjs <warehouse.duckdb> <tenant>.<view> [rows]');
  process.exit(2);
}

/** The file may still be held for a moment by the CLI process that just finished. */
async function openReadOnly() {
  for (let attempt = 1; ; attempt++) {
    try {
      return await DuckDBInstance.create(file, { access_mode: 'READ_ONLY', enable_external_access: 'false' });
    } catch (err) {
      if (attempt >= 20 || !/lock/i.test(String(err))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** DuckDB's own text for its values (dates as YYYY-MM-DD), doubles to two decimals. */
const text = (value) => {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(2);
  return String(value);
};

const instance = await openReadOnly();
const conn = await instance.connect();
try {
  // The names were checked above and are quoted; ORDER BY ALL makes the sample the same every time.
  const reader = await conn.runAndReadAll(`SELECT * FROM "${dataset}"."${view}" ORDER BY ALL LIMIT ${rows}`);
  const columns = reader.columnNames();
  const table = reader.getRows().map((row) => row.map(text));
  const widths = columns.map((c, i) => Math.max(c.length, ...table.map((r) => r[i].length)));
  const line = (cells) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(`${dataset}.${view} (first ${rows} rows)`);
  console.log(line(columns));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of table) console.log(line(r));
} finally {
  conn.closeSync();
  instance.closeSync();
}
