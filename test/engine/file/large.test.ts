import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { once } from 'node:events';

import type { TableSchemaFile } from '../../../src/domain/pipeline.ts';
import { stageFileSource } from '../../../src/engine/sources/file/index.ts';
import { cleanupAll, makeTempDir } from '../../helpers/tmp.ts';
import { fileSource, inData, scopeOf } from './workspace.ts';

after(cleanupAll);

const ROWS = 2_000_000;
const MB = 1024 * 1024;

/** ~140 MB of CSV, streamed to disk so the test itself does not hold it. Every 100,000th amount is bad. */
async function writeBigCsv(file: string): Promise<void> {
  const out = createWriteStream(file);
  out.write('id,at,day,amount,user,flag\n');
  let chunk = '';
  for (let i = 1; i <= ROWS; i++) {
    const at = new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString();
    const amount = i % 100_000 === 0 ? 'n/a' : (i * 0.37).toFixed(2);
    chunk += `${i},${at},${at.slice(0, 10)},${amount},user_${i % 9973},${i % 2 === 0}\n`;
    if (chunk.length > MB) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

/** Anonymous resident memory (heap, not file pages polars maps); undefined off Linux. */
async function anonymousRss(): Promise<number | undefined> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => undefined);
  const kb = status && /RssAnon:\s+(\d+)/.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : undefined;
}

const SCHEMA: TableSchemaFile = [
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'at', type: 'TIMESTAMP', mode: 'NULLABLE' },
  { name: 'day', type: 'DATE', mode: 'NULLABLE' },
  { name: 'amount', type: 'FLOAT64', mode: 'NULLABLE' },
  { name: 'user', type: 'STRING', mode: 'NULLABLE' },
  { name: 'flag', type: 'BOOL', mode: 'NULLABLE' },
];

describe('a large CSV', () => {
  it('streams 2 million rows to staging with bounded memory', async (t) => {
    const root = await makeTempDir('large-csv');
    const input = inData(root, 'big.csv');
    await mkdir(path.dirname(input), { recursive: true });
    await writeBigCsv(input);
    const size = (await stat(input)).size;

    global.gc?.();
    const baseRss = process.memoryUsage().rss;
    const baseAnon = await anonymousRss();
    let peakRss = baseRss;
    let peakAnon = baseAnon ?? 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      void anonymousRss().then((a) => {
        if (a !== undefined) peakAnon = Math.max(peakAnon, a);
      });
    }, 20);
    const started = performance.now();
    let staged;
    try {
      staged = await stageFileSource(fileSource({ path: 'big.csv', format: 'csv', incremental: { cursor_field: 'at' } }), {
        scope: scopeOf(root),
        stagingDir: path.join(root, 'staging'),
        tableSchema: SCHEMA,
        incremental: { cursorField: 'at' },
      });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - started) / 1000;

    assert.equal(staged.rows, ROWS);
    assert.equal(staged.rejected, ROWS / 100_000);
    // The last row has a bad amount: the cursor stops at the one before.
    assert.equal(staged.cursorMax, new Date(Date.UTC(2025, 0, 1) + (ROWS - 1) * 1000).toISOString().replace('.000Z', '.000000Z'));
    assert.equal(staged.bytesRead, size);

    const rssGrowth = (peakRss - baseRss) / MB;
    const anonGrowth = baseAnon === undefined ? undefined : (peakAnon - baseAnon) / MB;
    t.diagnostic(
      `${(size / MB).toFixed(0)} MB, ${ROWS} rows in ${seconds.toFixed(1)} s (${Math.round(ROWS / seconds)} rows/s); ` +
        `peak RSS growth ${rssGrowth.toFixed(0)} MB, anonymous ${anonGrowth?.toFixed(0) ?? 'n/a'} MB`,
    );
    // RSS also counts the pages of the input polars maps (about its size); the anonymous part is the
    // working set, ~180 MB measured whatever the input size. Loading the same file whole as text
    // takes ~330 MB anonymous and keeps growing with the input.
    assert.ok(rssGrowth < 450, `peak RSS grew ${rssGrowth.toFixed(0)} MB`);
    if (anonGrowth !== undefined) assert.ok(anonGrowth < 300, `anonymous memory grew ${anonGrowth.toFixed(0)} MB`);
  });
});
