/**
 * doctor --env <cloud> without usable Google credentials: the credentials check fails with the
 * fix, every check that would call Google is listed as skipped, and doctor exits 7. No endpoint
 * overrides here, so the clients would talk to Google: the test proves they are never built.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { CHECKS_NEEDING_CREDENTIALS } from '../../src/services/doctor/gcp.ts';
import { doctorFailure, runDoctor, type DoctorReport } from '../../src/services/doctor/index.ts';
import { OAuthFake } from '../fakes/oauth.ts';
import { newWorkspace } from '../helpers/context.ts';
import { applyToProcessEnv, noCredentialsEnv, STAGING_PROJECT, stagingEnvironment } from '../helpers/no-credentials.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

let restoreEnv: () => void;
let root: string;
let oauth: OAuthFake;

before(async () => {
  root = await newWorkspace('doctor-credentials');
  await appendFile(path.join(root, 'convergence.yaml'), stagingEnvironment());
  restoreEnv = applyToProcessEnv(await noCredentialsEnv());
  oauth = await OAuthFake.start();
});
afterEach(() => {
  delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  oauth.refuse(null);
});
after(async () => {
  restoreEnv();
  await oauth.stop();
  await cleanupAll();
});

const byName = (report: DoctorReport) => Object.fromEntries(report.checks.map((c) => [c.name, c]));

function assertSkippedForCredentials(report: DoctorReport): void {
  const checks = byName(report);
  for (const name of CHECKS_NEEDING_CREDENTIALS) {
    assert.equal(checks[name]?.status, 'skip', `${name}: ${JSON.stringify(checks[name])}`);
    assert.match(checks[name]!.detail, /needs Google credentials/);
  }
}

describe('doctor without usable Google credentials', () => {
  it('no Application Default Credentials: the whole checklist, credentials failing with the login command', async () => {
    const report = await runDoctor(root, 'staging');
    const credentials = byName(report)['credentials']!;
    assert.equal(credentials.status, 'fail');
    assert.match(credentials.detail, /credentials are missing/);
    assert.match(credentials.fix!, /gcloud auth application-default login/);
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['node', 'workspace', 'config', 'environment', 'credentials', ...CHECKS_NEEDING_CREDENTIALS],
    );
    assertSkippedForCredentials(report);

    const failure = doctorFailure(report);
    assert.equal(failure.exitCode, 7);
    assert.match(failure.suggestion!, /gcloud auth application-default login/);
  });

  it('a service account key the token endpoint refuses: credentials expired or revoked, nothing else called', async () => {
    const email = 'deployer@my-project-stage.iam.gserviceaccount.com';
    process.env.GOOGLE_APPLICATION_CREDENTIALS = await oauth.writeKeyFile(await makeTempDir('key'), email);
    oauth.refuse('invalid_grant');
    const before = oauth.requests.length;

    const report = await runDoctor(root, 'staging');
    const credentials = byName(report)['credentials']!;
    assert.equal(credentials.status, 'fail', credentials.detail);
    assert.match(credentials.detail, /expired or revoked/);
    assert.match(credentials.fix!, /gcloud auth application-default login/);
    assertSkippedForCredentials(report);
    assert.equal(doctorFailure(report).exitCode, 7);
    const asked = oauth.requests.slice(before);
    assert.equal(asked.length, 1, 'one token request, to the key file token_uri');
    assert.equal(asked[0]!.email, email);
  });

  it('a key the token endpoint accepts passes the credentials check', async () => {
    const email = 'operator@my-project-stage.iam.gserviceaccount.com';
    process.env.GOOGLE_APPLICATION_CREDENTIALS = await oauth.writeKeyFile(await makeTempDir('key'), email);
    const { credentialsCheck } = await import('../../src/services/doctor/gcp.ts');
    const checks: DoctorReport['checks'] = [];
    const settings = { project: STAGING_PROJECT } as Parameters<typeof credentialsCheck>[0];
    assert.equal(await credentialsCheck(settings, (c) => checks.push(c)), true);
    assert.equal(checks[0]?.status, 'pass', checks[0]?.detail);
    assert.match(checks[0]!.detail, new RegExp(email));
  });
});
