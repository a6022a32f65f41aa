/** The names `setup` gives what it creates when convergence.yaml leaves them out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudEnv } from '../../src/backends/factory.ts';
import { setupNames } from '../../src/services/setup/names.ts';

const PROJECT = 'acme-data-prod';
const cloudEnv = (name: string, settings: Record<string, unknown> = {}) =>
  ({
    name,
    backend: 'gcp',
    stateDir: '.convergence',
    settings: { project: PROJECT, region: 'us-central1', location: 'US', ...settings },
  }) as unknown as CloudEnv;
/** IAM service account ids are 6 to 30 characters. */
const accountId = (email: string) => email.slice(0, email.indexOf('@'));

describe('setup names', () => {
  it('the default accounts of an environment named production fit the 30-character account id', () => {
    const names = setupNames(cloudEnv('production'), PROJECT);
    for (const email of [names.apiAccount, names.jobAccount, names.schedulerAccount]) {
      assert.ok(accountId(email).length <= 30, `${accountId(email)} has ${accountId(email).length} characters`);
      assert.ok(email.endsWith(`@${PROJECT}.iam.gserviceaccount.com`), email);
    }
    assert.equal(new Set([names.apiAccount, names.jobAccount, names.schedulerAccount]).size, 3, 'three distinct accounts');
  });

  it('an explicit setting wins over every default', () => {
    const names = setupNames(
      cloudEnv('staging', {
        service_account: 'api@p.iam.gserviceaccount.com',
        scheduler_service_account: 'cron@p.iam.gserviceaccount.com',
        state_bucket: 'my-state',
        image: 'europe-west1-docker.pkg.dev/other-proj/images/convergence:2.0.0',
      }),
      PROJECT,
    );
    assert.equal(names.apiAccount, 'api@p.iam.gserviceaccount.com');
    assert.equal(names.schedulerAccount, 'cron@p.iam.gserviceaccount.com');
    assert.equal(names.stateBucket, 'my-state');
    assert.equal(names.registry, 'projects/other-proj/locations/europe-west1/repositories/images');
    assert.equal(names.adminKeySecret, 'admin-api-key-staging');
  });
});
