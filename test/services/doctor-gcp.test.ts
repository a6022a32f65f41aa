/** doctor --env <cloud>: each Google service checked, each failure with its remedy. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Check } from '../../src/services/doctor/check.ts';
import { runDoctor } from '../../src/services/doctor/index.ts';
import { newWorkspace } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_BUCKET, CLOUD_KEY, CLOUD_SERVICE, createRunService, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { KMS_PERMISSIONS } from '../fakes/grpc/kms.ts';

let fakes: CloudFakes;
let root: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('doctor-gcp');
  await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

const byName = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

describe('doctor on a cloud environment', () => {
  it('checks credentials, KMS, Secret Manager and the state bucket', async () => {
    const report = await runDoctor(root, 'cloud');
    const checks = byName(report.checks);
    assert.equal(checks['credentials']?.status, 'pass');
    assert.match(checks['credentials']!.detail, /endpoint overrides/);
    assert.equal(checks['keyring']?.status, 'pass', checks['keyring']?.detail);
    assert.equal(checks['secret manager']?.status, 'warn');
    assert.match(checks['secret manager']!.fix ?? '', /keys admin create --env cloud/);
    assert.equal(checks['locks']?.status, 'pass', checks['locks']?.detail);
    assert.equal(checks['cloud run']?.status, 'warn', 'the service is not deployed yet');
    assert.match(checks['cloud run']!.fix ?? '', /convergence deploy --env cloud/);
  });

  it('sees the deployed service, and warns when this caller could not deploy it', async () => {
    await createRunService(fakes);
    const deployed = byName((await runDoctor(root, 'cloud')).checks)['cloud run']!;
    assert.equal(deployed.status, 'pass', deployed.detail);
    assert.match(deployed.detail, new RegExp(`${CLOUD_SERVICE}-00001-`));

    fakes.run.granted.delete('run.services.update');
    try {
      const readOnly = byName((await runDoctor(root, 'cloud')).checks)['cloud run']!;
      assert.equal(readOnly.status, 'warn');
      assert.match(readOnly.fix ?? '', /roles\/run\.developer/);
    } finally {
      fakes.run.granted.add('run.services.update');
    }
  });

  it('names the role to grant when the state bucket or the key is denied', async () => {
    fakes.gcs.deny(CLOUD_BUCKET, { principal: 'convergence@demo-project.iam.gserviceaccount.com' });
    fakes.kms.grant(CLOUD_KEY, []);
    try {
      const checks = byName((await runDoctor(root, 'cloud')).checks);
      assert.equal(checks['locks']?.status, 'fail');
      assert.match(checks['locks']!.fix ?? '', /roles\/storage\.objectAdmin/);
      assert.equal(checks['keyring']?.status, 'fail');
      assert.match(`${checks['keyring']!.detail} ${checks['keyring']!.fix}`, /roles\/cloudkms\.cryptoKeyEncrypterDecrypter/);
    } finally {
      fakes.gcs.allow(CLOUD_BUCKET);
      fakes.kms.grant(CLOUD_KEY, Object.values(KMS_PERMISSIONS));
    }
  });
});
