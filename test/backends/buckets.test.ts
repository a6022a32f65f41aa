/** The buckets adapter (state bucket, bucket IAM) against the Cloud Storage fake, through the official client. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GcpBuckets } from '../../src/backends/buckets/gcp.ts';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { ExitCode, isConvergenceError } from '../../src/lib/errors.ts';
import { GcsFake } from '../fakes/gcs/server.ts';

const PROJECT = 'bucket-project';
let gcs: GcsFake;
let counter = 0;

const adapter = () =>
  new GcpBuckets(createGcpClients({ project: PROJECT, location: 'US', region: 'us-central1' }, { [ENDPOINT_VARS.storage]: gcs.endpoint }));
const freshName = () => `${PROJECT}-state-${++counter}`;

async function expectError(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure, it succeeded');
}

before(async () => {
  gcs = await GcsFake.start();
});

after(async () => {
  await gcs.close();
});

beforeEach(() => {
  gcs.clearFaults();
  gcs.denyProject([]);
});

describe('GcpBuckets', () => {
  it('creates a bucket with uniform access, public access prevention and versioning; creating it again is a no-op', async () => {
    const buckets = adapter();
    try {
      const name = freshName();
      assert.deepEqual(await buckets.inspect(name), { kind: 'missing' });
      await buckets.create(name, { location: 'EU' });
      await buckets.create(name, { location: 'EU' });
      assert.deepEqual(await buckets.inspect(name), {
        kind: 'ours',
        location: 'EU',
        uniformAccess: true,
        publicAccessPrevention: 'enforced',
        versioning: true,
      });
      assert.equal(gcs.requests.filter((request) => request.method === 'POST' && request.status === 409).length, 1);
    } finally {
      await buckets.close();
    }
  });

  it('hardens a bucket made with fine-grained access and no versioning', async () => {
    const buckets = adapter();
    try {
      const name = freshName();
      gcs.addBucket(name, { uniformAccess: false, publicAccessPrevention: 'inherited', versioning: false });
      assert.equal((await buckets.inspect(name)).kind, 'ours');
      await buckets.harden(name);
      const state = gcs.bucketState(name);
      assert.equal(state.uniformAccess, true);
      assert.equal(state.publicAccessPrevention, 'enforced');
      assert.equal(state.versioning, true);
    } finally {
      await buckets.close();
    }
  });

  it('a name another project holds: unreadable to inspect, and create fails with exit 2 suggesting another state_bucket', async () => {
    const buckets = adapter();
    try {
      const name = freshName();
      gcs.addForeignBucket(name);
      assert.equal((await buckets.inspect(name)).kind, 'unreadable');
      const err = await expectError(buckets.create(name, { location: 'US' }));
      assert.equal(err.exitCode, ExitCode.usage);
      assert.equal(err.code, 'BUCKET_NAME_TAKEN');
      assert.match(err.message, /not available/);
      assert.match(err.suggestion ?? '', /state_bucket/);
    } finally {
      await buckets.close();
    }
  });

  it('writes the bucket policy under its etag; a stale etag is a CONFLICT and the other writer’s binding stays', async () => {
    const buckets = adapter();
    try {
      const name = freshName();
      gcs.addBucket(name);
      const read = await buckets.getIamPolicy(name);
      gcs.bucketState(name).policy.add('roles/storage.objectViewer', 'group:readers@example.com');
      const binding = { role: 'roles/storage.objectAdmin', members: ['serviceAccount:job@p.iam.gserviceaccount.com'] };
      const err = await expectError(buckets.setIamPolicy(name, { ...read, bindings: [binding] }));
      assert.equal(err.code, 'CONFLICT');
      const fresh = await buckets.getIamPolicy(name);
      await buckets.setIamPolicy(name, { ...fresh, bindings: [...fresh.bindings, binding] });
      const policy = gcs.bucketState(name).policy;
      assert.deepEqual(policy.members('roles/storage.objectViewer'), ['group:readers@example.com']);
      assert.deepEqual(policy.members('roles/storage.objectAdmin'), ['serviceAccount:job@p.iam.gserviceaccount.com']);
    } finally {
      await buckets.close();
    }
  });

  it('a caller without storage.buckets.create gets exit 7 naming the permission and roles/storage.admin', async () => {
    const buckets = adapter();
    try {
      gcs.denyProject(['storage.buckets.create']);
      const err = await expectError(buckets.create(freshName(), { location: 'US' }));
      assert.equal(err.exitCode, ExitCode.auth);
      assert.match(err.message, /storage\.buckets\.create/);
      assert.match(err.suggestion ?? '', /roles\/storage\.admin/);
    } finally {
      await buckets.close();
    }
  });
});
