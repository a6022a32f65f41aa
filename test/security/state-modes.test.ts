import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureStagingDir } from '../../src/engine/staging/parts.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const mode = async (file: string) => (await stat(file)).mode & 0o777;

/** Every entry below `dir` whose permissions let another user of the host in. */
async function openEntries(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if ((await mode(full)) & 0o077) found.push(`${path.relative(dir, full)} ${(await mode(full)).toString(8)}`);
  }
  return found;
}

describe("local state is the operator's alone", () => {
  it('the warehouse file, lock files and staging are 0600 in 0700 folders', async () => {
    const root = await newBootstrappedWorkspace('modes');
    const state = path.join(root, '.convergence');
    await withContext(root, async (ctx) => {
      const lock = await ctx.backends.lock();
      const taken = await lock.acquire('run/acme_corp/p_usage_daily', { owner: 'test', ttlMs: 60_000 });
      assert.ok(taken.acquired);
      await ensureStagingDir(path.join(state, 'staging', '00000000-0000-4000-8000-000000000001', 'ingest'));
    });
    assert.equal(await mode(state), 0o700);
    assert.equal(await mode(path.join(state, 'warehouse.duckdb')), 0o600);
    assert.equal(await mode(path.join(state, 'locks')), 0o700);
    assert.equal(await mode(path.join(state, 'staging')), 0o700);
    const locks = await readdir(path.join(state, 'locks'));
    assert.ok(
      locks.some((f) => f.endsWith('.lock')),
      locks.join(', '),
    );
    // WAL and keyring files included: nothing under the state folder is open to group or others.
    assert.deepEqual(await openEntries(state), []);
  });

  it('a state folder left open by an older version or a lax umask is narrowed to 0700', async () => {
    const root = await newWorkspace('modes-open');
    const state = path.join(root, '.convergence');
    await mkdir(path.join(state, 'locks'), { recursive: true });
    await chmod(state, 0o755);
    await chmod(path.join(state, 'locks'), 0o777);
    await withContext(root, async (ctx) => {
      await (await ctx.backends.warehouse()).datasetExists('tenants');
      const lock = await ctx.backends.lock();
      await lock.inspect('x');
      await lock.acquire('x', { owner: 'test', ttlMs: 1000 });
    });
    assert.equal(await mode(state), 0o700);
    assert.equal(await mode(path.join(state, 'locks')), 0o700);
  });
});
