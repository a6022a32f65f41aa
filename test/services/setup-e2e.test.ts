/**
 * Acceptance of `setup --env staging` against the Google fakes, through the official clients:
 * on an empty project it creates everything, a second run changes nothing and says so, and
 * doctor then passes every check it can verify offline.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ExitCode, isConvergenceError } from '../../src/lib/errors.ts';
import { runDoctor } from '../../src/services/doctor/index.ts';
import { planSummary } from '../../src/services/setup/plan-table.ts';
import { runSetup, type SetupRunResult } from '../../src/services/setup/run.ts';
import { SETUP_ORDER, setupSteps } from '../../src/services/setup/steps/index.ts';
import { REQUIRED_APIS } from '../../src/services/setup/steps/apis.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const ENV = 'staging';
const IMAGE = `us-central1-docker.pkg.dev/${CLOUD_PROJECT}/convergence/convergence:1.0.0`;
const JOB = `convergence-pipeline-${ENV}`;
const JOB_ACCOUNT = `convergence-job-${ENV}@${CLOUD_PROJECT}.iam.gserviceaccount.com`;
const WRITE = /^(Create|Update|Delete|Set|Enable|Disable|Add|Remove|Import|Upload)/;

let fakes: CloudFakes;
let root: string;

const setup = (options: Parameters<typeof runSetup>[1] = {}) => withContext(root, (ctx) => runSetup(ctx, options), { env: ENV });
const configText = () => readFile(path.join(root, 'convergence.yaml'), 'utf8');
const writes = () =>
  fakes.grpc
    .calls()
    .filter((c) => WRITE.test(c.method))
    .map((c) => `${c.service}.${c.method}`);
const byId = (result: SetupRunResult) => Object.fromEntries(result.steps.map((s) => [s.id, s]));

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('setup-e2e');
  // An environment that names only its project, region, location and image: setup names the rest.
  await appendFile(
    path.join(root, 'convergence.yaml'),
    [`  ${ENV}:`, `    project: ${CLOUD_PROJECT}`, '    region: us-central1', '    location: US', `    image: ${IMAGE}`, ''].join('\n'),
  );
});

after(async () => {
  await fakes.stop();
  await cleanupAll();
});

describe(`setup --env ${ENV} on an empty project`, () => {
  it('--dry-run plans a change in every step and writes nothing', async () => {
    const before = await configText();
    const writesBefore = writes();
    const plan = await setup({ dryRun: true });
    assert.equal(plan.dryRun, true);
    assert.equal(plan.project, CLOUD_PROJECT);
    assert.deepEqual(
      plan.steps.map((s) => s.id),
      setupSteps().map((s) => s.id),
    );
    // Every kind of resource of the issue has its step.
    assert.deepEqual(
      plan.steps.map((s) => s.id),
      [...SETUP_ORDER],
    );
    for (const step of plan.steps) {
      assert.ok(step.changes.length > 0 || step.note?.startsWith('planned once'), `${step.id} plans a change: ${JSON.stringify(step)}`);
      assert.equal(step.applied, false);
    }
    assert.equal(await configText(), before, 'convergence.yaml untouched');
    assert.deepEqual(writes().slice(writesBefore.length), [], 'no write reached a Google fake');
    assert.equal(plan.doctor, null);
  });

  it('creates everything, and doctor passes every check it can verify offline', async () => {
    const result = await setup();
    const failed = result.doctor?.checks.filter((c) => c.status === 'fail');
    assert.deepEqual(failed, [], 'no doctor check fails');
    for (const step of result.steps) assert.equal(step.applied, true, `${step.id} applied: ${JSON.stringify(step)}`);

    const settings = (parse(await configText()) as { environments: Record<string, Record<string, unknown>> }).environments[ENV]!;
    assert.deepEqual(
      {
        kms_key: settings.kms_key,
        state_bucket: settings.state_bucket,
        service: settings.service,
        job: settings.job,
        job_service_account: settings.job_service_account,
      },
      {
        kms_key: `projects/${CLOUD_PROJECT}/locations/us-central1/keyRings/convergence-${ENV}/cryptoKeys/api-key-encryption`,
        state_bucket: `${CLOUD_PROJECT}-convergence-state-${ENV}`,
        service: `convergence-api-${ENV}`,
        job: JOB,
        job_service_account: JOB_ACCOUNT,
      },
    );

    // The job as deploy makes it: the environment's image, run as the job's own account.
    const job = fakes.run.job(`projects/${CLOUD_PROJECT}/locations/us-central1/jobs/${JOB}`);
    assert.ok(job, 'the Cloud Run job exists');
    const template = (job as { template: { template: { containers: Array<{ image: string }>; serviceAccount: string } } }).template
      .template;
    assert.equal(template.containers[0]!.image, IMAGE);
    assert.equal(template.serviceAccount, JOB_ACCOUNT);
    // Cloud Scheduler's account may start it with overrides, granted on the job alone.
    const policy = fakes.run.policies.describe(`projects/${CLOUD_PROJECT}/locations/us-central1/jobs/${JOB}`);
    assert.deepEqual(policy.bindings, [
      {
        role: 'roles/run.jobsExecutorWithOverrides',
        members: [`serviceAccount:convergence-sched-${ENV}@${CLOUD_PROJECT}.iam.gserviceaccount.com`],
      },
    ]);

    const tenants = await withContext(root, async (ctx) => (await ctx.backends.warehouse()).datasetExists('tenants'), { env: ENV });
    assert.ok(tenants, 'the tenants dataset exists');

    // What the other steps made, as the fakes of their APIs hold it.
    for (const api of REQUIRED_APIS) assert.ok(fakes.serviceUsage.isEnabled(CLOUD_PROJECT, api), `${api} enabled`);
    assert.equal(
      fakes.artifactRegistry.repository(`projects/${CLOUD_PROJECT}/locations/us-central1/repositories/convergence`)?.format,
      'DOCKER',
    );
    const account = (role: string) => `convergence-${role}-${ENV}@${CLOUD_PROJECT}.iam.gserviceaccount.com`;
    for (const role of ['api', 'job', 'sched']) assert.ok(fakes.iamAdmin.has(account(role)), `${account(role)} exists`);
    const projectRoles = (member: string) =>
      fakes.resourceManager
        .policy(CLOUD_PROJECT)
        .bindings.filter((b) => b.members.includes(member))
        .map((b) => b.role)
        .sort();
    assert.deepEqual(projectRoles(`serviceAccount:${JOB_ACCOUNT}`), [
      'roles/bigquery.dataEditor',
      'roles/bigquery.jobUser',
      'roles/logging.logWriter',
      'roles/secretmanager.secretAccessor',
    ]);
    assert.deepEqual(projectRoles(`serviceAccount:${account('sched')}`), [], 'the scheduler holds no project role');
    const key = fakes.kms.describeKey(String(settings.kms_key));
    assert.equal(key['purpose'], 'ENCRYPT_DECRYPT');
    assert.ok(key['rotationPeriod'], 'the key rotates');
    assert.deepEqual(fakes.kms.policy(String(settings.kms_key)).members('roles/cloudkms.cryptoKeyEncrypterDecrypter').sort(), [
      `serviceAccount:${account('api')}`,
      `serviceAccount:${JOB_ACCOUNT}`,
    ]);
    const bucket = fakes.gcs.bucketState(String(settings.state_bucket));
    assert.equal(bucket.uniformAccess, true);
    assert.equal(bucket.versioning, true);
    assert.equal(bucket.publicAccessPrevention, 'enforced');
  });

  it('a second run changes nothing and says so', async () => {
    const writesBefore = writes();
    const configBefore = await configText();
    const again = await setup();
    for (const [id, step] of Object.entries(byId(again))) {
      assert.deepEqual(step.changes, [], `${id} plans nothing`);
      assert.equal(step.applied, false, id);
    }
    assert.equal(planSummary(again), `Nothing to change: project ${CLOUD_PROJECT} (environment ${ENV}) is set up.`);
    assert.deepEqual(writes().slice(writesBefore.length), [], 'no write reached a Google fake');
    assert.equal(await configText(), configBefore);
    assert.equal(again.doctor?.ok, true);
  });

  it('doctor --env staging then passes every check it can verify offline', async () => {
    const report = await runDoctor(root, ENV);
    assert.equal(report.ok, true, JSON.stringify(report.checks.filter((c) => c.status === 'fail')));
    const status = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    for (const name of ['credentials', 'warehouse', 'schema', 'keyring', 'cloud run job', 'secret manager', 'locks', 'scheduler']) {
      assert.equal(status[name], 'pass', `${name}: ${JSON.stringify(report.checks.find((c) => c.name === name))}`);
    }
    // The one check setup cannot make pass: the service exists only after the first deploy.
    assert.equal(status['cloud run'], 'warn');
  });
});

describe('setup on a project where the caller may not grant roles', () => {
  const PERM = 'perm';
  const inPerm = (options: Parameters<typeof runSetup>[1] = {}) => withContext(root, (ctx) => runSetup(ctx, options), { env: PERM });

  it('stops at project_iam with exit 7 naming the permission and a role that has it; the rerun continues from there', async () => {
    await appendFile(
      path.join(root, 'convergence.yaml'),
      [`  ${PERM}:`, `    project: ${CLOUD_PROJECT}`, '    region: us-central1', '    location: US', `    image: ${IMAGE}`, ''].join('\n'),
    );
    fakes.resourceManager.granted.delete('resourcemanager.projects.setIamPolicy');
    let failure: unknown;
    try {
      await inPerm();
    } catch (err) {
      failure = err;
    } finally {
      fakes.resourceManager.granted.add('resourcemanager.projects.setIamPolicy');
    }
    assert.ok(isConvergenceError(failure), String(failure));
    assert.equal(failure.exitCode, ExitCode.auth, failure.message);
    assert.match(failure.message, /^setup step "project_iam"/);
    assert.match(`${failure.message} ${failure.suggestion}`, /resourcemanager\.projects\.setIamPolicy/);
    assert.match(`${failure.message} ${failure.suggestion}`, /roles\/resourcemanager\.projectIamAdmin|roles\/owner/);
    const partial = byId(failure.data?.setup as SetupRunResult);
    assert.equal(partial.service_accounts?.applied, true);
    assert.equal(partial.project_iam?.error?.exitCode, ExitCode.auth);

    const rerun = byId(await inPerm());
    assert.deepEqual(rerun.service_accounts?.changes, [], 'the accounts made before the failure stay');
    assert.equal(rerun.project_iam?.applied, true);
    assert.equal(rerun.job?.applied, true);
  });
});
