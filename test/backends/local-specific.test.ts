/**
 * Behaviour of the local adapters beyond the port contracts: file layout and modes, damaged
 * key files, and several processes sharing one warehouse file, key file or lock folder.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LocalKeyRing } from '../../src/backends/keyring/local-aes.ts';
import { FileLock } from '../../src/backends/lock/files.ts';
import { FileSecretStore } from '../../src/backends/secrets/files.ts';
import { DuckDbWarehouse, translatePlaceholders } from '../../src/backends/warehouse/duckdb/index.ts';

const execFileP = promisify(execFile);
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

async function child(name: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP(process.execPath, [fixture(name), ...args], { timeout: 120_000 });
  return stdout.trim();
}

/** Children take a moment to boot; a shared start time makes them actually race. */
const startSoon = () => String(Date.now() + 2000);

const codeOf = (err: unknown) => (err as { code?: string }).code;

let root: string;
before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'convergence-local-'));
});
after(() => rm(root, { recursive: true, force: true }));
const fresh = async (name: string) => {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
};
const mode = async (file: string) => (await stat(file)).mode & 0o777;

describe('DuckDbWarehouse (local)', () => {
  const EVENTS = {
    name: 'events',
    fields: [
      { name: 'worker', type: 'INT64' as const, mode: 'REQUIRED' as const },
      { name: 'seq', type: 'INT64' as const, mode: 'REQUIRED' as const },
      { name: 'at', type: 'TIMESTAMP' as const },
    ],
  };

  it('creates the parent folder of the file', async () => {
    const file = path.join(await fresh('wh-parent'), 'a', 'b', 'warehouse.duckdb');
    const wh = new DuckDbWarehouse({ file });
    assert.equal(await wh.createDataset('tenants'), true);
    assert.ok((await stat(file)).isFile());
    assert.match(wh.describe, /warehouse\.duckdb/);
    assert.equal(wh.dialect.name, 'duckdb');
  });

  it('holds nothing open between calls, so another process opens the file at once', async () => {
    const file = path.join(await fresh('wh-idle'), 'warehouse.duckdb');
    const wh = new DuckDbWarehouse({ file });
    await wh.createDataset('load');
    // The holder opens without retrying: it fails if we still had the file.
    assert.equal(await child('duckdb-holder.ts', [file, '0']), 'open');
    assert.equal(await wh.datasetExists('load'), true);
  });

  it('serializes concurrent calls within one process, across instances', async () => {
    const file = path.join(await fresh('wh-inproc'), 'warehouse.duckdb');
    const a = new DuckDbWarehouse({ file });
    const b = new DuckDbWarehouse({ file });
    await a.createDataset('load');
    await a.createTable('load', EVENTS);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).insert('load', 'events', [{ worker: i % 2, seq: i, at: new Date() }])),
    );
    const [countA, countB] = await Promise.all([a.count('load', 'events'), b.count('load', 'events')]);
    assert.equal(countA, 30);
    assert.equal(countB, 30);
    await Promise.all([a.close(), b.close()]);
  });

  it('lets 6 writer processes and a reader share the file without an error', { timeout: 180_000 }, async () => {
    const file = path.join(await fresh('wh-xproc'), 'warehouse.duckdb');
    const wh = new DuckDbWarehouse({ file });
    await wh.createDataset('load');
    await wh.createTable('load', EVENTS);
    const startAt = startSoon();
    // Enough rows that each writer holds the file several times and must yield it in between.
    const writers = Array.from({ length: 6 }, (_, w) => child('warehouse-worker.ts', ['write', file, String(w), '60', startAt]));
    const reader = child('warehouse-worker.ts', ['read', file, '360', startAt]);
    const outputs = await Promise.all([...writers, reader]);
    for (const out of outputs) assert.equal(JSON.parse(out).ok, true);
    const counts = JSON.parse(outputs.at(-1)!).counts as number[];
    assert.ok(counts.length > 1, 'the reader should have read while writers wrote');
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!, 'counts never go backwards');
    assert.equal(await wh.count('load', 'events'), 360);
    for (let w = 0; w < 6; w++) assert.equal(await wh.count('load', 'events', { worker: w }), 60);
  });

  it('waits for a process holding the file, and gives up with WAREHOUSE_BUSY after its budget', { timeout: 60_000 }, async () => {
    const file = path.join(await fresh('wh-busy'), 'warehouse.duckdb');
    await new DuckDbWarehouse({ file }).createDataset('load');
    const holder = spawn(process.execPath, [fixture('duckdb-holder.ts'), file, '1500'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));

    const impatient = new DuckDbWarehouse({ file, busyTimeoutMs: 200 });
    await assert.rejects(impatient.datasetExists('load'), (err: unknown) => {
      const e = err as { code?: string; exitCode?: number; suggestion?: string; message: string };
      return e.code === 'WAREHOUSE_BUSY' && e.exitCode === 1 && e.message.includes(file) && /retry/.test(e.suggestion ?? '');
    });
    const started = Date.now();
    assert.equal(await new DuckDbWarehouse({ file }).datasetExists('load'), true);
    assert.ok(Date.now() - started > 300, 'should have waited for the holder');
    await exited;
  });

  it('inserts a large batch whole, or not at all', async () => {
    const wh = new DuckDbWarehouse({ file: path.join(await fresh('wh-batch'), 'w.duckdb') });
    await wh.createDataset('load');
    await wh.createTable('load', EVENTS);
    const rows = Array.from({ length: 1200 }, (_, seq) => ({ worker: 1, seq, at: new Date(seq) }));
    await wh.insert('load', 'events', rows);
    assert.equal(await wh.count('load', 'events'), 1200);
    const bad = Array.from({ length: 1200 }, (_, seq) => ({ worker: 2, seq: seq === 1100 ? null : seq }));
    await assert.rejects(wh.insert('load', 'events', bad));
    assert.equal(await wh.count('load', 'events', { worker: 2 }), 0);
  });

  it('translates @name placeholders only outside literals, identifiers and comments', () => {
    const { sql, names } = translatePlaceholders(`SELECT 'a@b.com', "col@x", @one, @two -- @not\n/* @nor */ , 'it''s @lit', @one, @@x`);
    assert.equal(sql, `SELECT 'a@b.com', "col@x", $one, $two -- @not\n/* @nor */ , 'it''s @lit', $one, @$x`);
    assert.deepEqual(names, ['one', 'two', 'x']);
  });

  it('rejects an undefined query parameter before running', async () => {
    const wh = new DuckDbWarehouse({ file: path.join(await fresh('wh-params'), 'w.duckdb') });
    await assert.rejects(wh.query('SELECT @a AS a', {}), (err: unknown) => (err as { exitCode?: number }).exitCode === 2);
    assert.deepEqual(await wh.query('SELECT @a AS a, @b AS b', { a: 1, b: 'x', unused: true }), [{ a: 1, b: 'x' }]);
  });
});

describe('LocalKeyRing (local)', () => {
  it('creates a 32-byte base64 key with mode 0600 on first encrypt', async () => {
    const keyFile = path.join(await fresh('kr-create'), 'state', 'keyring.key');
    const ring = new LocalKeyRing({ keyFile });
    await ring.encrypt(Buffer.from('x'));
    assert.equal(await mode(keyFile), 0o600);
    assert.equal(Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64').length, 32);
    await ring.check();
  });

  it('refuses to decrypt without its key file, and check() does not create one', async () => {
    const keyFile = path.join(await fresh('kr-missing'), 'keyring.key');
    const ciphertext = await new LocalKeyRing({ keyFile }).encrypt(Buffer.from('secret'));
    await rm(keyFile);
    const ring = new LocalKeyRing({ keyFile });
    await assert.rejects(
      ring.decrypt(ciphertext),
      (err: unknown) =>
        codeOf(err) === 'KEYRING' && /is missing; values encrypted with it cannot be decrypted/.test((err as Error).message),
    );
    await assert.rejects(ring.check(), (err: unknown) => codeOf(err) === 'KEYRING');
    await assert.rejects(stat(keyFile), { code: 'ENOENT' });
  });

  it('reports a corrupted key file', async () => {
    const dir = await fresh('kr-corrupt');
    for (const [i, content] of [
      'not base64 at all!',
      Buffer.alloc(16).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      '',
    ].entries()) {
      const keyFile = path.join(dir, `k${i}.key`);
      await writeFile(keyFile, content, { mode: 0o600 });
      const ring = new LocalKeyRing({ keyFile });
      const corrupted = (err: unknown) =>
        codeOf(err) === 'KEYRING' && (err as Error).message.includes(`keyring file ${keyFile} is corrupted (expected 32 bytes, base64)`);
      await assert.rejects(ring.encrypt(Buffer.from('x')), corrupted);
      await assert.rejects(ring.decrypt(Buffer.alloc(40)), corrupted);
      await assert.rejects(ring.check(), corrupted);
    }
  });

  it('works with a too-open key file but check() names the mode and the fix', async () => {
    const keyFile = path.join(await fresh('kr-mode'), 'keyring.key');
    const ring = new LocalKeyRing({ keyFile });
    const ciphertext = await ring.encrypt(Buffer.from('still fine'));
    await chmod(keyFile, 0o644);
    assert.equal((await ring.decrypt(ciphertext)).toString(), 'still fine');
    await assert.rejects(ring.check(), (err: unknown) => {
      const e = err as { code?: string; message: string; suggestion?: string };
      return e.code === 'KEYRING' && e.message.includes('0644') && e.suggestion === `chmod 600 ${keyFile}`;
    });
  });

  it('cannot decrypt what another key encrypted', async () => {
    const dir = await fresh('kr-other');
    const ciphertext = await new LocalKeyRing({ keyFile: path.join(dir, 'a.key') }).encrypt(Buffer.from('x'));
    const other = new LocalKeyRing({ keyFile: path.join(dir, 'b.key') });
    await other.encrypt(Buffer.from('make b exist'));
    await assert.rejects(other.decrypt(ciphertext), (err: unknown) => codeOf(err) === 'KEYRING');
  });

  it('ends up with one key when processes race to create it', { timeout: 60_000 }, async () => {
    const dir = await fresh('kr-race');
    const keyFile = path.join(dir, 'keyring.key');
    const startAt = startSoon();
    const children = Array.from({ length: 4 }, (_, i) => child('keyring-encrypt.ts', [keyFile, `child-${i}`, startAt]));
    const local = Array.from({ length: 4 }, (_, i) => new LocalKeyRing({ keyFile }).encrypt(Buffer.from(`local-${i}`)));
    const ciphertexts = [...(await Promise.all(children)).map((b64) => Buffer.from(b64, 'base64')), ...(await Promise.all(local))];
    const ring = new LocalKeyRing({ keyFile });
    const plain = await Promise.all(ciphertexts.map(async (c) => (await ring.decrypt(c)).toString()));
    assert.deepEqual(plain, ['child-0', 'child-1', 'child-2', 'child-3', 'local-0', 'local-1', 'local-2', 'local-3']);
    assert.deepEqual(await readdir(dir), ['keyring.key']);
  });
});

describe('FileSecretStore (local)', () => {
  it('lays secrets out as configs/<tenant>/secrets/<name>.txt (0600 in a 0700 folder)', async () => {
    const workspaceRoot = await fresh('sec-layout');
    const systemDir = path.join(workspaceRoot, '.convergence', 'secrets');
    const store = new FileSecretStore({ workspaceRoot, systemDir });
    await store.put('acme_corp', 'usage_api_token', 'tok');
    await store.put(null, 'admin-api-key-local', 'adm');
    const tenantFile = path.join(workspaceRoot, 'configs', 'acme_corp', 'secrets', 'usage_api_token.txt');
    assert.equal(await readFile(tenantFile, 'utf8'), 'tok');
    assert.equal(await mode(tenantFile), 0o600);
    assert.equal(await mode(path.dirname(tenantFile)), 0o700);
    assert.equal(await readFile(path.join(systemDir, 'admin-api-key-local.txt'), 'utf8'), 'adm');
    assert.equal(await mode(path.join(systemDir, 'admin-api-key-local.txt')), 0o600);
    assert.equal(await mode(systemDir), 0o700);
    assert.deepEqual(await readdir(path.dirname(tenantFile)), ['usage_api_token.txt'], 'no temp files left behind');
  });

  it('reads hand-written files, trimming exactly one trailing newline', async () => {
    const workspaceRoot = await fresh('sec-hand');
    const dir = path.join(workspaceRoot, 'configs', 'acme_corp', 'secrets');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'one.txt'), 'value\n');
    await writeFile(path.join(dir, 'crlf.txt'), 'value\r\n');
    await writeFile(path.join(dir, 'two.txt'), 'value\n\n');
    await writeFile(path.join(dir, 'notes.md'), 'not a secret');
    await writeFile(path.join(dir, '.one.txt.abc.tmp'), 'half');
    const store = new FileSecretStore({ workspaceRoot, systemDir: path.join(workspaceRoot, 'sys') });
    assert.equal(await store.get('acme_corp', 'one'), 'value');
    assert.equal(await store.get('acme_corp', 'crlf'), 'value');
    assert.equal(await store.get('acme_corp', 'two'), 'value\n');
    assert.deepEqual(await store.list('acme_corp'), ['crlf', 'one', 'two']);
  });

  it('never leaves a half-written secret when writes race', async () => {
    const workspaceRoot = await fresh('sec-race');
    const store = new FileSecretStore({ workspaceRoot, systemDir: path.join(workspaceRoot, 'sys') });
    const values = Array.from({ length: 20 }, (_, i) => `value-${i}-`.repeat(5000));
    await Promise.all(values.map((v) => store.put('acme_corp', 'token', v)));
    assert.ok(values.includes((await store.get('acme_corp', 'token'))!));
    assert.deepEqual(await readdir(path.join(workspaceRoot, 'configs', 'acme_corp', 'secrets')), ['token.txt']);
  });
});

interface Grant {
  acquired: boolean;
  token?: number;
  from?: number;
  until?: number;
}

/**
 * The safety property of a lease: no two grants overlap in time, and tokens rise with time.
 * (Under heavy load a racer may legitimately take over a lease that expired while it waited,
 * so "one winner per round" is only asserted where the ttl leaves no room for that.)
 */
function assertNoOverlap(grants: Grant[], afterToken: number): void {
  const sorted = [...grants].sort((a, b) => a.token! - b.token!);
  assert.equal(new Set(sorted.map((g) => g.token)).size, sorted.length, 'tokens are unique');
  assert.ok(sorted[0]!.token! > afterToken);
  for (let i = 1; i < sorted.length; i++) {
    const [prev, next] = [sorted[i - 1]!, sorted[i]!];
    assert.ok(next.from! >= prev.until!, `token ${next.token} granted at ${next.from} while token ${prev.token} held until ${prev.until}`);
  }
}

describe('FileLock (local)', () => {
  it('keeps one flat file per key, named safely', async () => {
    const dir = await fresh('lock-names');
    const lock = new FileLock({ dir });
    const result = await lock.acquire('run/acme_corp/p1', { owner: 'me', ttlMs: 60_000 });
    assert.ok(result.acquired);
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ['run%2Facme_corp%2Fp1.fence', 'run%2Facme_corp%2Fp1.lock']);
    const record = JSON.parse(await readFile(path.join(dir, 'run%2Facme_corp%2Fp1.lock'), 'utf8'));
    assert.equal(record.owner, 'me');
    assert.equal(await readFile(path.join(dir, 'run%2Facme_corp%2Fp1.fence'), 'utf8'), String(result.lease.token));
  });

  it('lets exactly one of 8 processes acquire', { timeout: 60_000 }, async () => {
    const dir = await fresh('lock-xproc');
    const startAt = startSoon();
    const outputs = await Promise.all(Array.from({ length: 8 }, (_, i) => child('lock-acquirer.ts', [dir, 'run/x', `proc-${i}`, startAt])));
    const results = outputs.map((o) => (JSON.parse(o) as Array<{ acquired: boolean; holder?: string }>)[0]!);
    assert.equal(results.filter((r) => r.acquired).length, 1);
    const winner = `proc-${results.findIndex((r) => r.acquired)}`;
    for (const r of results.filter((r) => !r.acquired)) assert.equal(r.holder, winner);
  });

  it('lets one of 8 processes take over each stale lease, round after round', { timeout: 60_000 }, async () => {
    const dir = await fresh('lock-xproc-stale');
    const stale = await new FileLock({ dir }).acquire('run/x', { owner: 'crashed', ttlMs: 1 });
    assert.ok(stale.acquired);
    // Each round's lease (ttl 300 ms) has expired when the next round starts 500 ms later.
    const rounds = 6;
    const startAt = startSoon();
    const outputs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => child('lock-acquirer.ts', [dir, 'run/x', `proc-${i}`, startAt, String(rounds), '500', '300'])),
    );
    const perChild = outputs.map((o) => JSON.parse(o) as Grant[]);
    const grants = perChild.flat().filter((g) => g.acquired);
    assert.ok(grants.length >= rounds, 'every round has a winner');
    assertNoOverlap(grants, stale.lease.token);
  });

  it('survives repeated in-process stale takeovers by 8 racers', async () => {
    const lock = new FileLock({ dir: await fresh('lock-rounds') });
    const grants: Grant[] = [];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => lock.acquire('k', { owner: `r${round}-${i}`, ttlMs: 150 })));
      const won = results.flatMap((r) => (r.acquired ? [r.lease] : []));
      assert.ok(won.length >= 1, `round ${round} has a winner`);
      grants.push(...won.map((l) => ({ acquired: true, token: l.token, from: l.acquiredAt.getTime(), until: l.expiresAt.getTime() })));
      await sleep(200);
    }
    assertNoOverlap(grants, 0);
  });

  it('treats an unreadable lock file as stale', async () => {
    const dir = await fresh('lock-garbage');
    await writeFile(path.join(dir, 'k.lock'), '{"owner": "half');
    const result = await new FileLock({ dir }).acquire('k', { owner: 'me', ttlMs: 60_000 });
    assert.ok(result.acquired);
  });

  it('never reissues the token of a holder that crashed before recording its fence', async () => {
    const dir = await fresh('lock-fence');
    const past = new Date(Date.now() - 10_000).toISOString();
    await writeFile(path.join(dir, 'k.fence'), '3');
    await writeFile(
      path.join(dir, 'k.lock'),
      JSON.stringify({ key: 'k', owner: 'crashed', token: 10, acquiredAt: past, expiresAt: past, nonce: 'n' }),
    );
    const result = await new FileLock({ dir }).acquire('k', { owner: 'me', ttlMs: 60_000 });
    assert.ok(result.acquired);
    assert.equal(result.lease.token, 11);
    assert.equal(await readFile(path.join(dir, 'k.fence'), 'utf8'), '11');
  });

  it('rejects empty keys and non-positive ttls', async () => {
    const lock = new FileLock({ dir: await fresh('lock-validate') });
    await assert.rejects(lock.acquire('', { owner: 'me', ttlMs: 1000 }), (err: unknown) => (err as { exitCode?: number }).exitCode === 2);
    await assert.rejects(lock.acquire('k', { owner: 'me', ttlMs: 0 }), (err: unknown) => (err as { exitCode?: number }).exitCode === 2);
  });
});
