import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConvergenceError, ExitCode, validationError } from '../../lib/errors.ts';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../../lib/private-fs.ts';
import type { AcquireOptions, AcquireResult, Lease, Lock, LockHolder } from './port.ts';
import { assertTtl, holderOf, leaseOf, lockLost } from './records.ts';

/**
 * Leases as files in one folder, per key:
 *   `<key>.lock`  the current lease, JSON, always written whole (temp file, then link or rename)
 *   `<key>.fence` the last fencing token issued
 *   `<key>.guard` a short-lived mutex around every change to an existing `.lock`
 *
 * A free key is taken with link(), which fails when the file exists, so exactly one of any
 * number of racers creates it. Everything that changes or removes an existing lease (stale
 * takeover, renew, release, force) first takes the guard, re-reads the lease and only then
 * acts. Without the guard, two processes that both judged a lease stale can each act on what
 * the other just created, and two holders result; renaming the stale file aside and putting it
 * back when it turns out to be fresh still loses that race to a third process.
 */
interface LockRecord {
  key: string;
  owner: string;
  token: number;
  acquiredAt: string;
  expiresAt: string;
  info?: Record<string, string>;
  /** Tells two acquisitions apart even when a crash made a token repeat. */
  nonce: string;
}

const MAX_ATTEMPTS = 20;
/** Guards are held for a read and a rename; one this old belongs to a crashed process. */
const GUARD_ABANDONED_MS = 5_000;
const GUARD_WAIT_MS = 15_000;

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;
const unique = () => randomBytes(8).toString('hex');

function parse(raw: string): LockRecord | undefined {
  try {
    const record = JSON.parse(raw) as LockRecord;
    if (typeof record.owner !== 'string' || !Number.isSafeInteger(record.token) || typeof record.nonce !== 'string') return undefined;
    if (Number.isNaN(Date.parse(record.expiresAt)) || Number.isNaN(Date.parse(record.acquiredAt))) return undefined;
    return record;
  } catch {
    return undefined;
  }
}

const expired = (record: LockRecord) => Date.parse(record.expiresAt) <= Date.now();

interface Paths {
  lockFile: string;
  fenceFile: string;
  guardFile: string;
}

export class FileLock implements Lock {
  readonly describe: string;
  readonly #dir: string;
  #dirReady = false;

  constructor(options: { dir: string }) {
    this.#dir = path.resolve(options.dir);
    this.describe = `lock files in ${this.#dir}`;
  }

  async acquire(key: string, options: AcquireOptions): Promise<AcquireResult> {
    const paths = await this.#paths(key);
    assertTtl(options.ttlMs);
    if (!options.owner) throw validationError('lock owner must not be empty');
    const fresh = (token: number): LockRecord => {
      const now = Date.now();
      const record: LockRecord = {
        key,
        owner: options.owner,
        token,
        acquiredAt: new Date(now).toISOString(),
        expiresAt: new Date(now + options.ttlMs).toISOString(),
        nonce: unique(),
      };
      if (options.info) record.info = { ...options.info };
      return record;
    };

    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const created = fresh((await this.#fence(paths)) + 1);
      if (await this.#create(paths.lockFile, created)) {
        const lease = await this.#settle(paths, created);
        if (lease) return { acquired: true, lease };
        continue;
      }
      const current = await this.#read(paths.lockFile);
      if (!current) continue; // released between our link and our read
      if (current.record && !expired(current.record)) return { acquired: false, holder: holderOf(current.record) };

      const outcome = await this.#guarded(paths, async (): Promise<AcquireResult | undefined> => {
        const now = await this.#read(paths.lockFile);
        if (!now) return undefined;
        if (now.record && !expired(now.record)) return { acquired: false, holder: holderOf(now.record) };
        // A holder may have crashed before recording its token in the fence; never reuse it.
        const record = fresh(Math.max(await this.#fence(paths), now.record?.token ?? 0) + 1);
        await this.#writeAtomic(paths.lockFile, JSON.stringify(record));
        await this.#writeAtomic(paths.fenceFile, String(record.token));
        return { acquired: true, lease: leaseOf(record) };
      });
      if (outcome) return outcome;
    }
    const current = await this.#read(paths.lockFile);
    if (current?.record) return { acquired: false, holder: holderOf(current.record) };
    throw new ConvergenceError(
      'LOCK_CONTENDED',
      ExitCode.alreadyRunning,
      `lock ${key} kept changing hands; gave up after ${MAX_ATTEMPTS} attempts`,
      {
        suggestion: 'retry in a moment',
      },
    );
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    assertTtl(ttlMs);
    const paths = await this.#paths(lease.key);
    return this.#guarded(paths, async () => {
      const record = (await this.#read(paths.lockFile))?.record;
      if (!record || !this.#same(record, lease) || expired(record)) throw lockLost(lease, record ? holderOf(record) : null);
      const renewed: LockRecord = { ...record, expiresAt: new Date(Date.now() + ttlMs).toISOString() };
      await this.#writeAtomic(paths.lockFile, JSON.stringify(renewed));
      return leaseOf(renewed);
    });
  }

  async release(lease: Lease): Promise<boolean> {
    const paths = await this.#paths(lease.key);
    return this.#guarded(paths, async () => {
      const record = (await this.#read(paths.lockFile))?.record;
      if (!record || !this.#same(record, lease)) return false;
      return this.#remove(paths.lockFile);
    });
  }

  async inspect(key: string): Promise<LockHolder | undefined> {
    const paths = await this.#paths(key);
    const record = (await this.#read(paths.lockFile))?.record;
    return record && !expired(record) ? holderOf(record) : undefined;
  }

  async forceRelease(key: string): Promise<boolean> {
    const paths = await this.#paths(key);
    return this.#guarded(paths, async () => {
      const record = (await this.#read(paths.lockFile))?.record;
      // The holder may not have recorded its token yet; keep the next one above it.
      if (record && record.token > (await this.#fence(paths))) await this.#writeAtomic(paths.fenceFile, String(record.token));
      return this.#remove(paths.lockFile);
    });
  }

  #same(record: LockRecord, lease: Lease): boolean {
    return record.token === lease.token && record.owner === lease.owner && Date.parse(record.acquiredAt) === lease.acquiredAt.getTime();
  }

  async #paths(key: string): Promise<Paths> {
    if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
      throw validationError(`lock key must be 1-200 characters, got ${JSON.stringify(key)}`);
    }
    if (!this.#dirReady) {
      await ensurePrivateDir(this.#dir);
      this.#dirReady = true;
    }
    const base = path.join(this.#dir, encodeURIComponent(key));
    return { lockFile: `${base}.lock`, fenceFile: `${base}.fence`, guardFile: `${base}.guard` };
  }

  async #fence(paths: Paths): Promise<number> {
    try {
      const value = Number.parseInt(await readFile(paths.fenceFile, 'utf8'), 10);
      return Number.isSafeInteger(value) && value > 0 ? value : 0;
    } catch (err) {
      if (errno(err) === 'ENOENT') return 0;
      throw err;
    }
  }

  /**
   * Records the token of a lease we just created. Its token came from a fence read before the
   * link, which a slow racer may have read before an earlier holder raised it; so re-read the
   * fence under the guard and re-issue our token above it when needed. Returns undefined if the
   * lease was already lost (it expired and was taken over before we got here).
   */
  async #settle(paths: Paths, record: LockRecord): Promise<Lease | undefined> {
    return this.#guarded(paths, async () => {
      const current = (await this.#read(paths.lockFile))?.record;
      if (current?.nonce !== record.nonce) return undefined;
      const fence = await this.#fence(paths);
      const settled = record.token > fence ? record : { ...record, token: fence + 1 };
      if (settled !== record) await this.#writeAtomic(paths.lockFile, JSON.stringify(settled));
      await this.#writeAtomic(paths.fenceFile, String(settled.token));
      return leaseOf(settled);
    });
  }

  async #guarded<T>(paths: Paths, work: () => Promise<T>): Promise<T> {
    const mine = unique();
    const deadline = Date.now() + GUARD_WAIT_MS;
    for (;;) {
      try {
        await writeFile(paths.guardFile, mine, { flag: 'wx', mode: PRIVATE_FILE_MODE });
        break;
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
      }
      await this.#breakAbandonedGuard(paths.guardFile);
      if (Date.now() > deadline) {
        throw new ConvergenceError('LOCK_CONTENDED', ExitCode.alreadyRunning, `lock guard ${paths.guardFile} stayed taken`, {
          suggestion: `retry; if no convergence process is running, delete ${paths.guardFile}`,
        });
      }
      await sleep(1 + Math.random() * 4);
    }
    try {
      return await work();
    } finally {
      if ((await readFile(paths.guardFile, 'utf8').catch(() => '')) === mine) await unlink(paths.guardFile).catch(() => undefined);
    }
  }

  /** Removes a guard left by a crashed process; a live one is put back if we moved it by mistake. */
  async #breakAbandonedGuard(guardFile: string): Promise<void> {
    let judged: string;
    try {
      if (Date.now() - (await stat(guardFile)).mtimeMs < GUARD_ABANDONED_MS) return;
      judged = await readFile(guardFile, 'utf8');
    } catch {
      return;
    }
    const aside = `${guardFile}.${unique()}.abandoned`;
    try {
      await rename(guardFile, aside);
    } catch {
      return;
    }
    if ((await readFile(aside, 'utf8').catch(() => '')) !== judged) await link(aside, guardFile).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
  }

  async #create(lockFile: string, record: LockRecord): Promise<boolean> {
    const temp = `${lockFile}.${unique()}.tmp`;
    await writeFile(temp, JSON.stringify(record), { flag: 'wx', mode: PRIVATE_FILE_MODE });
    try {
      await link(temp, lockFile);
      return true;
    } catch (err) {
      if (errno(err) === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async #remove(file: string): Promise<boolean> {
    try {
      await unlink(file);
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** undefined when there is no lease file; `record` undefined when there is one we cannot parse. */
  async #read(lockFile: string): Promise<{ record: LockRecord | undefined } | undefined> {
    try {
      return { record: parse(await readFile(lockFile, 'utf8')) };
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async #writeAtomic(file: string, content: string): Promise<void> {
    const temp = `${file}.${unique()}.tmp`;
    try {
      await writeFile(temp, content, { flag: 'wx', mode: PRIVATE_FILE_MODE });
      await rename(temp, file);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }
}
