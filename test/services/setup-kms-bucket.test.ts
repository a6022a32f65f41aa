/** The kms, state_bucket and admin_key setup steps against the KMS, Storage and Secret Manager fakes, through the official clients. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { cloudEnv } from '../../src/backends/factory.ts';
import { ExitCode, isConvergenceError } from '../../src/lib/errors.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { setupNames, withNames } from '../../src/services/setup/names.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../../src/services/setup/step.ts';
import { adminKeyStep } from '../../src/services/setup/steps/admin-key.ts';
import { kmsStep, ROTATION_PERIOD_SECONDS } from '../../src/services/setup/steps/kms.ts';
import { stateBucketStep } from '../../src/services/setup/steps/state-bucket.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { CONCURRENT_POLICY_CHANGE } from '../fakes/grpc/iam-policy.ts';
import { KMS_ADMIN_PERMISSIONS } from '../fakes/grpc/kms.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const STEPS = [kmsStep, stateBucketStep, adminKeyStep];
const ENCRYPTER = 'roles/cloudkms.cryptoKeyEncrypterDecrypter';
const OBJECT_ADMIN = 'roles/storage.objectAdmin';

let fakes: CloudFakes;
let root: string;
let envCounter = 0;

/** A fresh environment per test with only project, region and location: every name is setup's default. */
async function addEnv(): Promise<string> {
  const name = `stg${++envCounter}`;
  await appendFile(
    path.join(root, 'convergence.yaml'),
    [`  ${name}:`, `    project: ${CLOUD_PROJECT}`, '    region: us-central1', '    location: US', ''].join('\n'),
  );
  return name;
}

function setupContext(ctx: ServiceContext): SetupContext {
  const env = cloudEnv(ctx.env)!;
  const names = setupNames(env, CLOUD_PROJECT);
  return { ctx, env: withNames(env, names, CLOUD_PROJECT), project: CLOUD_PROJECT, names };
}

/** Plans every step, applies what was planned, and returns the plan. */
async function planAndApply(env: string, steps: SetupStep[] = STEPS): Promise<Record<string, PlannedChange[]>> {
  return withContext(
    root,
    async (ctx) => {
      const setup = setupContext(ctx);
      const planned: Record<string, PlannedChange[]> = {};
      for (const step of steps) {
        planned[step.id] = await step.plan(setup);
        await step.apply(setup, planned[step.id]!);
      }
      return planned;
    },
    { env },
  );
}

const planOnly = (env: string, step: SetupStep) => withContext(root, (ctx) => step.plan(setupContext(ctx)), { env });
const names = (env: string) => withContext(root, async (ctx) => setupContext(ctx).names, { env });
const summary = (changes: PlannedChange[]) => changes.map((change) => `${change.action} ${change.resource.split('/').slice(-2).join('/')}`);

async function expectExit(promise: Promise<unknown>, exitCode: number) {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    assert.equal(err.exitCode, exitCode, err.message);
    return err;
  }
  assert.fail(`expected exit ${exitCode}, it succeeded`);
}

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('setup-kms-bucket');
});

after(async () => {
  await fakes.stop();
  await cleanupAll();
});

beforeEach(() => {
  fakes.grpc.clearFaults();
  fakes.kms.grantAdmin(Object.values(KMS_ADMIN_PERMISSIONS));
  fakes.gcs.denyProject([]);
});

describe('setup steps kms, state_bucket, admin_key', () => {
  it('on an empty project plans everything, applies it, and a rerun plans nothing', async () => {
    const env = await addEnv();
    const n = await names(env);
    const api = `serviceAccount:${n.apiAccount}`;
    const job = `serviceAccount:${n.jobAccount}`;
    const planned = await planAndApply(env);
    assert.deepEqual(summary(planned.kms!), [
      `create keyRings/convergence-${env}`,
      'create cryptoKeys/api-key-encryption',
      'grant cryptoKeys/api-key-encryption',
      'grant cryptoKeys/api-key-encryption',
    ]);
    assert.deepEqual(summary(planned.state_bucket!), [
      'create buckets/' + n.stateBucket,
      `grant buckets/${n.stateBucket}`,
      `grant buckets/${n.stateBucket}`,
    ]);
    assert.deepEqual(summary(planned.admin_key!), [`create secrets/admin-api-key-${env}`]);
    assert.match(planned.admin_key![0]!.detail, new RegExp(`gcloud secrets versions access latest --secret admin-api-key-${env}`));

    const key = fakes.kms.describeKey(n.kmsKey) as {
      purpose: string;
      rotationPeriod: { seconds: string };
      nextRotationTime: { seconds: string };
    };
    assert.equal(key.purpose, 'ENCRYPT_DECRYPT');
    assert.equal(Number(key.rotationPeriod.seconds), ROTATION_PERIOD_SECONDS);
    assert.ok(Number(key.nextRotationTime.seconds) * 1000 > Date.now() + (ROTATION_PERIOD_SECONDS - 3600) * 1000);
    assert.deepEqual(fakes.kms.policy(n.kmsKey).members(ENCRYPTER), [api, job]);
    const bucket = fakes.gcs.bucketState(n.stateBucket);
    assert.deepEqual(
      [bucket.location, bucket.uniformAccess, bucket.publicAccessPrevention, bucket.versioning],
      ['US', true, 'enforced', true],
    );
    assert.deepEqual(bucket.policy.members(OBJECT_ADMIN), [api, job]);
    const adminKey = fakes.secretManager.peek(CLOUD_PROJECT, `admin-api-key-${env}`);
    assert.match(adminKey ?? '', /^admin_/);
    assert.ok(!JSON.stringify(planned).includes(adminKey!), 'the plan never shows the admin key');

    const rerun = await planAndApply(env);
    assert.deepEqual(rerun, { kms: [], state_bucket: [], admin_key: [] });
    assert.equal(fakes.secretManager.peek(CLOUD_PROJECT, `admin-api-key-${env}`), adminKey, 'the admin key is kept');
  });

  it('a half-applied setup (key ring made, key not) reruns cleanly', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.kms.addKeyRing(n.kmsKey.slice(0, n.kmsKey.indexOf('/cryptoKeys/')));
    const planned = await planAndApply(env, [kmsStep]);
    assert.deepEqual(summary(planned.kms!), [
      'create cryptoKeys/api-key-encryption',
      'grant cryptoKeys/api-key-encryption',
      'grant cryptoKeys/api-key-encryption',
    ]);
    assert.deepEqual(await planOnly(env, kmsStep), []);
  });

  it('an apply that stopped after creating the bucket reruns cleanly: the grants are what is left', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.gcs.inject({ method: 'PUT', path: /\/iam$/, status: 503, times: 10 });
    await expectExit(planAndApply(env, [stateBucketStep]), ExitCode.unexpected);
    fakes.gcs.clearFaults();
    assert.deepEqual(summary(await planOnly(env, stateBucketStep)), [`grant buckets/${n.stateBucket}`, `grant buckets/${n.stateBucket}`]);
    await planAndApply(env, [stateBucketStep]);
    assert.deepEqual(await planOnly(env, stateBucketStep), []);
  });

  it('a key without rotation is updated, and bindings others made on it are kept', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.kms.createKey(n.kmsKey);
    fakes.kms.policy(n.kmsKey).add('roles/cloudkms.viewer', 'group:auditors@example.com');
    fakes.kms.policy(n.kmsKey).add(ENCRYPTER, `serviceAccount:${n.apiAccount}`);
    const planned = await planAndApply(env, [kmsStep]);
    assert.deepEqual(summary(planned.kms!), ['update cryptoKeys/api-key-encryption', 'grant cryptoKeys/api-key-encryption']);
    assert.match(planned.kms![1]!.detail, new RegExp(n.jobAccount));
    const policy = fakes.kms.policy(n.kmsKey);
    assert.deepEqual(policy.members('roles/cloudkms.viewer'), ['group:auditors@example.com']);
    assert.deepEqual(policy.members(ENCRYPTER), [`serviceAccount:${n.apiAccount}`, `serviceAccount:${n.jobAccount}`]);
    assert.equal(
      Number((fakes.kms.describeKey(n.kmsKey) as { rotationPeriod: { seconds: string } }).rotationPeriod.seconds),
      ROTATION_PERIOD_SECONDS,
    );
  });

  it('a policy write that loses a race to another writer is redone from a fresh read', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.kms.createKey(n.kmsKey, { rotationPeriodSeconds: ROTATION_PERIOD_SECONDS });
    fakes.grpc.inject({ method: 'SetIamPolicy', code: 10, message: CONCURRENT_POLICY_CHANGE });
    await planAndApply(env, [kmsStep]);
    assert.equal(fakes.grpc.calls('SetIamPolicy').filter((call) => call.request.resource === n.kmsKey).length, 2);
    assert.equal(fakes.kms.policy(n.kmsKey).members(ENCRYPTER).length, 2);
  });

  it('an existing key of another purpose stops the plan with exit 2', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.kms.createKey(n.kmsKey, { purpose: 'ASYMMETRIC_SIGN' });
    const err = await expectExit(planOnly(env, kmsStep), ExitCode.usage);
    assert.match(err.message, /ASYMMETRIC_SIGN/);
    assert.match(err.suggestion ?? '', /kms_key/);
  });

  it('without cloudkms.keyRings.create, apply fails with exit 7 naming the permission and roles/cloudkms.admin', async () => {
    const env = await addEnv();
    fakes.kms.grantAdmin(Object.values(KMS_ADMIN_PERMISSIONS).filter((permission) => permission !== KMS_ADMIN_PERMISSIONS.createKeyRing));
    const err = await expectExit(planAndApply(env, [kmsStep]), ExitCode.auth);
    assert.match(err.message, /cloudkms\.keyRings\.create/);
    assert.match(err.suggestion ?? '', /roles\/cloudkms\.admin/);
  });

  it('a state bucket name another project owns stops with exit 2 suggesting another state_bucket', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.gcs.addForeignBucket(n.stateBucket);
    const err = await expectExit(planOnly(env, stateBucketStep), ExitCode.usage);
    assert.match(err.suggestion ?? '', new RegExp(`environments\\.${env}\\.state_bucket`));
  });

  it('an existing bucket with fine-grained access is hardened in place', async () => {
    const env = await addEnv();
    const n = await names(env);
    fakes.gcs.addBucket(n.stateBucket, { uniformAccess: false, publicAccessPrevention: 'inherited' });
    const planned = await planAndApply(env, [stateBucketStep]);
    assert.deepEqual(summary(planned.state_bucket!).slice(0, 1), [`update buckets/${n.stateBucket}`]);
    assert.equal(fakes.gcs.bucketState(n.stateBucket).uniformAccess, true);
    assert.deepEqual(await planOnly(env, stateBucketStep), []);
  });

  it('without storage.buckets.create, apply fails with exit 7 naming the permission and roles/storage.admin', async () => {
    const env = await addEnv();
    fakes.gcs.denyProject(['storage.buckets.create']);
    const err = await expectExit(planAndApply(env, [stateBucketStep]), ExitCode.auth);
    assert.match(err.message, /storage\.buckets\.create/);
    assert.match(err.suggestion ?? '', /roles\/storage\.admin/);
  });
});
