/**
 * The KeyRing and SecretStore contracts against Cloud KMS and Secret Manager, through the
 * official clients over a real socket to the in-process gRPC fake; then what only the cloud
 * adapters do: retries, key states, permissions, integrity fields, files-first, tenant naming.
 */
import '../fakes/env-guard.ts';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { KmsKeyRing } from '../../src/backends/keyring/kms.ts';
import { FileSecretStore } from '../../src/backends/secrets/files.ts';
import { SecretManagerStore } from '../../src/backends/secrets/secret-manager.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';
import { keyringContract } from '../contracts/keyring.contract.ts';
import { secretsContract } from '../contracts/secrets.contract.ts';
import { KMS_PERMISSIONS, KmsFake } from '../fakes/grpc/kms.ts';
import { SecretManagerFake } from '../fakes/grpc/secret-manager.ts';
import { startGrpcFake, type GrpcFake } from '../fakes/grpc/server.ts';
import { fakeClientOptions } from '../fakes/grpc/client-options.ts';

/** Retries without real waiting: the policy is what is under test, not the clock. */
const FAST = { baseDelayMs: 1, maxDelayMs: 2 };

const kms = new KmsFake();
const secretManager = new SecretManagerFake({ projects: { 'demo-project': '123456789012' }, maxPageSize: 3 });
let fake: GrpcFake;
let kmsClient: KeyManagementServiceClient;
let smClient: SecretManagerServiceClient;
let serial = 0;
const temps: string[] = [];

before(async () => {
  fake = await startGrpcFake({ kms, secretManager });
  const options = fakeClientOptions(fake.port);
  kmsClient = new KeyManagementServiceClient(options);
  smClient = new SecretManagerServiceClient(options);
});

after(async () => {
  await kmsClient.close();
  await smClient.close();
  await fake.stop();
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

const newKey = (options?: Parameters<KmsFake['createKey']>[1]) =>
  kms.createKey(`projects/demo-project/locations/us-central1/keyRings/convergence/cryptoKeys/key-${++serial}`, options);

async function newStore(options: { principal?: string } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'convergence-sm-'));
  temps.push(dir);
  const project = `proj-${++serial}-test`;
  const files = new FileSecretStore({ workspaceRoot: dir, systemDir: path.join(dir, '.convergence', 'secrets') });
  const store = new SecretManagerStore({ client: smClient, project, files, retry: FAST, ...options });
  return { dir, project, files, store };
}

const convergenceError =
  (match: Partial<Pick<ConvergenceError, 'code' | 'exitCode'>>, check?: (err: ConvergenceError) => void) => (err: unknown) => {
    assert.ok(err instanceof ConvergenceError, `expected a ConvergenceError, got ${String(err)}`);
    if (match.code) assert.equal(err.code, match.code, err.message);
    if (match.exitCode !== undefined) assert.equal(err.exitCode, match.exitCode, err.message);
    check?.(err);
    return true;
  };

keyringContract('Cloud KMS (gRPC fake)', async () => ({
  subject: new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST }),
  cleanup: async () => undefined,
}));

secretsContract('Secret Manager after files (gRPC fake)', async () => {
  const { store } = await newStore();
  return { subject: store, cleanup: async () => undefined };
});

describe('KmsKeyRing on Cloud KMS', () => {
  beforeEach(() => fake.clearFaults());

  it('rides out a burst of UNAVAILABLE on encrypt and decrypt', async () => {
    const ring = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST });
    const before = fake.calls('Encrypt').length;
    fake.inject({ method: 'Encrypt', code: grpc.status.UNAVAILABLE, times: 3 });
    const ciphertext = await ring.encrypt(Buffer.from('through the storm'));
    assert.equal(fake.calls('Encrypt').length - before, 4, 'three refusals, then the answer');
    fake.inject({ method: /KeyManagementService\/Decrypt$/, code: grpc.status.UNAVAILABLE, times: 2 });
    assert.equal((await ring.decrypt(ciphertext)).toString(), 'through the storm');
  });

  it('retries an attempt that runs past its deadline', async () => {
    const ring = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST, timeoutMs: 100 });
    const ciphertext = await ring.encrypt(Buffer.from('slow'));
    fake.inject({ method: 'Decrypt', delayMs: 1000 });
    assert.equal((await ring.decrypt(ciphertext)).toString(), 'slow');
  });

  it('gives up after a bounded number of attempts with a transient error', async () => {
    const ring = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: { ...FAST, attempts: 3 } });
    const before = fake.calls('Encrypt').length;
    fake.inject({ method: 'Encrypt', code: grpc.status.UNAVAILABLE, times: Infinity });
    await assert.rejects(
      ring.encrypt(Buffer.from('x')),
      convergenceError({ code: 'GCP_UNAVAILABLE', exitCode: 1 }, (err) => assert.equal(err.data?.transient, true)),
    );
    assert.equal(fake.calls('Encrypt').length - before, 3);
  });

  it('does not retry what cannot change by retrying', async () => {
    const keyName = newKey({ granted: [KMS_PERMISSIONS.decrypt] });
    const ring = new KmsKeyRing({ client: kmsClient, keyName, retry: FAST });
    const before = fake.calls('Encrypt').length;
    await assert.rejects(ring.encrypt(Buffer.from('x')), convergenceError({ exitCode: 7 }));
    assert.equal(fake.calls('Encrypt').length - before, 1);
  });

  it('explains a disabled key version and how to enable it', async () => {
    const keyName = newKey();
    const ring = new KmsKeyRing({ client: kmsClient, keyName, retry: FAST });
    const ciphertext = await ring.encrypt(Buffer.from('kept'));
    kms.setState(keyName, 'DISABLED');
    const disabled = convergenceError({ code: 'KMS_KEY_DISABLED', exitCode: 2 }, (err) => {
      assert.match(err.message, new RegExp(`${keyName}/cryptoKeyVersions/1 is DISABLED`));
      assert.match(
        err.suggestion ?? '',
        /gcloud kms keys versions enable 1 --key key-\d+ --keyring convergence --location us-central1 --project demo-project/,
      );
    });
    await assert.rejects(ring.encrypt(Buffer.from('x')), disabled);
    await assert.rejects(ring.decrypt(ciphertext), disabled);
    await assert.rejects(ring.check(), disabled);
    kms.setState(keyName, 'ENABLED');
    assert.equal((await ring.decrypt(ciphertext)).toString(), 'kept');
  });

  it('says a destroyed version is gone, and decrypts old versions after a rotation', async () => {
    const keyName = newKey();
    const ring = new KmsKeyRing({ client: kmsClient, keyName, retry: FAST });
    const v1 = await ring.encrypt(Buffer.from('v1 secret'));
    const v2Name = kms.rotate(keyName);
    const v2 = await ring.encrypt(Buffer.from('v2 secret'));
    assert.equal((await ring.decrypt(v1)).toString(), 'v1 secret');
    kms.setState(v2Name, 'DESTROYED');
    await assert.rejects(
      ring.decrypt(v2),
      convergenceError({ code: 'KMS_KEY_DISABLED' }, (err) => assert.match(err.suggestion ?? '', /cannot come back/)),
    );
  });

  it('maps permission denied to exit 7 with the role, the key and the principal', async () => {
    const keyName = newKey({ granted: [KMS_PERMISSIONS.decrypt] });
    const principal = 'convergence-runner@demo-project.iam.gserviceaccount.com';
    const ring = new KmsKeyRing({ client: kmsClient, keyName, principal, retry: FAST });
    await assert.rejects(
      ring.encrypt(Buffer.from('x')),
      convergenceError({ code: 'PERMISSION_DENIED', exitCode: 7 }, (err) => {
        assert.match(err.suggestion ?? '', new RegExp(`grant roles/cloudkms.cryptoKeyEncrypterDecrypter on ${keyName} to ${principal}`));
        assert.match(err.suggestion ?? '', /--member serviceAccount:convergence-runner@demo-project\.iam\.gserviceaccount\.com/);
        assert.equal(err.data?.permission, KMS_PERMISSIONS.encrypt);
      }),
    );
    await assert.rejects(
      ring.check(),
      convergenceError({ code: 'PERMISSION_DENIED', exitCode: 7 }, (err) => {
        assert.deepEqual(err.data?.missing, [KMS_PERMISSIONS.encrypt]);
        assert.match(err.suggestion ?? '', /roles\/cloudkms\.cryptoKeyEncrypterDecrypter/);
      }),
    );
  });

  it('names a missing key with exit 8', async () => {
    const keyName = 'projects/demo-project/locations/us-central1/keyRings/convergence/cryptoKeys/nope';
    const ring = new KmsKeyRing({ client: kmsClient, keyName, retry: FAST });
    const notFound = convergenceError({ code: 'NOT_FOUND', exitCode: 8 }, (err) => assert.ok(err.message.includes(keyName)));
    await assert.rejects(ring.encrypt(Buffer.from('x')), notFound);
    await assert.rejects(ring.check(), notFound);
  });

  it('turns a disabled API into the gcloud services enable remedy', async () => {
    const ring = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST });
    fake.inject({
      method: 'Encrypt',
      code: grpc.status.PERMISSION_DENIED,
      message: 'Cloud Key Management Service (KMS) API has not been used in project 123456789012 before or it is disabled.',
      errorInfo: { reason: 'SERVICE_DISABLED', metadata: { service: 'cloudkms.googleapis.com', consumer: 'projects/123456789012' } },
    });
    await assert.rejects(
      ring.encrypt(Buffer.from('x')),
      convergenceError({ code: 'SERVICE_DISABLED', exitCode: 7 }, (err) =>
        assert.match(err.suggestion ?? '', /gcloud services enable cloudkms\.googleapis\.com --project demo-project/),
      ),
    );
  });

  it('refuses ciphertext of another key', async () => {
    const one = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST });
    const other = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST });
    await assert.rejects(
      other.decrypt(await one.encrypt(Buffer.from('mine'))),
      convergenceError({ code: 'KMS_CIPHERTEXT_INVALID', exitCode: 2 }),
    );
  });

  it('sends CRC32C checksums and retries a response that fails them', async () => {
    const ring = new KmsKeyRing({ client: kmsClient, keyName: newKey(), retry: FAST });
    const before = fake.calls('Encrypt').length;
    fake.inject({ method: 'Encrypt', mutate: (response) => ({ ...response, ciphertextCrc32c: { value: '1' } }) });
    const ciphertext = await ring.encrypt(Buffer.from('checked'));
    const attempts = fake.calls('Encrypt').slice(before);
    assert.equal(attempts.length, 2);
    assert.ok(attempts[0]!.request.plaintextCrc32c, 'plaintext_crc32c is sent');
    fake.inject({ method: 'Decrypt', mutate: (response) => ({ ...response, plaintextCrc32c: { value: '1' } }), times: Infinity });
    await assert.rejects(
      ring.decrypt(ciphertext),
      convergenceError({ code: 'KEYRING' }, (err) => assert.match(err.message, /integrity/)),
    );
    fake.clearFaults();
    fake.inject({ method: 'Encrypt', mutate: (response) => ({ ...response, verifiedPlaintextCrc32c: false }), times: Infinity });
    await assert.rejects(
      ring.encrypt(Buffer.from('x')),
      convergenceError({ code: 'KEYRING' }, (err) => assert.match(err.message, /did not confirm/)),
    );
  });

  it('keeps non-empty ciphertexts plain KMS ciphertexts, readable without convergence', async () => {
    const keyName = newKey();
    const ring = new KmsKeyRing({ client: kmsClient, keyName, retry: FAST });
    const [direct] = await kmsClient.decrypt({ name: keyName, ciphertext: await ring.encrypt(Buffer.from('portable')) });
    assert.equal(Buffer.from(direct.plaintext as Uint8Array).toString(), 'portable');
    const [legacy] = await kmsClient.encrypt({ name: keyName, plaintext: Buffer.from('written by the old service') });
    assert.equal((await ring.decrypt(Buffer.from(legacy.ciphertext as Uint8Array))).toString(), 'written by the old service');
  });

  it('refuses a key version name or a malformed key with exit 2', () => {
    for (const keyName of [`${newKey()}/cryptoKeyVersions/1`, 'projects/p/keyRings/r/cryptoKeys/k', '']) {
      assert.throws(() => new KmsKeyRing({ client: kmsClient, keyName }), convergenceError({ exitCode: 2 }));
    }
  });
});

describe('SecretManagerStore on Secret Manager', () => {
  beforeEach(() => fake.clearFaults());

  it('reads files first and only asks Secret Manager when no file has the secret', async () => {
    const { dir, store, project } = await newStore();
    await store.put('acme_corp', 'usage_api_token', 'from-secret-manager');
    await store.put('acme_corp', 'only_in_sm', 'sm-only');
    const secrets = path.join(dir, 'configs', 'acme_corp', 'secrets');
    await mkdir(secrets, { recursive: true });
    await writeFile(path.join(secrets, 'usage_api_token.txt'), 'from-file\n', { mode: 0o600 });
    const before = fake.calls('AccessSecretVersion').length;
    assert.equal(await store.get('acme_corp', 'usage_api_token'), 'from-file');
    assert.equal(fake.calls('AccessSecretVersion').length, before, 'a file answers without a network call');
    assert.equal(await store.get('acme_corp', 'only_in_sm'), 'sm-only');
    assert.deepEqual(await store.list('acme_corp'), ['only_in_sm', 'usage_api_token']);
    assert.equal(secretManager.peek(project, 'acme_corp--usage_api_token'), 'from-secret-manager');
  });

  it('refuses to write or delete a secret that a file would keep hiding', async () => {
    const { dir, store, project } = await newStore();
    await store.put('acme_corp', 'token', 'old');
    const secrets = path.join(dir, 'configs', 'acme_corp', 'secrets');
    await mkdir(secrets, { recursive: true });
    await writeFile(path.join(secrets, 'token.txt'), 'file-value');
    const shadowed = convergenceError({ code: 'CONFLICT', exitCode: 2 }, (err) => assert.ok(!err.message.includes('file-value')));
    await assert.rejects(store.put('acme_corp', 'token', 'new'), shadowed);
    await assert.rejects(store.delete('acme_corp', 'token'), shadowed);
    assert.equal(secretManager.peek(project, 'acme_corp--token'), 'old');
  });

  it('names tenant secrets <tenant>--<name> and keeps system names as they are', async () => {
    const { store, project } = await newStore();
    await store.put(null, 'admin-api-key-prod', 'admin_x');
    await store.put('acme_corp', 'usage_api_token', 'a');
    await store.put('acme_corp', 'odd--name', 'b');
    assert.deepEqual(secretManager.secretIds(project).sort(), ['acme_corp--odd--name', 'acme_corp--usage_api_token', 'admin-api-key-prod']);
    assert.deepEqual(await store.list('acme_corp'), ['odd--name', 'usage_api_token']);
    assert.deepEqual(await store.list(null), ['admin-api-key-prod']);
    assert.equal(await store.get('acme_corp', 'odd--name'), 'b');
    assert.deepEqual(secretManager.inspect(project, 'acme_corp--usage_api_token')?.labels, {
      'managed-by': 'convergence',
      'convergence-tenant': 'acme_corp',
    });
    assert.ok((secretManager.inspect(project, 'admin-api-key-prod')?.replication as { automatic?: unknown }).automatic);
    await assert.rejects(store.put(null, 'acme_corp--token', 'x'), convergenceError({ exitCode: 2 }));
  });

  it('reads a secret created outside convergence, as the seeds do with gcloud', async () => {
    const { store, project } = await newStore();
    await smClient.createSecret({
      parent: `projects/${project}`,
      secretId: 'admin-api-key-staging',
      secret: { replication: { automatic: {} } },
    });
    await smClient.addSecretVersion({
      parent: `projects/${project}/secrets/admin-api-key-staging`,
      payload: { data: Buffer.from('admin_abc') },
    });
    assert.equal(await store.get(null, 'admin-api-key-staging'), 'admin_abc');
  });

  it('adds a version to an existing secret and reads the latest', async () => {
    const { store, project } = await newStore();
    await store.put('acme_corp', 'token', 'one');
    const creates = fake.calls('CreateSecret').length;
    await store.put('acme_corp', 'token', 'two');
    assert.equal(fake.calls('CreateSecret').length, creates, 'no create for an existing secret');
    assert.deepEqual(secretManager.inspect(project, 'acme_corp--token')?.versions, ['ENABLED', 'ENABLED']);
    assert.equal(await store.get('acme_corp', 'token'), 'two');
    const add = fake.calls('AddSecretVersion').at(-1)!;
    assert.ok((add.request.payload as { dataCrc32c?: unknown }).dataCrc32c, 'data_crc32c is sent');
  });

  it('takes a secret created by a concurrent writer in its stride', async () => {
    const { store, project } = await newStore();
    await store.put(null, 'shared', 'first');
    fake.inject({ method: 'AddSecretVersion', code: grpc.status.NOT_FOUND, message: 'Secret [projects/1/secrets/shared] not found.' });
    await store.put(null, 'shared', 'second');
    assert.equal(secretManager.peek(project, 'shared'), 'second');
  });

  it('pages through the list', async () => {
    const { store } = await newStore();
    const names = Array.from({ length: 8 }, (_, i) => `s${i}`);
    for (const name of names) await store.put('globex_inc', name, name);
    await store.put(null, 'system_one', 'x');
    const before = fake.calls('ListSecrets').length;
    assert.deepEqual(await store.list('globex_inc'), names);
    assert.ok(fake.calls('ListSecrets').length - before >= 3, 'more than one page');
  });

  it('rides out UNAVAILABLE bursts on reads and writes', async () => {
    const { store } = await newStore();
    fake.inject({ method: 'AddSecretVersion', code: grpc.status.UNAVAILABLE, times: 2 });
    fake.inject({ method: 'CreateSecret', code: grpc.status.UNAVAILABLE, times: 2 });
    await store.put('acme_corp', 'token', 'steady');
    fake.inject({ method: 'AccessSecretVersion', code: grpc.status.UNAVAILABLE, times: 3 });
    assert.equal(await store.get('acme_corp', 'token'), 'steady');
    // Damaged data under the original checksum, then a damaged checksum: both caught and retried.
    fake.inject({
      method: 'AccessSecretVersion',
      mutate: (response) => ({ ...response, payload: { ...(response.payload as object), data: Buffer.from('tampered') } }),
    });
    fake.inject({
      method: 'AccessSecretVersion',
      mutate: (response) => ({ ...response, payload: { ...(response.payload as object), dataCrc32c: '7' } }),
    });
    assert.equal(await store.get('acme_corp', 'token'), 'steady');
  });

  it('maps permission denied to exit 7 with the accessor role, without the value', async () => {
    const principal = 'runner@demo-project.iam.gserviceaccount.com';
    const { store, project } = await newStore({ principal });
    await store.put('acme_corp', 'token', 'super-secret-value');
    secretManager.granted.delete('secretmanager.versions.access');
    secretManager.granted.delete('secretmanager.versions.add');
    try {
      await assert.rejects(
        store.get('acme_corp', 'token'),
        convergenceError({ code: 'PERMISSION_DENIED', exitCode: 7 }, (err) => {
          assert.match(
            err.suggestion ?? '',
            new RegExp(`grant roles/secretmanager.secretAccessor on projects/${project}/secrets/acme_corp--token to ${principal}`),
          );
        }),
      );
      await assert.rejects(
        store.put('acme_corp', 'token', 'super-secret-value'),
        convergenceError({ code: 'PERMISSION_DENIED', exitCode: 7 }, (err) => {
          assert.ok(!JSON.stringify({ m: err.message, s: err.suggestion, d: err.data }).includes('super-secret-value'));
          assert.match(err.suggestion ?? '', /roles\/secretmanager\.secretVersionAdder/);
        }),
      );
    } finally {
      secretManager.granted.add('secretmanager.versions.access');
      secretManager.granted.add('secretmanager.versions.add');
    }
  });

  it('explains a disabled latest version instead of pretending the secret is missing', async () => {
    const { store, project } = await newStore();
    await store.put(null, 'admin-api-key-prod', 'v1');
    await smClient.disableSecretVersion({ name: `projects/${project}/secrets/admin-api-key-prod/versions/1` });
    await assert.rejects(
      store.get(null, 'admin-api-key-prod'),
      convergenceError({ code: 'SECRET_VERSION_UNUSABLE', exitCode: 2 }, (err) =>
        assert.match(err.suggestion ?? '', new RegExp(`gcloud secrets versions enable 1 --secret admin-api-key-prod --project ${project}`)),
      ),
    );
  });

  it('deletes the whole secret and reports a second delete as nothing to do', async () => {
    const { store, project } = await newStore();
    await store.put('acme_corp', 'token', 'a');
    await store.put('acme_corp', 'token', 'b');
    assert.equal(await store.delete('acme_corp', 'token'), true);
    assert.equal(secretManager.inspect(project, 'acme_corp--token'), undefined);
    assert.equal(await store.delete('acme_corp', 'token'), false);
  });
});
