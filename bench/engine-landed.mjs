// What an engine-benchmark contender landed, counted in its DuckDB file after the run, and the
// account the bench prints of it. Clean input must land every row, whoever loads it. With bad
// rows, the product must land exactly the good rows in the table and every bad row in
// <table>__quarantine, or the bench fails; the bare tools are only described (and compared with
// what they are expected to do), since dropping or nulling bad values is what they do.
import { DuckDBInstance } from '@duckdb/node-api';
import { COLUMNS } from './csv-input.mjs';

const n = (count) => count.toLocaleString('en-US');

/** Rows in the contender's table, those holding a null, and rows in its quarantine table (0 when there is none). */
export async function countLanded(database, contender) {
  const instance = await DuckDBInstance.create(database);
  const conn = await instance.connect();
  const count = async (sql, ...params) => Number((await conn.runAndReadAll(sql, params)).getRows()[0][0]);
  try {
    const table = contender.dataset ? `${contender.dataset}.${contender.table}` : contender.table;
    const anyNull = COLUMNS.map(([name]) => `${name} IS NULL`).join(' OR ');
    const rows = await count(`SELECT count(*) FROM ${table}`);
    const rowsWithNull = await count(`SELECT count(*) FROM ${table} WHERE ${anyNull}`);
    let quarantined = 0;
    if (contender.dataset) {
      const quarantine = `${contender.table}__quarantine`;
      const exists = await count(
        'SELECT count(*) FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2',
        contender.dataset,
        quarantine,
      );
      if (exists) quarantined = await count(`SELECT count(*) FROM ${contender.dataset}.${quarantine}`);
    }
    return { rows, rowsWithNull, quarantined };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** Clean input: every row, none null, none quarantined — from every contender. */
function cleanAccount(contender, landed, input) {
  if (landed.rows !== input.rows || landed.rowsWithNull !== 0 || landed.quarantined !== 0) {
    throw new Error(
      `${contender.name} landed ${n(landed.rows)} rows (${n(landed.rowsWithNull)} with a null, ${n(landed.quarantined)} quarantined) ` +
        `from clean input; expected exactly ${n(input.rows)} rows, none null or quarantined`,
    );
  }
  return `${n(landed.rows)} rows`;
}

/** DuckDB alone skips each bad line into reject_errors (see engine-contenders.mjs): expected, the good rows and every bad line. */
export function duckdbAccount(contender, landed, input, counts) {
  if (!input.badRows) return cleanAccount(contender, landed, input);
  const said = `${n(landed.rows)} rows, ${n(counts.rejectedLines)} lines rejected into reject_errors`;
  const expected = landed.rows === input.good && counts.rejectedLines === input.badRows && landed.rowsWithNull === 0;
  return expected
    ? `${said}: the bad lines skipped, as expected`
    : `${said}, ${n(landed.rowsWithNull)} rows with a null (expected ${n(input.good)} rows, ${n(input.badRows)} rejected)`;
}

/**
 * polars (ignoreErrors, truncateRaggedLines) keeps every line: an extra field is cut (that row
 * lands whole), a missing field or a value of the wrong type becomes null. Expected: every row,
 * the bad ones other than extra-field lines with a null.
 */
export function polarsAccount(contender, landed, input) {
  if (!input.badRows) return cleanAccount(contender, landed, input);
  const nulled = input.badRows - input.bad.extraField;
  const said = `${n(landed.rows)} rows, ${n(landed.rowsWithNull)} of them with a null, no row flagged as bad`;
  return landed.rows === input.rows && landed.rowsWithNull === nulled
    ? `${said}: bad values and missing fields nulled, extra fields cut, as expected`
    : `${said} (expected ${n(input.rows)} rows, ${n(nulled)} with a null)`;
}

/** The product: exactly the good rows in the table, exactly the bad ones in <table>__quarantine, or the bench fails. */
export function productAccount(contender, landed, input, counts) {
  if (!input.badRows) return cleanAccount(contender, landed, input);
  const reported = counts.quarantined ?? landed.quarantined;
  const exact = landed.rows === input.good && landed.rowsWithNull === 0 && landed.quarantined === input.badRows;
  if (!exact || reported !== landed.quarantined) {
    throw new Error(
      `${contender.name} landed ${n(landed.rows)} rows (${n(landed.rowsWithNull)} with a null) and ${n(landed.quarantined)} in ${contender.table}__quarantine` +
        `${reported !== landed.quarantined ? ` (it reported ${n(reported)} quarantined)` : ''}; ` +
        `expected exactly the ${n(input.good)} good rows, whole, in the table and the ${n(input.badRows)} bad ones in quarantine`,
    );
  }
  return `${n(landed.rows)} rows, ${n(landed.quarantined)} in ${contender.table}__quarantine: exactly the good and the bad rows`;
}
