/** `docs generate` and `docs serve` through the built CLI: the site on disk, its summary, and every refusal. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installExample } from '../../src/services/example.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { runCli, runJson, show, startServe } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

interface Published {
  dir: string;
  index: string;
  pipelines: number;
  tables: number;
  lineageNodes: number;
  lineageEdges: number;
  runsCharted: number;
}

describe('docs generate | serve', () => {
  let ws: string;
  before(async () => {
    ws = await newBootstrappedWorkspace('docs-cli');
    await installExample(ws);
    await withContext(ws, async (ctx) => {
      await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' });
      await runPipeline(ctx, { tenantId: 'acme_corp', pipelineId: 'p_usage_daily', runDate: '2025-01-31' });
    });
  });

  it('writes the site to docs/<tenant> and says what it holds and where to open it', async () => {
    const r = await runCli(['docs', 'generate', '--tenant', 'acme_corp'], { cwd: ws });
    assert.equal(r.exitCode, 0, show(r));
    const index = path.join(ws, 'docs', 'acme_corp', 'index.html');
    assert.match(r.stdout, new RegExp(`Open ${index.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(await readFile(index, 'utf8'), /acme_corp/);
    assert.ok(existsSync(path.join(ws, 'docs', 'acme_corp', 'pipelines', 'p_usage_daily.html')));
    assert.ok(existsSync(path.join(ws, 'docs', 'acme_corp', 'tables', 'raw_usage.html')));
  });

  it('--json reports the counts; --out writes elsewhere and a second run replaces the site', async () => {
    const out = path.join(ws, 'public', 'acme');
    for (let i = 0; i < 2; i++) {
      const r = await runJson<Published>(['docs', 'generate', '--tenant', 'acme_corp', '--out', out], { cwd: ws });
      assert.equal(r.exitCode, 0, show(r));
      const site = r.envelope.result!;
      assert.equal(site.dir, out);
      assert.equal(site.index, path.join(out, 'index.html'));
      assert.ok(site.pipelines >= 2 && site.tables >= 3, JSON.stringify(site));
      assert.ok(site.lineageNodes > site.tables && site.lineageEdges > 0, JSON.stringify(site));
      assert.equal(site.runsCharted, 1);
    }
    assert.deepEqual(await readdir(path.join(ws, 'public')), ['acme']);
  });

  it('refuses an unknown tenant (8), a malformed id (2) and an --out it must not write (2), changing nothing', async () => {
    const unknown = await runJson(['docs', 'generate', '--tenant', 'no_such_co'], { cwd: ws });
    assert.equal(unknown.exitCode, 8, show(unknown));
    assert.match(unknown.envelope.error!.message, /no_such_co/);
    const malformed = await runJson(['docs', 'generate', '--tenant', 'Acme;drop'], { cwd: ws });
    assert.equal(malformed.exitCode, 2, show(malformed));

    const configs = await runJson(['docs', 'generate', '--tenant', 'acme_corp', '--out', 'configs/acme_corp'], { cwd: ws });
    assert.equal(configs.exitCode, 2, show(configs));
    assert.match(configs.envelope.error!.message, /would overwrite the workspace/);
    assert.ok(existsSync(path.join(ws, 'configs', 'acme_corp', 'pipelines', 'p_usage_daily.yml')));

    const mine = path.join(ws, 'notes');
    await mkdir(mine);
    await writeFile(path.join(mine, 'todo.txt'), 'keep');
    const taken = await runJson(['docs', 'generate', '--tenant', 'acme_corp', '--out', mine], { cwd: ws });
    assert.equal(taken.exitCode, 2, show(taken));
    assert.match(taken.envelope.error!.suggestion ?? '', /--out/);
    assert.deepEqual(await readdir(mine), ['todo.txt']);
  });

  it('docs serve serves the site until stopped, then prints its envelope', async () => {
    const server = await startServe(ws, ['--json'], undefined, ['docs', 'serve', '--tenant', 'acme_corp']);
    const page = await fetch(`${server.url}pipelines/p_usage_daily.html`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /p_usage_daily/);
    const r = await server.stop();
    assert.equal(r.exitCode, 0, show(r));
    assert.equal(JSON.parse(r.stdout).result.url, server.url);
  });

  it('docs serve refuses a bad --refresh before reading anything', async () => {
    const r = await runCli(['docs', 'serve', '--tenant', 'acme_corp', '--refresh', 'soon'], { cwd: ws });
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.stderr, /--refresh/);
  });
});
