import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pl from 'nodejs-polars';

import { scanCsvLayout } from '../../../src/engine/sources/file/csv-layout.ts';
import { ROW_INDEX, scanCsv } from '../../../src/engine/sources/file/csv.ts';
import { cleanupAll, makeTempDir } from '../../helpers/tmp.ts';

after(cleanupAll);

async function layoutOf(text: string, settings = { delimiter: ',', hasHeader: true }) {
  const file = path.join(await makeTempDir('layout'), 'in.csv');
  await writeFile(file, text);
  const layout = await scanCsvLayout(file, settings);
  const polarsRecords = (await scanCsv(file, settings).select(pl.col(ROW_INDEX)).collect()).height;
  return { layout, polarsRecords };
}

describe('CSV layout pass', () => {
  it('counts records exactly as polars does (blank lines, CRLF, quotes, no final newline)', async () => {
    const cases = [
      'a,b\n1,2\n3,4\n',
      'a,b\r\n1,2\r\n\r\n3,4',
      'a,b\n"x, y",2\n"multi\nline ""quoted""",3\n\n\n',
      'a\n1\n\n2\n',
      'a,b,c\n1,2\n1,2,3,4\n',
      '\uFEFFa,b\n1,2\n',
    ];
    for (const text of cases) {
      const { layout, polarsRecords } = await layoutOf(text);
      assert.equal(layout.records, polarsRecords, JSON.stringify(text));
    }
  });

  it('finds ragged records by their width, blank lines, and where records start', async () => {
    const { layout } = await layoutOf('a,b,c\n1,2,3\n1,2\n\n"x\ny",2,3\n1,2,3,4\n5,6,7\n');
    assert.equal(layout.width, 3);
    assert.equal(layout.firstLine, 2);
    assert.deepEqual(
      [...layout.ragged],
      [
        [2, [1]],
        [4, [4]],
      ],
    );
    assert.deepEqual(layout.blank, [2]);
    // Record 3 spans lines 5-6, so record 4 starts on line 7 = firstLine + 4 + 1.
    assert.deepEqual(layout.shifts, [[4, 1]]);
    assert.equal(layout.quoteProblemLine, undefined);
  });

  it('uses the first record as the width without a header, and another delimiter', async () => {
    const { layout } = await layoutOf('1;2\n3;4;5\n', { delimiter: ';', hasHeader: false });
    assert.equal(layout.width, 2);
    assert.equal(layout.firstLine, 1);
    assert.deepEqual([...layout.ragged], [[3, [1]]]);
  });

  it('points at stray and unterminated quotes', async () => {
    assert.equal((await layoutOf('a,b\n1,2\n3,x"y\n')).layout.quoteProblemLine, 3);
    assert.equal((await layoutOf('a,b\n"ab"c,2\n')).layout.quoteProblemLine, 2);
    assert.equal((await layoutOf('a,b\n1,"open\n2,3\n')).layout.quoteProblemLine, 2, 'the line the quote opens on');
  });
});
