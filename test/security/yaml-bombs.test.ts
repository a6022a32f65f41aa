/**
 * Hostile YAML in a tenant's config files and in convergence.yaml: an alias bomb ("billion laughs"),
 * a file far larger than any config, nesting deeper than the parser's stack, a FIFO in place of a
 * file. Each is refused with exit 2 naming the file, before it can take the process's memory or
 * hang it; none is an unexpected error (exit 1).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { isConvergenceError } from '../../src/lib/errors.ts';
import { MAX_CONFIG_BYTES, parseYamlWith } from '../../src/lib/yaml-errors.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { runJson, show } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'acme_corp';

/** Nine levels of nine aliases each: 9^9 (387 million) strings once expanded. */
const LAUGHS = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((name, i) => {
    const prev = 'abcdefghi'[i]!;
    return `${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }),
].join('\n');

const OVERSIZED = `pipeline_id: p_big\n${'# padding padding padding padding padding padding padding padding\n'.repeat(MAX_CONFIG_BYTES / 64 + 10)}`;
const DEEP_FLOW = `source_id: deep\ntype: file\npath: x.csv\nformat: csv\ncsv: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;

const refusal = async (text: string) => {
  try {
    await parseYamlWith('configs/acme_corp/pipelines/p.yml', text, z.unknown());
  } catch (err) {
    return err;
  }
  return undefined;
};

describe('parseYamlWith refuses hostile documents as validation errors', () => {
  it('an alias bomb, naming the file', async () => {
    const err = await refusal(LAUGHS);
    assert.ok(isConvergenceError(err), String(err));
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /^configs\/acme_corp\/pipelines\/p\.yml: the document expands more than 100 aliases/);
  });

  it('a text over the size cap (a pushed config is text, not a file)', async () => {
    const err = await refusal(OVERSIZED);
    assert.ok(isConvergenceError(err), String(err));
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /p\.yml: the file has [\d,]+ bytes, more than the 1 MiB a config file may have/);
  });

  it('nesting deeper than the stack, or just deeper than any config, in flow and in block style', async () => {
    const block = (levels: number) => `${Array.from({ length: levels }, (_, i) => `${' '.repeat(i)}k:`).join('\n')} 1\n`;
    const flow = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    for (const text of [DEEP_FLOW, flow(65), block(65), block(1_300)]) {
      const err = await refusal(text);
      assert.ok(isConvergenceError(err), String(err));
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        /^configs\/acme_corp\/pipelines\/p\.yml(:\d+:\d+)?: the document nests too deeply \(more than 64 levels\)$/,
      );
    }
    assert.equal(await refusal(flow(64)), undefined, '64 levels are still read');
  });

  it('still reads anchors and aliases of ordinary size', async () => {
    const value = await parseYamlWith('p.yml', 'base: &b { a: 1 }\nx: *b\ny: *b\n', z.record(z.string(), z.unknown()));
    assert.deepEqual(value, { base: { a: 1 }, x: { a: 1 }, y: { a: 1 } });
  });
});

describe('hostile config files through the CLI', () => {
  let root: string;
  const tenantFile = (...parts: string[]) => path.join(root, 'configs', TENANT, ...parts);
  before(async () => {
    root = await newBootstrappedWorkspace('yaml-bombs');
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
  });

  const cases: Array<[label: string, file: string, text: string, message: RegExp]> = [
    [
      'an alias bomb in a pipeline',
      'pipelines/p_laughs.yml',
      `pipeline_id: p_laughs\n${LAUGHS}\n`,
      /p_laughs\.yml: the document expands more than 100 aliases/,
    ],
    ['an oversized pipeline', 'pipelines/p_big.yml', OVERSIZED, /p_big\.yml: the file has [\d,]+ bytes, more than the 1 MiB/],
    ['deep nesting in a source', 'sources/deep.yml', DEEP_FLOW, /sources\/deep\.yml:5:\d+: the document nests too deeply/],
    [
      'deep nesting in a schema',
      'schemas/deep.json',
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      /schemas\/deep\.json:1:\d+: the document nests too deeply/,
    ],
  ];
  for (const [label, file, text, message] of cases) {
    it(`${label}: pipeline validate exits 2 naming the file`, async () => {
      await writeFile(tenantFile(file), text);
      const r = await runJson(['pipeline', 'validate', tenantFile(file)], { cwd: root });
      assert.equal(r.exitCode, 2, show(r));
      assert.match(JSON.stringify(r.envelope.error?.data), message, show(r));
    });
  }

  it('a pipeline run of an alias bomb exits 2 before any run', async () => {
    const r = await runJson(['pipeline', 'run', 'p_laughs', '--tenant', TENANT], { cwd: root });
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error?.message ?? '', /p_laughs\.yml: the document expands more than 100 aliases/);
  });

  it('a FIFO in place of a pipeline file is refused without hanging', async (t) => {
    const fifo = tenantFile('pipelines', 'p_fifo.yml');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      t.skip('mkfifo is not available');
      return;
    }
    const r = await runJson(['pipeline', 'run', 'p_fifo', '--tenant', TENANT], { cwd: root });
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error?.message ?? '', /configs\/acme_corp\/pipelines\/p_fifo\.yml is not a regular file/);
  });

  it('an alias bomb or an oversized convergence.yaml: every command exits 2 naming it', async () => {
    for (const text of [`version: 1\n${LAUGHS}\n`, `version: 1\n${'#'.repeat(MAX_CONFIG_BYTES + 1)}\n`]) {
      const ws = await newWorkspace('yaml-config');
      const config = path.join(ws, 'convergence.yaml');
      assert.ok((await readFile(config, 'utf8')).length > 0);
      await writeFile(config, text);
      const r = await runJson(['tenant', 'list'], { cwd: ws });
      assert.equal(r.exitCode, 2, show(r));
      assert.match(
        r.envelope.error?.message ?? '',
        /convergence\.yaml: the (document expands more than 100 aliases|file has [\d,]+ bytes)/,
      );
    }
  });
});
