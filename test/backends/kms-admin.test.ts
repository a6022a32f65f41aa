/** The KMS admin adapter (key ring, key, key IAM) against the KMS fake, through the official client. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { GcpKmsAdmin } from '../../src/backends/kms-admin/gcp.ts';
import { ExitCode, isConvergenceError } from '../../src/lib/errors.ts';
import { KMS_ADMIN_PERMISSIONS, KmsFake } from '../fakes/grpc/kms.ts';
import { startGrpcFake, type GrpcFake } from '../fakes/grpc/server.ts';

const PROJECT = 'kms-project';
const LOCATION = `projects/${PROJECT}/locations/us-central1`;
const DAY = 24 * 3600;
const ROTATION = () => ({ periodSeconds: 90 * DAY, nextRotationTime: new Date(Date.now() + 90 * DAY * 1000) });

let grpc: GrpcFake;
let kms: KmsFake;
let ringCounter = 0;

const adapter = () =>
  new GcpKmsAdmin(createGcpClients({ project: PROJECT, location: 'US', region: 'us-central1' }, { [ENDPOINT_VARS.grpc]: grpc.address }));

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
  kms = new KmsFake();
  grpc = await startGrpcFake({ kms });
});

after(async () => {
  await grpc.stop();
});

beforeEach(() => {
  grpc.clearFaults();
  kms.grantAdmin(Object.values(KMS_ADMIN_PERMISSIONS));
});

const freshRing = () => `ring-${++ringCounter}`;

describe('GcpKmsAdmin', () => {
  it('creates a key ring and a rotating ENCRYPT_DECRYPT key, and creating them again is a no-op', async () => {
    const admin = adapter();
    try {
      const ring = freshRing();
      const ringName = `${LOCATION}/keyRings/${ring}`;
      assert.equal(await admin.keyRingExists(ringName), false);
      await admin.createKeyRing(LOCATION, ring);
      await admin.createKeyRing(LOCATION, ring);
      assert.equal(await admin.keyRingExists(ringName), true);
      const keyName = `${ringName}/cryptoKeys/k`;
      assert.equal(await admin.getCryptoKey(keyName), undefined);
      await admin.createCryptoKey(ringName, 'k', ROTATION());
      await admin.createCryptoKey(ringName, 'k', ROTATION());
      const key = await admin.getCryptoKey(keyName);
      assert.equal(key?.purpose, 'ENCRYPT_DECRYPT');
      assert.equal(key?.rotationPeriodSeconds, 90 * DAY);
      assert.ok(key?.nextRotationTime && key.nextRotationTime.getTime() > Date.now() + 89 * DAY * 1000);
      assert.equal(grpc.calls('CreateCryptoKey').filter((call) => call.code === 6).length, 1, 'the second create met ALREADY_EXISTS');
    } finally {
      await admin.close();
    }
  });

  it('adds a rotation schedule to a key without one, through an update mask', async () => {
    const admin = adapter();
    try {
      const keyName = kms.createKey(`${LOCATION}/keyRings/${freshRing()}/cryptoKeys/still`);
      assert.equal((await admin.getCryptoKey(keyName))?.rotationPeriodSeconds, undefined);
      await admin.updateRotation(keyName, ROTATION());
      assert.equal((await admin.getCryptoKey(keyName))?.rotationPeriodSeconds, 90 * DAY);
      const [update] = grpc.calls('UpdateCryptoKey').slice(-1);
      assert.deepEqual((update!.request.updateMask as { paths: string[] }).paths, ['rotation_period', 'next_rotation_time']);
    } finally {
      await admin.close();
    }
  });

  it('refuses a rotation period under a day, as KMS does', async () => {
    const admin = adapter();
    try {
      const ring = `${LOCATION}/keyRings/${freshRing()}`;
      kms.addKeyRing(ring);
      const err = await expectError(
        admin.createCryptoKey(ring, 'short', { periodSeconds: 3600, nextRotationTime: new Date(Date.now() + 3600_000) }),
      );
      assert.equal(err.exitCode, ExitCode.usage);
      assert.match(err.message, /at least 86400s/);
    } finally {
      await admin.close();
    }
  });

  it('reads and writes the key policy under its etag; a stale etag is a CONFLICT and keeps the other writer’s binding', async () => {
    const admin = adapter();
    try {
      const keyName = kms.createKey(`${LOCATION}/keyRings/${freshRing()}/cryptoKeys/shared`);
      const read = await admin.getIamPolicy(keyName);
      assert.deepEqual(read.bindings, []);
      kms.policy(keyName).add('roles/cloudkms.viewer', 'user:someone@example.com');
      const stale = {
        ...read,
        bindings: [{ role: 'roles/cloudkms.cryptoKeyEncrypterDecrypter', members: ['serviceAccount:a@p.iam.gserviceaccount.com'] }],
      };
      const err = await expectError(admin.setIamPolicy(keyName, stale));
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, /concurrent policy changes/);
      assert.deepEqual(kms.policy(keyName).members('roles/cloudkms.viewer'), ['user:someone@example.com']);
      const fresh = await admin.getIamPolicy(keyName);
      const written = await admin.setIamPolicy(keyName, { ...fresh, bindings: [...fresh.bindings, ...stale.bindings] });
      assert.notEqual(written.etag, fresh.etag);
      assert.deepEqual(kms.policy(keyName).members('roles/cloudkms.cryptoKeyEncrypterDecrypter'), [
        'serviceAccount:a@p.iam.gserviceaccount.com',
      ]);
      assert.deepEqual(kms.policy(keyName).members('roles/cloudkms.viewer'), ['user:someone@example.com']);
    } finally {
      await admin.close();
    }
  });

  it('a caller without cloudkms.keyRings.create gets exit 7 naming the permission and roles/cloudkms.admin', async () => {
    const admin = adapter();
    try {
      kms.grantAdmin(Object.values(KMS_ADMIN_PERMISSIONS).filter((permission) => permission !== KMS_ADMIN_PERMISSIONS.createKeyRing));
      const err = await expectError(admin.createKeyRing(LOCATION, freshRing()));
      assert.equal(err.exitCode, ExitCode.auth);
      assert.match(err.message, /cloudkms\.keyRings\.create/);
      assert.match(err.suggestion ?? '', /roles\/cloudkms\.admin/);
      assert.match(err.suggestion ?? '', /cloudkms\.keyRings\.create/);
    } finally {
      await admin.close();
    }
  });

  it('a caller without setIamPolicy on the key gets exit 7 naming cloudkms.cryptoKeys.setIamPolicy', async () => {
    const admin = adapter();
    try {
      const keyName = kms.createKey(`${LOCATION}/keyRings/${freshRing()}/cryptoKeys/locked`);
      kms.grantAdmin([KMS_ADMIN_PERMISSIONS.getIamPolicy]);
      const policy = await admin.getIamPolicy(keyName);
      const err = await expectError(admin.setIamPolicy(keyName, policy));
      assert.equal(err.exitCode, ExitCode.auth);
      assert.match(err.message, /cloudkms\.cryptoKeys\.setIamPolicy/);
    } finally {
      await admin.close();
    }
  });
});
