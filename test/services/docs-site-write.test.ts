/** Writing a generated site: whole or not at all, and never over the workspace or a folder it did not make. */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { SiteFiles } from '../../src/services/docs/model.ts';
import { SITE_MARKER, writeSite } from '../../src/services/docs/site.ts';
import { siteFile } from '../../src/services/docs/site-files.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

const site = (index: string): SiteFiles =>
  new Map<string, string | Buffer>([
    ['index.html', index],
    ['tables/raw_usage.html', '<p>raw_usage</p>'],
    ['assets/site.css', 'body{}'],
    [SITE_MARKER, '{}\n'],
  ]);

async function workspace(): Promise<string> {
  const root = await makeTempDir('site-write');
  await mkdir(path.join(root, 'configs', 'acme_corp'), { recursive: true });
  await mkdir(path.join(root, 'data'), { recursive: true });
  await writeFile(path.join(root, 'convergence.yaml'), 'environments: {}\n');
  return root;
}

describe('writeSite', () => {
  it('writes every file, then replaces the whole site on the next generation', async () => {
    const root = await workspace();
    const out = path.join(root, 'docs', 'acme_corp');
    assert.equal(await writeSite(root, out, site('first')), out);
    assert.equal(await readFile(path.join(out, 'index.html'), 'utf8'), 'first');
    await writeFile(path.join(out, 'stale.html'), 'left from before');
    await writeSite(root, out, site('second'));
    assert.equal(await readFile(path.join(out, 'index.html'), 'utf8'), 'second');
    assert.deepEqual((await readdir(out)).sort(), [SITE_MARKER, 'assets', 'index.html', 'tables']);
    assert.deepEqual(await readdir(path.join(root, 'docs')), ['acme_corp'], 'no temporary folder is left beside it');
  });

  it('leaves the old site as it was when writing the new one fails', async () => {
    const root = await workspace();
    const out = path.join(root, 'docs', 'acme_corp');
    await writeSite(root, out, site('good'));
    const broken = site('never seen');
    broken.set('../escape.html', 'outside');
    await assert.rejects(writeSite(root, out, broken), /outside the site/);
    assert.equal(await readFile(path.join(out, 'index.html'), 'utf8'), 'good');
    assert.deepEqual(await readdir(path.join(root, 'docs')), ['acme_corp']);
  });

  it('never replaces a folder that is not a generated site', async () => {
    const root = await workspace();
    const out = path.join(root, 'notes');
    await mkdir(out);
    await writeFile(path.join(out, 'todo.txt'), 'mine');
    await assert.rejects(writeSite(root, out, site('x')), { code: 'USAGE', message: /is not a site made by/ });
    assert.deepEqual(await readdir(out), ['todo.txt']);
  });

  it('refuses the workspace itself, a folder holding it, and its configs, data and state', async () => {
    const root = await workspace();
    for (const target of [root, path.dirname(root), path.join(root, 'configs'), path.join(root, 'configs', 'acme_corp', 'site')]) {
      await assert.rejects(writeSite(root, target, site('x')), { code: 'USAGE', message: /would overwrite the workspace/ }, target);
    }
    for (const target of [path.join(root, 'data', 'site'), path.join(root, '.convergence', 'site')]) {
      await assert.rejects(writeSite(root, target, site('x')), { code: 'USAGE' }, target);
    }
    assert.deepEqual((await readdir(path.join(root, 'configs', 'acme_corp'))).length, 0);
  });

  it('resolves links before deciding: a link to the configs folder is refused', async () => {
    const root = await workspace();
    await symlink(path.join(root, 'configs'), path.join(root, 'published'));
    await assert.rejects(writeSite(root, path.join(root, 'published', 'acme_corp'), site('x')), { code: 'USAGE' });
    assert.deepEqual(await readdir(path.join(root, 'configs')), ['acme_corp']);
  });
});

describe('siteFile', () => {
  const files = site('home');
  it('answers index.html for the root and for folders, with its content type', () => {
    assert.equal(siteFile(files, '')?.body, 'home');
    assert.equal(siteFile(files, 'index.html')?.contentType, 'text/html; charset=utf-8');
    assert.equal(siteFile(files, 'assets/site.css')?.contentType, 'text/css; charset=utf-8');
    assert.equal(siteFile(files, 'tables/raw_usage.html?x=1')?.body, '<p>raw_usage</p>');
  });
  it('answers nothing outside the site, for dot files or malformed paths', () => {
    for (const request of [
      '../index.html',
      '..%2Findex.html',
      'tables/../index.html',
      'tables/%2e%2e/index.html',
      SITE_MARKER,
      encodeURIComponent(SITE_MARKER),
      'tables//raw_usage.html',
      'tables%5Craw_usage.html',
      '%E0%A4%A',
      'index.html%00',
      'missing.html',
    ]) {
      assert.equal(siteFile(files, request), undefined, request);
    }
  });
});
