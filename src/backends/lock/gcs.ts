import { randomBytes } from 'node:crypto';
import type { Storage } from '@google-cloud/storage';
import { ConvergenceError, ExitCode, validationError } from '../../lib/errors.ts';
import { toConvergenceError } from '../gcp/errors.ts';
import type { AcquireOptions, AcquireResult, Lease, Lock, LockHolder } from './port.ts';
import { assertTtl, holderOf, leaseOf, lockLost } from './records.ts';

/**
 * Leases as Cloud Storage objects, one per key: `<prefix><encodeURIComponent(key)>.json`, whose
 * body is the current lease (or the last one, marked released). Every change is a compare-and-set
 * on the object's generation (`ifGenerationMatch`: 0 for "must not exist", otherwise the
 * generation we read), and GCS applies those atomically, so of any number of racers exactly one
 * creates, takes over, renews or releases a given version of the lease; the others get 412 and
 * look again.
 *
 * The object is never deleted: a released lease keeps its token, so fencing tokens keep
 * increasing across releases, takeovers and force-releases. Deleting lock objects by hand resets
 * a key's tokens; use forceRelease instead.
 *
 * Expiry is judged on the local clock of whoever reads the lease: GCS has no lease semantics of its
 * own, and server time is only available to the second (Date header), too coarse for short TTLs.
 * Clock skew between hosts shifts expiry by the skew. Holders renew every third of the TTL, so a
 * live lease always has two thirds of its TTL left, and a taker whose clock runs ahead by less than
 * that cannot judge it stale; a holder checks its own expiry strictly, so it gives up no later than
 * its own clock says.
 *
 * Retries are the client's: it retries 429, 5xx and dropped connections of reads, and of writes
 * only when they carry a precondition (its default RetryConditional strategy), which every write
 * here does; a client built with RetryNever would surface them as GCP_UNAVAILABLE instead. A 412
 * is never retried blindly: it means someone else changed the lease, so we read it again and
 * decide anew. A retried write whose first attempt landed before its response was lost also comes
 * back 412; the write id in the body tells us it was our own write.
 */
export interface GcsLockOptions {
  storage: Storage;
  bucket: string;
  /** Object name prefix, default `locks/`. */
  prefix?: string;
  /** Milliseconds since the epoch; defaults to Date.now. */
  clock?: () => number;
}

interface LeaseRecord {
  key: string;
  state: 'held' | 'released';
  owner: string;
  token: number;
  acquiredAt: string;
  expiresAt: string;
  info?: Record<string, string>;
  releasedAt?: string;
  writeId: string;
}

/** What one read saw: generation 0 when there is no object; `record` undefined if its body is not a lease. */
interface Observed {
  generation: number;
  record: LeaseRecord | undefined;
}

type Written = { written: true } | { written: false; seen: Observed };

/** The role that carries get, create and delete (overwriting an object needs delete as well). */
const REQUIRED_ROLE = 'roles/storage.objectAdmin';
const MAX_ATTEMPTS = 20;
const MAX_KEY_LENGTH = 200;
const MAX_OBJECT_NAME_BYTES = 1024;

const unique = () => randomBytes(8).toString('hex');

function parse(raw: string, key: string): LeaseRecord | undefined {
  try {
    const record = JSON.parse(raw) as LeaseRecord;
    if (record.key !== key || (record.state !== 'held' && record.state !== 'released')) return undefined;
    if (typeof record.owner !== 'string' || !Number.isSafeInteger(record.token) || record.token < 0) return undefined;
    if (Number.isNaN(Date.parse(record.acquiredAt)) || Number.isNaN(Date.parse(record.expiresAt))) return undefined;
    return record;
  } catch {
    return undefined;
  }
}

function contended(key: string): ConvergenceError {
  return new ConvergenceError(
    'LOCK_CONTENDED',
    ExitCode.alreadyRunning,
    `lock ${key} kept changing hands; gave up after ${MAX_ATTEMPTS} attempts`,
    {
      suggestion: 'retry in a moment',
    },
  );
}

interface GoogleError {
  code?: number | string;
  message?: string;
  errors?: { reason?: string; message?: string }[];
}

const statusOf = (err: unknown): number | undefined => {
  const code = (err as GoogleError | undefined)?.code;
  return typeof code === 'number' ? code : typeof code === 'string' && /^\d{3}$/.test(code) ? Number(code) : undefined;
};

/** Media downloads put the raw response body in `message`, which may itself be a JSON error. */
function messageOf(err: unknown): string {
  const text = (err as GoogleError | undefined)?.message ?? String(err);
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string } };
      if (parsed.error?.message) return parsed.error.message;
    } catch {
      // not JSON after all: keep the text
    }
  }
  return text;
}

const bucketMissing = (err: unknown) => statusOf(err) === 404 && /bucket does not exist/i.test(messageOf(err));

export class GcsLock implements Lock {
  readonly describe: string;
  readonly #storage: Storage;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #now: () => number;

  constructor(options: GcsLockOptions) {
    if (!options.bucket) throw validationError('GcsLock needs a bucket');
    this.#storage = options.storage;
    this.#bucket = options.bucket;
    this.#prefix = options.prefix ?? 'locks/';
    this.#now = options.clock ?? Date.now;
    this.describe = `lock objects in gs://${this.#bucket}/${this.#prefix}`;
  }

  async acquire(key: string, options: AcquireOptions): Promise<AcquireResult> {
    const name = this.#objectName(key);
    assertTtl(options.ttlMs);
    if (!options.owner) throw validationError('lock owner must not be empty');
    let seen = await this.#read(name, key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const now = this.#now();
      if (seen.record?.state === 'held' && !this.#expired(seen.record, now)) return { acquired: false, holder: holderOf(seen.record) };
      const record: LeaseRecord = {
        key,
        state: 'held',
        owner: options.owner,
        token: nextToken(seen),
        acquiredAt: new Date(now).toISOString(),
        expiresAt: new Date(now + options.ttlMs).toISOString(),
        writeId: unique(),
      };
      if (options.info) record.info = { ...options.info };
      const outcome = await this.#write(name, key, record, seen.generation);
      if (outcome.written) return { acquired: true, lease: leaseOf(record) };
      seen = outcome.seen;
    }
    throw contended(key);
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    assertTtl(ttlMs);
    const name = this.#objectName(lease.key);
    let seen = await this.#read(name, lease.key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = seen.record;
      const now = this.#now();
      if (!record || record.state !== 'held' || !same(record, lease) || this.#expired(record, now))
        throw lockLost(lease, record?.state === 'held' ? holderOf(record) : null);
      const renewed: LeaseRecord = { ...record, expiresAt: new Date(now + ttlMs).toISOString(), writeId: unique() };
      // Losing the race here means a takeover or force-release (the next round says LOCK_LOST) or
      // a concurrent renewal of our own (the next round finds the lease still ours).
      const outcome = await this.#write(name, lease.key, renewed, seen.generation);
      if (outcome.written) return leaseOf(renewed);
      seen = outcome.seen;
    }
    throw contended(lease.key);
  }

  async release(lease: Lease): Promise<boolean> {
    const name = this.#objectName(lease.key);
    let seen = await this.#read(name, lease.key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const record = seen.record;
      if (!record || record.state !== 'held' || !same(record, lease)) return false;
      const released: LeaseRecord = { ...record, state: 'released', releasedAt: new Date(this.#now()).toISOString(), writeId: unique() };
      const outcome = await this.#write(name, lease.key, released, seen.generation);
      if (outcome.written) return true;
      seen = outcome.seen;
    }
    throw contended(lease.key);
  }

  async inspect(key: string): Promise<LockHolder | undefined> {
    const record = (await this.#read(this.#objectName(key), key)).record;
    return record?.state === 'held' && !this.#expired(record, this.#now()) ? holderOf(record) : undefined;
  }

  async forceRelease(key: string): Promise<boolean> {
    const name = this.#objectName(key);
    let seen = await this.#read(name, key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (seen.generation === 0 || seen.record?.state === 'released') return false;
      const now = new Date(this.#now()).toISOString();
      const released: LeaseRecord = seen.record
        ? { ...seen.record, state: 'released', releasedAt: now, writeId: unique() }
        : {
            key,
            state: 'released',
            owner: '',
            token: nextToken(seen) - 1,
            acquiredAt: now,
            expiresAt: now,
            releasedAt: now,
            writeId: unique(),
          };
      const outcome = await this.#write(name, key, released, seen.generation);
      if (outcome.written) return true;
      seen = outcome.seen;
    }
    throw contended(key);
  }

  #expired(record: LeaseRecord, now: number): boolean {
    return Date.parse(record.expiresAt) <= now;
  }

  #objectName(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw validationError(`lock key must be 1-${MAX_KEY_LENGTH} characters, got ${JSON.stringify(key)}`);
    }
    // Encoding keeps keys that differ only in slashes or escapes apart, e.g. `run/a/b` and `run%2Fa%2Fb`.
    const name = `${this.#prefix}${encodeURIComponent(key)}.json`;
    if (Buffer.byteLength(name) > MAX_OBJECT_NAME_BYTES) {
      throw validationError(`lock key ${JSON.stringify(key)} is too long for an object name`);
    }
    return name;
  }

  #file(name: string) {
    return this.#storage.bucket(this.#bucket).file(name);
  }

  /**
   * The lease and the generation it was read at, from one media download: GCS sends the
   * generation of the bytes it served in `x-goog-generation`, so the pair is consistent even while
   * others write.
   */
  async #read(name: string, key: string): Promise<Observed> {
    let generation: number | undefined;
    const chunks: Buffer[] = [];
    try {
      const stream = this.#file(name).createReadStream();
      stream.on('response', (res: { statusCode?: number; headers?: Record<string, string | string[] | undefined> }) => {
        // Only the answer that carries the bytes counts; retried attempts may answer first.
        if (res.statusCode !== undefined && (res.statusCode < 200 || res.statusCode > 299)) return;
        const header = res.headers?.['x-goog-generation'];
        if (typeof header === 'string') generation = Number(header);
      });
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch (err) {
      if (statusOf(err) === 404 && !bucketMissing(err)) return { generation: 0, record: undefined };
      throw this.#failure(err, 'read');
    }
    if (!generation || !Number.isSafeInteger(generation)) {
      throw new ConvergenceError(
        'GCS_PROTOCOL',
        ExitCode.unexpected,
        `gs://${this.#bucket}/${name} was served without a usable generation`,
      );
    }
    return { generation, record: parse(Buffer.concat(chunks).toString('utf8'), key) };
  }

  /**
   * Writes `record` if the object is still at `generation` (0: must not exist). When the write is
   * refused (412) or its outcome is unclear (a failure after which it may still have landed), the
   * object is read back: our write id there means it landed; otherwise a 412 hands the caller what
   * is there now, so it can decide again without another read.
   */
  async #write(name: string, key: string, record: LeaseRecord, generation: number): Promise<Written> {
    try {
      await this.#file(name).save(JSON.stringify(record), {
        resumable: false,
        contentType: 'application/json',
        preconditionOpts: { ifGenerationMatch: generation },
      });
      return { written: true };
    } catch (err) {
      let after: Observed;
      try {
        after = await this.#read(name, key);
      } catch (readErr) {
        throw statusOf(err) === 412 ? readErr : this.#failure(err, 'write');
      }
      if (after.record?.writeId === record.writeId) return { written: true };
      if (statusOf(err) === 412) return { written: false, seen: after };
      throw this.#failure(err, 'write');
    }
  }

  #failure(err: unknown, action: 'read' | 'write'): ConvergenceError {
    const bucket = `gs://${this.#bucket}`;
    // A download answers 404 for a missing object too, but that is "free", never an error here.
    if (statusOf(err) === 404 && (action === 'write' || bucketMissing(err))) {
      return toConvergenceError(err, { what: `state bucket ${bucket}`, resource: bucket });
    }
    const detail = messageOf(err);
    const permission = /Permission '([^']+)'/.exec(detail)?.[1];
    // GCS names the caller in a denial, so the grant command can name it too.
    const principal = /^(\S+@\S+) does not have /.exec(detail)?.[1];
    const member = principal
      ? `${principal.endsWith('.gserviceaccount.com') ? 'serviceAccount' : 'user'}:${principal}`
      : 'serviceAccount:SA_EMAIL';
    return toConvergenceError(err, {
      what: `lock objects in ${bucket}/${this.#prefix}`,
      role: REQUIRED_ROLE,
      resource: `the state bucket ${bucket}`,
      grantCommand: `gcloud storage buckets add-iam-policy-binding ${bucket} --member=${member} --role=${REQUIRED_ROLE}`,
      ...(principal ? { principal } : {}),
      ...(permission ? { permission } : {}),
    });
  }
}

function same(record: LeaseRecord, lease: Lease): boolean {
  return record.token === lease.token && record.owner === lease.owner && Date.parse(record.acquiredAt) === lease.acquiredAt.getTime();
}

/**
 * The token after what was seen. An object whose body is not a lease (edited or truncated by hand)
 * lost its token; its generation stands in, because GCS generations are microsecond timestamps
 * that only grow, far above any token a counter reaches, so tokens still never go back.
 */
function nextToken(seen: Observed): number {
  if (seen.record) return seen.record.token + 1;
  return seen.generation === 0 ? 1 : seen.generation + 1;
}
