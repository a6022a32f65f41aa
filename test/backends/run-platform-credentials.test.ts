/**
 * Cloud Run jobs asked as another service account (scheduler setup and doctor check the
 * scheduler's account with it) on the real-Google path, i.e. with no endpoint override for Run:
 * the operator's own credentials failing, or their missing grant on that account, is one clean
 * error (exit 7, the login command or the grant), raised before any request to Run. Nothing
 * leaves 127.0.0.1: the token for the account is minted (through the IAM Credentials fake) first.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { GcpRunPlatform } from '../../src/backends/run-platform/gcp.ts';
import { IamCredentialsFake } from '../fakes/iam-credentials.ts';
import { OAuthFake } from '../fakes/oauth.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const PROJECT = 'my-project-stage';
const TARGET = { project: PROJECT, location: 'US', region: 'us-central1' };
const SCHEDULER = `convergence-scheduler@${PROJECT}.iam.gserviceaccount.com`;
const PERMISSION = 'run.jobs.runWithOverrides';

let oauth: OAuthFake;
let iam: IamCredentialsFake;
let keyDir: string;
/** Where google-auth-library looks for a gcloud login: an empty folder, so there is none. */
const saved: Record<string, string | undefined> = {};
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(async () => {
  oauth = await OAuthFake.start();
  iam = await IamCredentialsFake.start();
  keyDir = await makeTempDir('run-credentials');
  const noLogin = await makeTempDir('no-gcloud-login');
  for (const name of ['HOME', 'CLOUDSDK_CONFIG']) {
    saved[name] = process.env[name];
    process.env[name] = noLogin;
  }
  process.on('unhandledRejection', onUnhandled);
});
after(async () => {
  process.off('unhandledRejection', onUnhandled);
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await iam.close();
  await oauth.stop();
  await cleanupAll();
});

/** The adapter as the factory wires it for Google itself: only IAM Credentials points at its fake. */
async function permissionsAsScheduler(vars: Record<string, string | undefined>) {
  const platform = new GcpRunPlatform(createGcpClients(TARGET, { ...vars, [ENDPOINT_VARS.iamCredentials]: iam.url }));
  try {
    return await platform.jobPermissionsOf('convergence-pipeline-staging', SCHEDULER, [PERMISSION]);
  } finally {
    await platform.close();
  }
}

/** Lets any rejection nobody awaited surface before asserting there was none. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('jobPermissionsOf on the real-Google path', () => {
  it('without Application Default Credentials: exit 7 with the login command, no stray rejection', async () => {
    const err = await rejectsWith(permissionsAsScheduler({}), 7, /Google credentials are missing/);
    assert.match(err.suggestion ?? '', /gcloud auth application-default login/);
    assert.deepEqual(iam.minted, [], 'no token was minted');
    await settle();
    assert.deepEqual(unhandled, []);
  });

  it('with a key the token endpoint refuses: exit 7 (expired or revoked) before Run is called', async () => {
    const key = await oauth.writeKeyFile(keyDir, `deployer@${PROJECT}.iam.gserviceaccount.com`);
    oauth.refuse('invalid_grant');
    // google-auth-library reads the key path from the process, the client factory its token_uri from vars.
    process.env.GOOGLE_APPLICATION_CREDENTIALS = key;
    try {
      const err = await rejectsWith(permissionsAsScheduler({ GOOGLE_APPLICATION_CREDENTIALS: key }), 7, /expired or revoked/);
      assert.match(err.suggestion ?? '', /gcloud auth application-default login/);
    } finally {
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      oauth.refuse(null);
    }
    assert.ok(oauth.requests.length > 0, 'the token request went to the key file token endpoint');
    assert.deepEqual(iam.minted, [], 'no token was minted for the scheduler');
    await settle();
    assert.deepEqual(unhandled, []);
  });

  it('when the operator may not mint tokens for the account: the grant to ask for, before Run is called', async () => {
    const key = await oauth.writeKeyFile(keyDir, `operator@${PROJECT}.iam.gserviceaccount.com`);
    iam.denyTokenCreator(SCHEDULER);
    process.env.GOOGLE_APPLICATION_CREDENTIALS = key;
    try {
      const err = await rejectsWith(
        permissionsAsScheduler({ GOOGLE_APPLICATION_CREDENTIALS: key }),
        7,
        /iam\.serviceAccounts\.getAccessToken/,
      );
      assert.match(err.suggestion ?? '', new RegExp(`add-iam-policy-binding ${SCHEDULER} .*roles/iam\\.serviceAccountTokenCreator`));
    } finally {
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    }
    await settle();
    assert.deepEqual(unhandled, []);
  });
});
