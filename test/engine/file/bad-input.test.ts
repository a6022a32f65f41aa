/**
 * Input files a tenant may well send: a CSV line in another encoding, NDJSON nested deeper than
 * anything can store, an empty export. Each loads what it can, quarantines the rest with a true
 * reason, and never fails the whole file or the process.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { INVALID_UTF8_REASON } from '../../../src/engine/sources/file/csv.ts';
import { Utf8Stream } from '../../../src/engine/sources/file/utf8.ts';
import { installExample } from '../../../src/services/example.ts';
import { runPipeline } from '../../../src/services/pipelines/run.ts';
import { createTenant } from '../../../src/services/tenants.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../../helpers/context.ts';
import { cleanupAll } from '../../helpers/tmp.ts';
import { pick } from '../staging/read-staged.ts';
import { stageIn, TENANT, workspace } from './workspace.ts';

after(cleanupAll);

const bytes = (...parts: Array<string | number[]>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('a CSV line that is not UTF-8', () => {
  it('is quarantined with its reason and line while the rest of the file loads', async () => {
    const root = await workspace({
      'latin1.csv': bytes('id,name\n1,Zoë\n2,Jos', [0xe9], '\n3,"quoted ', [0xff], '"\n4,Ærø\n5,cut ', [0xe2, 0x82], '\n6,last\n'),
    });
    const { staged, rows } = await stageIn(root, { path: 'latin1.csv', format: 'csv' });
    assert.deepEqual(pick(rows, 'id', 'name', '__reason', '__source_row'), [
      { id: 1, name: 'Zoë', __reason: null, __source_row: 2 },
      { id: 2, name: 'Jos\ufffd', __reason: INVALID_UTF8_REASON, __source_row: 3 },
      { id: 3, name: 'quoted \ufffd', __reason: INVALID_UTF8_REASON, __source_row: 4 },
      { id: 4, name: 'Ærø', __reason: null, __source_row: 5 },
      { id: 5, name: 'cut \ufffd', __reason: INVALID_UTF8_REASON, __source_row: 6 },
      { id: 6, name: 'last', __reason: null, __source_row: 7 },
    ]);
    assert.equal(staged.rejected, 3);
  });

  it('is found across read chunks: valid characters cut by a chunk border pass, a bad byte far in is caught', async () => {
    // Rows of 2- and 3-byte characters, so some character straddles the 1 MiB chunk border.
    const good = Array.from({ length: 100_000 }, (_, i) => `${i},ÆØÅ€${'é'.repeat(i % 7)}`);
    const bad = 90_000;
    const text = Buffer.from(`id,name\n${good.join('\n')}\n`);
    const marker = Buffer.from(`\n${bad},`);
    const at = text.indexOf(marker) + marker.length;
    assert.ok(at > 1 << 20, 'the bad line lies beyond the first chunk');
    text[at] = 0xc0; // never valid in UTF-8
    const root = await workspace({ 'big.csv': text });
    const { staged, rows } = await stageIn(root, { path: 'big.csv', format: 'csv' });
    assert.equal(staged.rows, 100_000);
    assert.deepEqual(
      rows.filter((r) => r['__reason'] !== null).map((r) => [r['id'], r['__reason']]),
      [[bad, INVALID_UTF8_REASON]],
    );
  });

  it('in the header: the file loads, with a warning', async () => {
    const root = await workspace({ 'h.csv': bytes('id,na', [0xef], 'me\n1,x\n') });
    const { staged, rows } = await stageIn(root, { path: 'h.csv', format: 'csv' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['__reason'], null);
    assert.ok(
      staged.warnings?.some((w) => w.startsWith('data/acme_corp/h.csv: the header line is not valid UTF-8')),
      String(staged.warnings),
    );
  });
});

describe('the streaming UTF-8 check', () => {
  it('agrees with Buffer isUtf8 on random bytes cut into random chunks', () => {
    let seed = 42;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const alphabet = [0x41, 0x0a, 0x7f, 0x80, 0xbf, 0xc2, 0xc0, 0xdf, 0xe0, 0xa0, 0xed, 0x9f, 0xef, 0xf0, 0x90, 0xf4, 0x8f, 0xf5, 0xff];
    for (let round = 0; round < 2_000; round++) {
      const data = Buffer.from(Array.from({ length: 1 + Math.floor(next() * 24) }, () => alphabet[Math.floor(next() * alphabet.length)]!));
      const stream = new Utf8Stream();
      let valid = true;
      for (let start = 0; start < data.length;) {
        const end = Math.min(data.length, start + 1 + Math.floor(next() * 6));
        const chunk = data.subarray(start, end);
        if (!stream.chunkIsValid(chunk)) for (const b of chunk) valid = stream.step(b) && valid;
        start = end;
      }
      assert.equal(valid && !stream.open, isUtf8(data), data.toString('hex'));
    }
  });
});

describe('NDJSON nested deeper than can be stored', () => {
  it('is quarantined as too deep (it is valid JSON), with no stack overflow, and the other lines load', async () => {
    const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const deepObject = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const within = `{"id":4,"v":${'['.repeat(99)}1${']'.repeat(99)}}`;
    const root = await workspace({
      'deep.ndjson': [`{"id":1}`, deepArray, `{"id":2,"v":${deepObject}}`, `{"id":3}`, within, ''].join('\n'),
    });
    const { staged, rows } = await stageIn(root, { path: 'deep.ndjson', format: 'ndjson' });
    const reason = 'record nests arrays and objects more than 100 levels deep';
    assert.deepEqual(pick(rows, 'id', '__reason', '__source_row'), [
      { id: 1, __reason: null, __source_row: 1 },
      { id: null, __reason: reason, __source_row: 2 },
      { id: null, __reason: reason, __source_row: 3 },
      { id: 3, __reason: null, __source_row: 4 },
      { id: 4, __reason: null, __source_row: 5 },
    ]);
    assert.equal(staged.rejected, 2);
    assert.ok(!rows.some((r) => String(r['__reason']).includes('not valid JSON')));
  });

  it('a line that is not UTF-8 is quarantined as such, CRLF lines and a last line without a newline load', async () => {
    const root = await workspace({ 'e.ndjson': bytes('{"id":1}\r\n{"id":2,"s":"', [0xc3, 0x28], '"}\r\n{"id":3}') });
    const { rows } = await stageIn(root, { path: 'e.ndjson', format: 'ndjson' });
    assert.deepEqual(pick(rows, 'id', '__reason', '__source_row'), [
      { id: 1, __reason: null, __source_row: 1 },
      { id: null, __reason: 'line is not valid UTF-8 (is the file in another encoding, e.g. Windows-1252?)', __source_row: 2 },
      { id: 3, __reason: null, __source_row: 3 },
    ]);
  });
});

describe('an empty file', () => {
  for (const format of ['csv', 'ndjson', 'parquet'] as const) {
    it(`loads 0 rows from an empty .${format} with a warning`, async () => {
      const root = await workspace({ [`e.${format}`]: '' });
      const { staged } = await stageIn(root, { path: `e.${format}`, format });
      assert.equal(staged.rows, 0);
      assert.deepEqual(staged.files, []);
      assert.deepEqual(staged.warnings, [`file is empty, no rows loaded from it: data/acme_corp/e.${format}`]);
    });
  }

  it('beside other files of a glob: they load, the empty one is named', async () => {
    const root = await workspace({ 'u_1.csv': 'id\n1\n', 'u_2.csv': '', 'u_3.csv': 'id\n3\n' });
    const { staged, rows } = await stageIn(root, { path: 'u_*.csv', format: 'csv' });
    assert.deepEqual(pick(rows, 'id'), [{ id: 1 }, { id: 3 }]);
    assert.deepEqual(staged.warnings, ['file is empty, no rows loaded from it: data/acme_corp/u_2.csv']);
  });

  it('in a pipeline run: the run completes, loads nothing from it and says so', async () => {
    const root = await newBootstrappedWorkspace('empty-run');
    await installExample(root);
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
    await writeFile(path.join(root, 'data', TENANT, 'usage_2025-01-08.csv'), '');
    const summary = await withContext(root, (ctx) =>
      runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_usage_daily', runDate: '2025-01-31' }),
    );
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.ok(
      summary.steps[0]!.notes.some((n) => n.includes('file is empty, no rows loaded from it: data/acme_corp/usage_2025-01-08.csv')),
    );
    assert.equal(await withWarehouse(root, (w) => w.count(TENANT, 'raw_usage')), 7 * 300 + 1);
  });

  it('as the only input of a first run without a schema: the run completes with nothing loaded', async () => {
    const root = await newBootstrappedWorkspace('empty-only');
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
    const dir = path.join(root, 'configs', TENANT);
    await writeFile(path.join(dir, 'sources', 'e.yml'), 'source_id: e\ntype: file\npath: e.csv\nformat: csv\n');
    await writeFile(
      path.join(dir, 'pipelines', 'p_e.yml'),
      'pipeline_id: p_e\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/e.yml, destination: { table: e } }\n',
    );
    await mkdir(path.join(root, 'data', TENANT), { recursive: true });
    await writeFile(path.join(root, 'data', TENANT, 'e.csv'), '');
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_e', runDate: '2025-01-31' }));
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(summary.steps[0]!.rowsOut, 0);
    assert.ok(summary.steps[0]!.notes.some((n) => n.includes('file is empty')));
  });
});
