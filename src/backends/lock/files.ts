import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConvergenceError, ExitCode, validationError } from '../../lib/errors.ts';
import type { AcquireOptions, AcquireResult, Lease, Lock, LockHolder } from './port.ts';

/**
 * Leases as files in one folder: `<key>.lock` holds the current lease, `<key>.fence` the last
 * fencing token issued. A lease file is always written whole to a temp file first and then
 * linked (create) or renamed (renew) into place, so a reader never sees half of one.
 */
interface LockRecord {
  key: string;
  owner: string;
  token: number;
  acquiredAt: string;
  expiresAt: string;
  info?: Record<string, string>;
  /** Makes every acquisition's file unique, so a stale file is recognised byte for byte. */
  nonce: string;
}

const MAX_ATTEMPTS = 20;

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;
const unique = () => randomBytes(8).toString('hex');

function parse(raw: string): LockRecord | undefined {
  try {
    const record = JSON.parse(raw) as LockRecord;
    if (typeof record.owner !== 'string' || !Number.isSafeInteger(record.token)) return undefined;
    if (Number.isNaN(Date.parse(record.expiresAt)) || Number.isNaN(Date.parse(record.acquiredAt))) return undefined;
    return record;
  } catch {
    return undefined;
  }
}

function holderOf(record: LockRecord): LockHolder {
  const holder: LockHolder = {
    owner: record.owner,
    token: record.token,
    acquiredAt: new Date(record.acquiredAt),
    expiresAt: new Date(record.expiresAt),
  };
  if (record.info) holder.info = { ...record.info };
  return holder;
}

const expired = (record: LockRecord, now = Date.now()) => Date.parse(record.expiresAt) <= now;

function assertTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw validationError(`lock ttl must be a positive number of ms, got ${ttlMs}`);
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
    const { lockFile } = await this.#paths(key);
    assertTtl(options.ttlMs);
    if (!options.owner) throw validationError('lock owner must not be empty');
    let lastStaleToken = 0;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = Date.now();
      const record: LockRecord = {
        key,
        owner: options.owner,
        token: Math.max(await this.#fence(key), lastStaleToken) + 1,
        acquiredAt: new Date(now).toISOString(),
        expiresAt: new Date(now + options.ttlMs).toISOString(),
        nonce: unique(),
      };
      if (options.info) record.info = { ...options.info };
      if (await this.#create(lockFile, record)) return { acquired: true, lease: await this.#settle(key, record, lastStaleToken) };

      const current = await this.#read(lockFile);
      if (!current) continue; // released between our attempt and the read
      if (current.record && !expired(current.record)) return { acquired: false, holder: holderOf(current.record) };
      const outcome = await this.#removeStale(lockFile, current.raw);
      if (outcome.kind === 'held') return { acquired: false, holder: holderOf(outcome.record) };
      if (outcome.kind === 'removed') lastStaleToken = Math.max(lastStaleToken, outcome.token);
    }
    const current = await this.#read(lockFile);
    if (current?.record) return { acquired: false, holder: holderOf(current.record) };
    throw new ConvergenceError('LOCK_CONTENDED', ExitCode.alreadyRunning, `lock ${key} kept changing hands; gave up after ${MAX_ATTEMPTS} attempts`, {
      suggestion: 'retry in a moment',
    });
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    assertTtl(ttlMs);
    const { lockFile } = await this.#paths(lease.key);
    const current = await this.#read(lockFile);
    const record = current?.record;
    if (!record || !this.#same(record, lease) || expired(record)) {
      throw new ConvergenceError('LOCK_LOST', ExitCode.alreadyRunning, `lease on ${lease.key} (token ${lease.token}) expired or was taken over`, {
        data: { key: lease.key, token: lease.token, holder: record ? holderOf(record) : null },
      });
    }
    const renewed: LockRecord = { ...record, expiresAt: new Date(Date.now() + ttlMs).toISOString() };
    await this.#writeAtomic(lockFile, JSON.stringify(renewed));
    return { ...holderOf(renewed), key: lease.key };
  }

  async release(lease: Lease): Promise<boolean> {
    const { lockFile } = await this.#paths(lease.key);
    const current = await this.#read(lockFile);
    if (!current?.record || !this.#same(current.record, lease)) return false;
    // Moving the file aside first means a takeover racing us is detected, never deleted.
    const aside = `${lockFile}.${unique()}.releasing`;
    try {
      await rename(lockFile, aside);
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw err;
    }
    const moved = await readFile(aside, 'utf8').catch(() => '');
    if (moved === current.raw) {
      await unlink(aside).catch(() => undefined);
      return true;
    }
    await this.#putBack(aside, lockFile);
    return false;
  }

  async inspect(key: string): Promise<LockHolder | undefined> {
    const { lockFile } = await this.#paths(key);
    const record = (await this.#read(lockFile))?.record;
    return record && !expired(record) ? holderOf(record) : undefined;
  }

  async forceRelease(key: string): Promise<boolean> {
    const { lockFile } = await this.#paths(key);
    try {
      await unlink(lockFile);
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw err;
    }
  }

  #same(record: LockRecord, lease: Lease): boolean {
    return record.token === lease.token && record.owner === lease.owner && Date.parse(record.acquiredAt) === lease.acquiredAt.getTime();
  }

  async #paths(key: string) {
    if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
      throw validationError(`lock key must be 1-200 characters, got ${JSON.stringify(key)}`);
    }
    if (!this.#dirReady) {
      await mkdir(this.#dir, { recursive: true });
      this.#dirReady = true;
    }
    const base = path.join(this.#dir, encodeURIComponent(key));
    return { lockFile: `${base}.lock`, fenceFile: `${base}.fence` };
  }

  async #fence(key: string): Promise<number> {
    const { fenceFile } = await this.#paths(key);
    try {
      const value = Number.parseInt(await readFile(fenceFile, 'utf8'), 10);
      return Number.isSafeInteger(value) && value > 0 ? value : 0;
    } catch (err) {
      if (errno(err) === 'ENOENT') return 0;
      throw err;
    }
  }

  /**
   * The token in a freshly linked lease came from a fence read before the link, which a slower
   * racer may have read before an earlier holder bumped it. Now that we hold the lease nobody
   * else writes the fence, so re-read it and, if our token is not above it, re-issue ours.
   */
  async #settle(key: string, record: LockRecord, lastStaleToken: number): Promise<Lease> {
    const { lockFile, fenceFile } = await this.#paths(key);
    const floor = Math.max(await this.#fence(key), lastStaleToken);
    let settled = record;
    if (record.token <= floor) {
      settled = { ...record, token: floor + 1 };
      await this.#writeAtomic(lockFile, JSON.stringify(settled));
    }
    await this.#writeAtomic(fenceFile, String(settled.token));
    return { ...holderOf(settled), key };
  }

  async #create(lockFile: string, record: LockRecord): Promise<boolean> {
    const temp = `${lockFile}.${unique()}.tmp`;
    await writeFile(temp, JSON.stringify(record), { flag: 'wx', mode: 0o644 });
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

  async #read(lockFile: string): Promise<{ raw: string; record: LockRecord | undefined } | undefined> {
    try {
      const raw = await readFile(lockFile, 'utf8');
      return { raw, record: parse(raw) };
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Takes a stale lease out of the way without ever deleting a live one: the file is renamed to
   * a private name and deleted only if it is byte for byte the one judged stale. If another
   * acquirer replaced it in between, it is linked back and reported as the holder. An unreadable
   * file counts as stale, since nothing would ever renew or release it.
   */
  async #removeStale(
    lockFile: string,
    staleRaw: string,
  ): Promise<{ kind: 'removed'; token: number } | { kind: 'held'; record: LockRecord } | { kind: 'gone' }> {
    const aside = `${lockFile}.${unique()}.stale`;
    try {
      await rename(lockFile, aside);
    } catch (err) {
      if (errno(err) === 'ENOENT') return { kind: 'gone' };
      throw err;
    }
    const moved = await readFile(aside, 'utf8');
    const record = parse(moved);
    if (moved === staleRaw || !record || expired(record)) {
      await unlink(aside).catch(() => undefined);
      return { kind: 'removed', token: record?.token ?? 0 };
    }
    return (await this.#putBack(aside, lockFile)) ? { kind: 'held', record } : { kind: 'gone' };
  }

  /** Restores a live lease moved aside by mistake; false if yet another lease took the slot. */
  async #putBack(aside: string, lockFile: string): Promise<boolean> {
    try {
      await link(aside, lockFile);
      return true;
    } catch (err) {
      if (errno(err) === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(aside).catch(() => undefined);
    }
  }

  async #writeAtomic(file: string, content: string): Promise<void> {
    const temp = `${file}.${unique()}.tmp`;
    try {
      await writeFile(temp, content, { flag: 'wx', mode: 0o644 });
      await rename(temp, file);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }
}
