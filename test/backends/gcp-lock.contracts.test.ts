/**
 * The Lock contract against GcsLock, through the official Cloud Storage client over a real socket
 * to the in-process GCS fake; plus what only a shared object store brings: racing clients,
 * generation-precondition takeovers, retried faults, lost responses and IAM denials.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Storage } from '@google-cloud/storage';
import type { StorageOptions } from '@google-cloud/storage';
import { PassThroughClient } from 'google-auth-library';
import { GcsLock } from '../../src/backends/lock/gcs.ts';
import type { AcquireResult, Lease } from '../../src/backends/lock/port.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';
import { lockContract } from '../contracts/lock.contract.ts';
import { GcsFake } from '../fakes/gcs/server.ts';

type RetryOptions = NonNullable<StorageOptions['retryOptions']>;

const BUCKET = 'convergence-state';
const KEY = 'run/acme_corp/p_usage_daily';
const OBJECT = 'locks/run%2Facme_corp%2Fp_usage_daily.json';

/** A separate client per "process"; the shortest retry delay the client accepts (save needs >= 1 s). */
function storageFor(fake: GcsFake, retryOptions: RetryOptions = {}): Storage {
  return new Storage({
    projectId: 'p',
    apiEndpoint: fake.endpoint,
    useAuthWithCustomEndpoint: true,
    authClient: new PassThroughClient(),
    retryOptions: { maxRetryDelay: 1, ...retryOptions },
  });
}

function leaseOf(result: AcquireResult): Lease {
  assert.equal(result.acquired, true, 'expected the lock to be acquired');
  return (result as { lease: Lease }).lease;
}

const isCode = (code: string, exitCode?: number) => (err: unknown) =>
  err instanceof ConvergenceError && err.code === code && (exitCode === undefined || err.exitCode === exitCode);

lockContract('GCS objects with generation preconditions', async () => {
  const fake = await GcsFake.start({ buckets: [BUCKET] });
  return { subject: new GcsLock({ storage: storageFor(fake), bucket: BUCKET }), cleanup: () => fake.close() };
});

describe('GcsLock on the Cloud Storage fake', () => {
  let fake: GcsFake;
  let now: number;
  const clock = () => now;

  beforeEach(async () => {
    fake = await GcsFake.start({ buckets: [BUCKET] });
    now = Date.parse('2025-06-01T06:00:00Z');
  });
  afterEach(() => fake.close());

  const lockFor = (options: { retryOptions?: RetryOptions; clock?: () => number } = {}) =>
    new GcsLock({ storage: storageFor(fake, options.retryOptions), bucket: BUCKET, clock: options.clock ?? clock });

  it('keeps one JSON object per key, marked released rather than deleted, and writes only with generation preconditions', async () => {
    const lock = lockFor();
    const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000, info: { run_id: 'r1' } }));
    const held = fake.object(BUCKET, OBJECT);
    assert.ok(held, `expected ${OBJECT}, have ${fake.objects(BUCKET).map((o) => o.name)}`);
    assert.equal(held.contentType, 'application/json');
    const body = JSON.parse(held.data.toString('utf8'));
    assert.deepEqual(
      { ...body, writeId: typeof body.writeId },
      {
        key: KEY,
        state: 'held',
        owner: 'runner-a',
        token: 1,
        acquiredAt: '2025-06-01T06:00:00.000Z',
        expiresAt: '2025-06-01T06:01:00.000Z',
        info: { run_id: 'r1' },
        writeId: 'string',
      },
    );

    assert.equal(await lock.release(lease), true);
    const released = JSON.parse(fake.object(BUCKET, OBJECT)!.data.toString('utf8'));
    assert.equal(released.state, 'released');
    assert.equal(released.token, 1);
    assert.equal(await lock.inspect(KEY), undefined);
    assert.equal(leaseOf(await lock.acquire(KEY, { owner: 'runner-b', ttlMs: 60_000 })).token, 2);

    const uploads = fake.requests.filter((r) => r.method === 'POST');
    assert.equal(uploads.length, 3);
    for (const upload of uploads) {
      assert.equal(upload.query.uploadType, 'multipart', 'lock writes are single-request uploads');
      assert.match(upload.query.ifGenerationMatch ?? '', /^\d+$/, 'every write carries ifGenerationMatch');
    }
    assert.equal(uploads[0]!.query.ifGenerationMatch, '0');
    assert.ok(!fake.requests.some((r) => r.method === 'DELETE'));
  });

  it('lets exactly one of two clients win each of 20 rounds, never retrying a refused write blindly', async () => {
    const clients = [lockFor(), lockFor()];
    let lastToken = 0;
    for (let round = 0; round < 20; round++) {
      const before = fake.requests.length;
      // Two racers per client, four in all, on the same key.
      const results = await Promise.all(
        clients.flatMap((lock, c) =>
          [0, 1].map((i) => lock.acquire(KEY, { owner: `client-${c}-racer-${i}-round-${round}`, ttlMs: 60_000 })),
        ),
      );
      const winners = results.filter((r) => r.acquired);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
      const winner = leaseOf(winners[0]!);
      assert.ok(winner.token > lastToken, `round ${round}: token ${winner.token} after ${lastToken}`);
      lastToken = winner.token;
      for (const loser of results) if (!loser.acquired) assert.equal(loser.holder.owner, winner.owner);

      const writes = fake.requests.slice(before).filter((r) => r.method === 'POST');
      // Each racer writes at most once against the generation it read: a 412 sends it back to read.
      assert.ok(writes.length <= 4, `round ${round}: ${writes.length} writes`);
      assert.equal(writes.filter((r) => r.status === 200).length, 1);
      assert.equal(writes.filter((r) => r.status === 412).length, writes.length - 1);
      const released = await clients[round % 2]!.release(winner);
      assert.equal(released, true);
    }
  });

  it('lets exactly one of two clients take over a stale lease, with the next token', async () => {
    for (let round = 0; round < 10; round++) {
      const key = `${KEY}/${round}`;
      const crashed = leaseOf(await lockFor().acquire(key, { owner: 'crashed', ttlMs: 1_000 }));
      const later = () => now + 5_000;
      const results = await Promise.all([
        lockFor({ clock: later }).acquire(key, { owner: 'taker-1', ttlMs: 60_000 }),
        lockFor({ clock: later }).acquire(key, { owner: 'taker-2', ttlMs: 60_000 }),
      ]);
      const winners = results.filter((r) => r.acquired);
      assert.equal(winners.length, 1, `round ${round}`);
      const winner = leaseOf(winners[0]!);
      assert.equal(winner.token, crashed.token + 1);
      const loser = results.find((r) => !r.acquired);
      if (loser && !loser.acquired) assert.equal(loser.holder.owner, winner.owner);
    }
  });

  it('fails renewal with LOCK_LOST after a takeover, and leaves the taker alone', async () => {
    const first = lockFor();
    const stale = leaseOf(await first.acquire(KEY, { owner: 'slow', ttlMs: 1_000 }));
    const taker = lockFor({ clock: () => now + 2_000 });
    const fresh = leaseOf(await taker.acquire(KEY, { owner: 'taker', ttlMs: 60_000 }));
    // Even a holder whose clock still calls its lease valid learns it was taken.
    await assert.rejects(first.renew(stale, 60_000), isCode('LOCK_LOST', 5));
    assert.equal(await first.release(stale), false);
    const holder = await taker.inspect(KEY);
    assert.equal(holder?.owner, 'taker');
    assert.equal(holder?.token, fresh.token);
    assert.equal((await taker.renew(fresh, 60_000)).token, fresh.token);
  });

  it('retries a 503 burst on the conditional write and a 429 on the read of acquire, and grants one lease', async () => {
    const lock = lockFor();
    fake.inject({ method: 'GET', path: /\/o\/locks\//, status: 429 });
    fake.inject({ method: 'POST', path: /^\/upload\//, status: 503, times: 2 });
    const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000 }));
    assert.equal(lease.token, 1);
    const log = fake.requests.map((r) => `${r.method} ${r.status}`);
    assert.deepEqual(log, ['GET 429', 'GET 404', 'POST 503', 'POST 503', 'POST 200']);
    // The generation renew writes against comes from the answer that carried the bytes, not the 503.
    fake.inject({ method: 'GET', path: /\/o\/locks\//, status: 503 });
    assert.equal((await lock.renew(lease, 120_000)).expiresAt.getTime(), now + 120_000);
    assert.equal((await lock.inspect(KEY))?.owner, 'runner-a');
  });

  it('recognises its own write when the response was lost and the retry met its own precondition', async () => {
    const lock = lockFor();
    fake.inject({ method: 'POST', path: /^\/upload\//, status: 503, afterApply: true });
    const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000 }));
    assert.equal(lease.token, 1);
    assert.deepEqual(
      fake.requests.filter((r) => r.method === 'POST').map((r) => r.status),
      [503, 412],
      'the write landed, the retry was refused by its own precondition',
    );
    assert.equal((await lock.inspect(KEY))?.owner, 'runner-a');

    fake.inject({ method: 'POST', path: /^\/upload\//, status: 503, afterApply: true });
    const renewed = await lock.renew(lease, 120_000);
    assert.equal(renewed.expiresAt.getTime(), now + 120_000);
    fake.inject({ method: 'POST', path: /^\/upload\//, status: 503, afterApply: true });
    assert.equal(await lock.release(renewed), true);
    assert.equal(await lock.inspect(KEY), undefined);
  });

  it('gives up with GCP_UNAVAILABLE once the client ran out of retries', async () => {
    const lock = lockFor({ retryOptions: { maxRetries: 1 } });
    fake.inject({ method: 'POST', path: /^\/upload\//, status: 503, times: 5 });
    await assert.rejects(lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000 }), isCode('GCP_UNAVAILABLE', 1));
    assert.equal(fake.requests.filter((r) => r.method === 'POST').length, 2);
  });

  it('answers a denied read with exit 7, the missing permission and the role to grant', async () => {
    const lock = lockFor();
    fake.deny(BUCKET, { principal: 'runner@p.iam.gserviceaccount.com' });
    await assert.rejects(lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000 }), (err: unknown) => {
      assert.ok(err instanceof ConvergenceError);
      assert.equal(err.exitCode, 7);
      assert.match(err.message, /runner@p\.iam\.gserviceaccount\.com does not have storage\.objects\.get access/);
      assert.match(err.suggestion ?? '', /roles\/storage\.objectAdmin/);
      assert.match(err.suggestion ?? '', new RegExp(`gs://${BUCKET}`));
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.match(
        err.suggestion ?? '',
        /add-iam-policy-binding gs:\/\/convergence-state --member=serviceAccount:runner@p\.iam\.gserviceaccount\.com --role=roles\/storage\.objectAdmin/,
      );
      assert.equal(err.data?.permission, 'storage.objects.get');
      assert.equal(err.data?.role, 'roles/storage.objectAdmin');
      assert.equal(err.data?.httpStatus, 403);
      return true;
    });
    assert.equal(fake.requests.length, 1, 'a 403 is not retried');
  });

  it('answers a read-only identity with exit 7 naming storage.objects.create, and an overwrite needing delete', async () => {
    const lock = lockFor();
    fake.deny(BUCKET, { permissions: ['storage.objects.create', 'storage.objects.delete'] });
    await assert.rejects(lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000 }), (err: unknown) => {
      assert.ok(err instanceof ConvergenceError && err.exitCode === 7);
      assert.equal(err.data?.permission, 'storage.objects.create');
      return true;
    });
    fake.allow(BUCKET);
    const lease = leaseOf(await lock.acquire(KEY, { owner: 'runner-a', ttlMs: 60_000 }));
    fake.deny(BUCKET, { permissions: ['storage.objects.delete'] });
    await assert.rejects(lock.renew(lease, 60_000), (err: unknown) => {
      assert.ok(err instanceof ConvergenceError && err.exitCode === 7);
      assert.equal(err.data?.permission, 'storage.objects.delete');
      return true;
    });
  });

  it('answers a missing state bucket with exit 8', async () => {
    const lock = new GcsLock({ storage: storageFor(fake), bucket: 'no-such-bucket' });
    await assert.rejects(lock.inspect(KEY), isCode('NOT_FOUND', 8));
    await assert.rejects(lock.acquire(KEY, { owner: 'a', ttlMs: 1_000 }), isCode('NOT_FOUND', 8));
  });

  it('takes over an object that is not a lease with a token above any issued, and force-releases it', async () => {
    const lock = lockFor();
    for (let i = 0; i < 3; i++) await lock.release(leaseOf(await lock.acquire(KEY, { owner: `seq-${i}`, ttlMs: 60_000 })));
    const garbage = fake.putObject(BUCKET, OBJECT, '{"truncated', 'application/json');
    assert.equal(await lock.inspect(KEY), undefined);
    const taken = leaseOf(await lock.acquire(KEY, { owner: 'after-garbage', ttlMs: 60_000 }));
    assert.ok(taken.token > 3 && taken.token > garbage.generation, `token ${taken.token}`);
    assert.equal(await lock.release(taken), true);

    fake.putObject(BUCKET, OBJECT, 'not json at all');
    assert.equal(await lock.forceRelease(KEY), true);
    assert.equal(await lock.forceRelease(KEY), false);
    const next = leaseOf(await lock.acquire(KEY, { owner: 'next', ttlMs: 60_000 }));
    assert.ok(next.token > taken.token);
  });
});
