/**
 * Where records sit in a response: nested arrays flattened by `[*]` with parent columns
 * (Anthropic's usage report: `data[].results[]`), and 2-D arrays whose first row is the header
 * (the Google Sheets values API).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { fetchPages } from './loopback.ts';
import { RecordsPathError, RowsWithHeaderError } from '../../../src/engine/sources/rest/errors.ts';
import { HeaderRows } from '../../../src/engine/sources/rest/header-rows.ts';
import { pageRecordsReader } from '../../../src/engine/sources/rest/page-records.ts';
import { locateRecords, recordAt, recordsOf, withParentColumns } from '../../../src/engine/sources/rest/records.ts';
import type { RestSourceConfig } from '../../../src/engine/sources/rest/types.ts';
import { stageRecords } from '../../../src/engine/staging/records.ts';
import { startFakeApi, type Handler } from '../../fakes/http-api.ts';
import { cleanupAll, makeTempDir } from '../../helpers/tmp.ts';
import { collect } from './pages-and-clock.ts';

const URL_SHOWN = 'http://api.test/v1/r';

after(cleanupAll);

async function served(handler: Handler, config: (base: string) => RestSourceConfig) {
  const api = await startFakeApi(handler);
  try {
    const pages = await collect(fetchPages(config(api.base), { sleep: async () => {} }));
    return { records: pages.flatMap((p) => p.records), requests: api.requests };
  } finally {
    await api.close();
  }
}

async function servedError(handler: Handler, config: (base: string) => RestSourceConfig): Promise<Error> {
  return served(handler, config).then(
    () => assert.fail('expected an error'),
    (error: unknown) => error as Error,
  );
}

/** An Anthropic usage report bucket: its rows in `results`, its time span beside them. */
const bucket = (day: string, results: unknown[]) => ({
  starting_at: `2025-01-${day}T00:00:00Z`,
  ending_at: `2025-01-${day}T23:59:59Z`,
  results,
});

describe('records_path with [*]', () => {
  const body = {
    data: [
      bucket('01', [
        { model: 'claude-a', uncached_input_tokens: 10 },
        { model: 'claude-b', uncached_input_tokens: 20 },
      ]),
      bucket('02', []),
      bucket('03', [{ model: 'claude-a', uncached_input_tokens: 30 }]),
    ],
    has_more: false,
    next_page: null,
  };

  it('flattens each element of each inner array, in order', () => {
    const groups = locateRecords(body, 'data[*].results[*]', URL_SHOWN);
    assert.deepEqual(recordsOf(groups), [
      { model: 'claude-a', uncached_input_tokens: 10 },
      { model: 'claude-b', uncached_input_tokens: 20 },
      { model: 'claude-a', uncached_input_tokens: 30 },
    ]);
    assert.deepEqual(
      groups.flatMap((g) => g.records.map((_, i) => recordAt(g, i))),
      ['data[0].results[0]', 'data[0].results[1]', 'data[2].results[0]'],
    );
    assert.equal(groups[2]?.parent, body.data[2]);
    // The records arrays are the response's own: nothing is copied before it is needed.
    assert.equal(groups[0]?.records, body.data[0]?.results);
  });

  it('reads a trailing [*] and a plain last key alike, and plain paths as before', () => {
    const plain = recordsOf(locateRecords(body, 'data[*].results', URL_SHOWN));
    assert.deepEqual(plain, recordsOf(locateRecords(body, 'data[*].results[*]', URL_SHOWN)));
    assert.deepEqual(recordsOf(locateRecords({ data: [1, 2] }, 'data[*]', URL_SHOWN)), [1, 2]);
  });

  it('takes an absent or null inner array as empty for that element only (as JSONPath does)', () => {
    const sparse = { data: [{ results: [{ a: 1 }] }, { other: true }, { results: null }, { nested: {} }] };
    assert.deepEqual(recordsOf(locateRecords(sparse, 'data[*].results[*]', URL_SHOWN)), [{ a: 1 }]);
    assert.deepEqual(recordsOf(locateRecords({ data: [{ nested: {} }, {}] }, 'data[*].nested.items[*]', URL_SHOWN)), []);
  });

  it('errors when the outer array is missing, naming the path and the URL', () => {
    assert.throws(
      () => locateRecords({ error: 'x' }, 'data[*].results[*]', URL_SHOWN),
      (e: unknown) =>
        e instanceof RecordsPathError &&
        /"data\[\*\]\.results\[\*\]" was not found \(no data\)/.test(e.message) &&
        e.message.includes(URL_SHOWN),
    );
  });

  it('errors when a level is not an array, saying where', () => {
    assert.throws(
      () => locateRecords({ data: [{ results: [] }, { results: { a: 1 } }] }, 'data[*].results[*]', URL_SHOWN),
      (e: unknown) => e instanceof RecordsPathError && /is not an array at data\[1\]\.results \(got object\)/.test(e.message),
    );
    assert.throws(
      () => locateRecords({ data: 'x' }, 'data[*].results[*]', URL_SHOWN),
      (e: unknown) => e instanceof RecordsPathError && /is not an array at data \(got string\)/.test(e.message),
    );
  });
});

describe('include_parent', () => {
  const path = 'data[*].results[*]';
  const body = { data: [bucket('01', [{ model: 'a' }, { model: 'b' }]), bucket('02', [{ model: 'c' }])] };

  it('copies the dotted path of the immediate parent element into each record', () => {
    const records = withParentColumns(
      locateRecords(body, path, URL_SHOWN),
      { bucket_start: 'starting_at', bucket_end: 'ending_at' },
      path,
      URL_SHOWN,
    );
    assert.deepEqual(records, [
      { model: 'a', bucket_start: '2025-01-01T00:00:00Z', bucket_end: '2025-01-01T23:59:59Z' },
      { model: 'b', bucket_start: '2025-01-01T00:00:00Z', bucket_end: '2025-01-01T23:59:59Z' },
      { model: 'c', bucket_start: '2025-01-02T00:00:00Z', bucket_end: '2025-01-02T23:59:59Z' },
    ]);
    // The response is not changed: the next page's paginator and any retry read it as it came.
    assert.deepEqual(body.data[0]?.results[0], { model: 'a' });
  });

  it('takes the innermost [*] element as the parent, and null for a field it lacks', () => {
    const deep = {
      orgs: [
        {
          id: 'o1',
          days: [
            { day: 'd1', meta: { tz: 'UTC' }, rows: [{ n: 1 }] },
            { day: 'd2', rows: [{ n: 2 }] },
          ],
        },
      ],
    };
    const p = 'orgs[*].days[*].rows[*]';
    assert.deepEqual(withParentColumns(locateRecords(deep, p, URL_SHOWN), { day: 'day', tz: 'meta.tz' }, p, URL_SHOWN), [
      { n: 1, day: 'd1', tz: 'UTC' },
      { n: 2, day: 'd2', tz: null },
    ]);
  });

  it('refuses to overwrite a key the record already has', () => {
    const clash = { data: [bucket('01', [{ model: 'a', starting_at: 'own value' }])] };
    assert.throws(
      () => withParentColumns(locateRecords(clash, path, URL_SHOWN), { starting_at: 'starting_at' }, path, URL_SHOWN),
      (e: unknown) =>
        e instanceof RecordsPathError &&
        /at data\[0\]\.results\[0\] that already has a key "starting_at"/.test(e.message) &&
        /name the column differently/.test(e.message),
    );
  });

  it('refuses records that are not objects, naming the path', () => {
    const scalars = { data: [{ starting_at: 't', results: [1] }] };
    assert.throws(
      () => withParentColumns(locateRecords(scalars, path, URL_SHOWN), { bucket_start: 'starting_at' }, path, URL_SHOWN),
      (e: unknown) => e instanceof RecordsPathError && e.message.includes(`"${path}" yields a number at data[0].results[0], not an object`),
    );
  });

  it('adds a column named __proto__ as a plain key, never as the prototype', () => {
    const records = withParentColumns(locateRecords(body, path, URL_SHOWN), { ['__proto__']: 'starting_at' }, path, URL_SHOWN);
    const first = records[0]!;
    assert.ok(Object.hasOwn(first, '__proto__'));
    assert.equal(Object.getPrototypeOf(first), Object.prototype);
  });

  it('loads every row of every bucket across next_page pages of an Anthropic-shaped report', async () => {
    const pages: Record<string, unknown> = {
      '': { data: [bucket('01', [{ model: 'a', uncached_input_tokens: 1 }]), bucket('02', [])], has_more: true, next_page: 'page_Mg==' },
      'page_Mg==': {
        data: [
          bucket('03', [
            { model: 'a', uncached_input_tokens: 3 },
            { model: 'b', uncached_input_tokens: 4 },
          ]),
        ],
        has_more: false,
        next_page: null,
      },
    };
    const { records, requests } = await served(
      (req) => ({ body: pages[req.url.searchParams.get('page') ?? ''] }),
      (base) => ({
        url: `${base}/v1/organizations/usage_report/messages`,
        params: { 'group_by[]': ['model'], starting_at: '2025-01-01T00:00:00Z', ending_at: '2025-01-04T00:00:00Z' },
        pagination: { type: 'cursor', cursor_path: 'next_page', param: 'page' },
        records_path: 'data[*].results[*]',
        include_parent: { bucket_start: 'starting_at' },
      }),
    );
    assert.equal(requests.length, 2);
    assert.deepEqual(records, [
      { model: 'a', uncached_input_tokens: 1, bucket_start: '2025-01-01T00:00:00Z' },
      { model: 'a', uncached_input_tokens: 3, bucket_start: '2025-01-03T00:00:00Z' },
      { model: 'b', uncached_input_tokens: 4, bucket_start: '2025-01-03T00:00:00Z' },
    ]);
  });

  it('surfaces the clash end to end as a RecordsPathError naming the URL', async () => {
    const error = await servedError(
      () => ({ body: { data: [bucket('01', [{ model: 'a', bucket_start: 'x' }])] } }),
      (base) => ({
        url: `${base}/usage`,
        pagination: { type: 'none' },
        records_path: 'data[*].results[*]',
        include_parent: { bucket_start: 'starting_at' },
      }),
    );
    assert.ok(error instanceof RecordsPathError);
    assert.match(error.message, /\/usage/);
  });
});

/** A Sheets values.get answer: trailing empty cells and rows left out, `values` absent when all is empty. */
const sheet = (values?: unknown[][]) => ({ range: 'Sheet1!A1:Z1000', majorDimension: 'ROWS', ...(values ? { values } : {}) });
const readSheet = (body: unknown) => pageRecordsReader({ records_path: 'values', records_format: 'rows_with_header' })(body, URL_SHOWN);

describe('records_format rows_with_header', () => {
  it('keys each row by the header, as written, with null for the trailing cells Sheets leaves out', () => {
    const { rows, records } = readSheet(
      sheet([['Email Address', 'Team', 'Seat'], ['ann@x.test', 'Data', 'pro'], ['bob@x.test', 'Ops'], [], ['cy@x.test', '', 'pro']]),
    );
    assert.equal(rows.length, 5, 'the paginator counts the rows served, the header too');
    assert.deepEqual(records, [
      { 'Email Address': 'ann@x.test', Team: 'Data', Seat: 'pro' },
      { 'Email Address': 'bob@x.test', Team: 'Ops', Seat: null },
      { 'Email Address': null, Team: null, Seat: null },
      { 'Email Address': 'cy@x.test', Team: '', Seat: 'pro' },
    ]);
  });

  it('reads a response without values (an empty range) as no records', () => {
    assert.deepEqual(readSheet(sheet()), { rows: [], records: [] });
    assert.deepEqual(readSheet(sheet([['Email']])).records, []);
  });

  it('still errors when the body is not an object holding the path', () => {
    assert.throws(() => readSheet(null), RecordsPathError);
    assert.throws(() => readSheet([['a']]), RecordsPathError);
    assert.throws(() => pageRecordsReader({ records_path: 'values' })(sheet(), URL_SHOWN), /"values" was not found/);
  });

  it('names the row number of a row longer than the header', () => {
    assert.throws(
      () =>
        readSheet(
          sheet([
            ['Email', 'Team'],
            ['a', 'b'],
            ['c', 'd', 'stray'],
          ]),
        ),
      (e: unknown) =>
        e instanceof RowsWithHeaderError &&
        /row 3 has 3 cells but the header names 2 columns/.test(e.message) &&
        e.message.includes(URL_SHOWN),
    );
  });

  it('names the column of an empty or duplicate header name', () => {
    assert.throws(
      () => readSheet(sheet([['Email', '', 'Team'], ['a']])),
      (e: unknown) => e instanceof RowsWithHeaderError && /no name for column 2 \(B\)/.test(e.message),
    );
    assert.throws(
      () => readSheet(sheet([['Email', null], ['a']])),
      (e: unknown) => e instanceof RowsWithHeaderError && /no name for column 2 \(B\)/.test(e.message),
    );
    assert.throws(
      () => readSheet(sheet([['Email', 'Team', 'Email']])),
      (e: unknown) => e instanceof RowsWithHeaderError && /names column 1 \(A\) and column 3 \(C\) both "Email"/.test(e.message),
    );
  });

  it('refuses a row that is not an array, naming it', () => {
    assert.throws(
      () => readSheet(sheet([['Email'], { Email: 'a' } as unknown as unknown[]])),
      (e: unknown) => e instanceof RowsWithHeaderError && /row 2 \(at values\[1\]\) is an object, not an array of cells/.test(e.message),
    );
  });

  it('takes the header from the first page only: later pages are all data, row numbers continue', () => {
    const header = new HeaderRows();
    const page = (rows: unknown[][]) => [{ records: rows, at: 'values' }];
    assert.deepEqual(recordsOf(header.records(page([['Email'], ['a']]), URL_SHOWN)), [{ Email: 'a' }]);
    assert.deepEqual(recordsOf(header.records(page([['b'], ['c']]), URL_SHOWN)), [{ Email: 'b' }, { Email: 'c' }]);
    assert.throws(() => header.records(page([['d', 'e']]), URL_SHOWN), /row 5 has 2 cells/);
  });

  it('keeps a header cell named __proto__ as a plain column', () => {
    const record = readSheet(
      sheet([
        ['__proto__', 'x'],
        ['polluted', 1],
      ]),
    ).records[0] as Record<string, unknown>;
    assert.ok(Object.hasOwn(record, '__proto__'));
    assert.equal(Object.getPrototypeOf(record), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('loads a Sheets-shaped range end to end, the paginator counting the header row', async () => {
    const { records } = await served(
      (req) =>
        req.url.searchParams.get('offset') === '0'
          ? { body: sheet([['Email', 'Team'], ['a@x', 'Data'], ['b@x']]) }
          : { body: sheet([['c@x', 'Ops']]) },
      (base) => ({
        url: `${base}/v4/spreadsheets/abc/values/Sheet1`,
        pagination: { type: 'offset', param: 'offset', limit_param: 'limit', limit: 3 },
        records_path: 'values',
        records_format: 'rows_with_header',
      }),
    );
    assert.deepEqual(records, [
      { Email: 'a@x', Team: 'Data' },
      { Email: 'b@x', Team: null },
      { Email: 'c@x', Team: 'Ops' },
    ]);
  });

  it('stages header names as written into column names, saying which were renamed', async () => {
    const { records } = readSheet(
      sheet([
        ['Email Address', 'Team', 'Seat type', '2025 budget'],
        ['ann@x.test', 'Data', 'pro', '100'],
        ['bob@x.test', 'Ops'],
      ]),
    );
    const stagingDir = path.join(await makeTempDir('sheet-rows'), 'stage');
    const staged = await stageRecords(
      (async function* () {
        yield records as Array<Record<string, unknown>>;
      })(),
      { stagingDir, sourceLabel: 'https://sheets.googleapis.com/v4/spreadsheets/s/values/Team' },
    );
    assert.equal(staged.rows, 2);
    assert.equal(staged.rejected, 0);
    const names = staged.fields.map((f) => f.name);
    assert.equal(names.length, 4);
    assert.ok(names.includes('Team'));
    for (const name of names) assert.match(name, /^[A-Za-z_][A-Za-z0-9_]*$/);
    assert.match(staged.warnings?.join('\n') ?? '', /"Email Address" -> /);
  });

  it('surfaces a duplicate header end to end', async () => {
    const error = await servedError(
      () => ({ body: sheet([['a', 'a']]) }),
      (base) => ({ url: `${base}/v`, pagination: { type: 'none' }, records_path: 'values', records_format: 'rows_with_header' }),
    );
    assert.ok(error instanceof RowsWithHeaderError);
  });
});
