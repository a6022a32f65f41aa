/** A cloud environment from convergence.yaml wires the gcp adapters through the one client factory. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBackends } from '../../src/backends/factory.ts';
import { loadWorkspace, resolveEnv } from '../../src/config/workspace.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newWorkspace } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_DATA_BUCKET, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';

let fakes: CloudFakes;
let root: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('gcp-factory');
  await appendFile(
    path.join(root, 'convergence.yaml'),
    `${fakes.yaml('cloud')}${fakes.yaml('tenant_sa')}    tenant_service_account: "tenant-{tenant}@demo-project.iam.gserviceaccount.com"\n  bare:\n    project: demo-project\n`,
  );
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

async function backendsFor(name: string) {
  const workspace = await loadWorkspace(root);
  return createBackends(workspace, resolveEnv(workspace, name));
}

describe('gcp backends from convergence.yaml', () => {
  it('encrypts with Cloud KMS, keeps secrets in Secret Manager after files, and locks in Cloud Storage', async () => {
    const backends = await backendsFor('cloud');
    try {
      const keyring = await backends.keyring();
      await keyring.check();
      const sealed = await keyring.encrypt(Buffer.from('hello'));
      assert.equal((await keyring.decrypt(sealed)).toString(), 'hello');
      assert.ok(fakes.grpc.calls('Encrypt').length >= 1, 'KMS was called');

      const secrets = await backends.secrets();
      await secrets.put('acme_corp', 'usage_api_token', 's3cret');
      assert.equal(await secrets.get('acme_corp', 'usage_api_token'), 's3cret');
      assert.equal(fakes.secretManager.peek('demo-project', 'acme_corp--usage_api_token'), 's3cret');

      const lock = await backends.lock();
      const taken = await lock.acquire('run/acme_corp/p', { owner: 'test', ttlMs: 60_000 });
      assert.equal(taken.acquired, true);
      assert.ok(fakes.gcs.objects('demo-project-convergence-state').length > 0, 'the lease is an object in the state bucket');
    } finally {
      await backends.close();
    }
  });

  it('names the convergence.yaml key a cloud adapter needs when it is missing', async () => {
    const backends = await backendsFor('bare');
    try {
      const err = await rejectsWith(backends.keyring(), 2, /environment "bare" has no kms_key/);
      assert.match(err.suggestion ?? '', /environments\.bare\.kms_key/);
      await rejectsWith(backends.lock(), 2, /no state_bucket/);
    } finally {
      await backends.close();
    }
  });

  it("reads a tenant's objects as its own service account, with no library warning on stderr", async () => {
    const backends = await backendsFor('tenant_sa');
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
    try {
      fakes.gcs.putObject(CLOUD_DATA_BUCKET, 'acme_corp/x.csv', 'id\n1\n');
      fakes.gcs.deny(CLOUD_DATA_BUCKET, { grantedTo: ['tenant-acme-corp@demo-project.iam.gserviceaccount.com'] });
      const storage = await backends.tenantStorage('acme_corp');
      const [files] = await storage.bucket(CLOUD_DATA_BUCKET).getFiles({ prefix: 'acme_corp/' });
      assert.deepEqual(
        files.map((f) => f.name),
        ['acme_corp/x.csv'],
      );
      const other = await backends.tenantStorage('globex_inc');
      await assert.rejects(
        other.bucket(CLOUD_DATA_BUCKET).getFiles({ prefix: 'acme_corp/' }),
        /tenant-globex-inc@demo-project\.iam\.gserviceaccount\.com does not have storage\.objects\.list/,
      );
      assert.deepEqual(warnings, []);
    } finally {
      console.warn = warn;
      fakes.gcs.allow(CLOUD_DATA_BUCKET);
      await backends.close();
    }
  });
});
