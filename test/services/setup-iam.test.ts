/**
 * setup's service_accounts and project_iam steps against the IAM and Resource Manager fakes,
 * through the official clients: plan on an empty project, apply, a rerun that changes nothing,
 * a concurrent writer's bindings kept, and the refusals (exit 7 naming permission and role).
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cloudEnv } from '../../src/backends/factory.ts';
import { ExitCode, isConvergenceError, type ConvergenceError } from '../../src/lib/errors.ts';
import { projectIamStep, withGrants } from '../../src/services/setup/steps/project-iam.ts';
import { serviceAccountsStep } from '../../src/services/setup/steps/service-accounts.ts';
import type { PlannedChange, SetupContext, SetupNames, SetupStep } from '../../src/services/setup/step.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { RESOURCE_MANAGER_PERMISSIONS } from '../fakes/grpc/resource-manager.ts';
import { IAM_ADMIN_PERMISSIONS } from '../fakes/iam-admin-api.ts';
import { newWorkspace, withContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

let fakes: CloudFakes;
let root: string;
let envCounter = 0;

const account = (id: string) => `${id}@${CLOUD_PROJECT}.iam.gserviceaccount.com`;

/** A fresh environment per test, so each starts with none of its accounts or grants. */
async function addEnv(extra: string[] = []): Promise<string> {
  const name = `iam${++envCounter}`;
  const lines = [...fakes.yaml(name).trimEnd().split('\n'), ...extra.map((line) => `    ${line}`)];
  await appendFile(path.join(root, 'convergence.yaml'), `${lines.join('\n')}\n`);
  return name;
}

/** The names setup derives for an environment (the seeds' defaults unless convergence.yaml names an account). */
function namesOf(setup: Omit<SetupContext, 'names'>): SetupNames {
  const { settings, name } = setup.env;
  return {
    apiAccount: settings.service_account ?? account(`convergence-api-${name}`),
    jobAccount: settings.job_service_account ?? account(`convergence-job-${name}`),
    schedulerAccount: settings.scheduler_service_account ?? account(`convergence-sched-${name}`),
    kmsKey: settings.kms_key ?? '',
    stateBucket: settings.state_bucket ?? '',
    registry: `projects/${CLOUD_PROJECT}/locations/us-central1/repositories/convergence`,
    adminKeySecret: `admin-api-key-${name}`,
  };
}

function setupOf(ctx: TestContext): SetupContext {
  const env = cloudEnv(ctx.env)!;
  const partial = { ctx, env, project: CLOUD_PROJECT };
  return { ...partial, names: namesOf(partial) };
}

const withSetup = <T>(env: string, work: (setup: SetupContext) => Promise<T>) => withContext(root, (ctx) => work(setupOf(ctx)), { env });

const STEPS = [serviceAccountsStep, projectIamStep];

/** Plans and applies each step in order, as setup does; returns every step's plan. */
async function runSteps(setup: SetupContext, steps: SetupStep[] = STEPS): Promise<Record<string, PlannedChange[]>> {
  const plans: Record<string, PlannedChange[]> = {};
  for (const step of steps) {
    plans[step.id] = await step.plan(setup);
    if (plans[step.id]!.length > 0) await step.apply(setup, plans[step.id]!);
  }
  return plans;
}

async function expectExit(promise: Promise<unknown>, exitCode: number): Promise<ConvergenceError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    assert.equal(err.exitCode, exitCode, err.message);
    return err;
  }
  assert.fail(`expected exit ${exitCode}, it succeeded`);
}

/** The members holding `role` unconditionally in the project policy. */
const holders = (role: string) =>
  fakes.resourceManager
    .policy(CLOUD_PROJECT)
    .bindings.filter((binding) => binding.role === role && !binding.condition)
    .flatMap((binding) => binding.members);

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('setup-iam');
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

describe('setup: service accounts and project IAM', () => {
  it('plans every account and grant on an empty project, applies them, and a rerun changes nothing', async () => {
    const env = await addEnv();
    const api = `serviceAccount:${account(`convergence-api-${env}`)}`;
    const job = `serviceAccount:${account(`convergence-job-${env}`)}`;
    const setIamCalls = fakes.grpc.calls('SetIamPolicy').length;
    const plans = await withSetup(env, (setup) => runSteps(setup));
    assert.deepEqual(
      plans.service_accounts!.map((change) => [change.action, change.resource]),
      ['api', 'job', 'sched'].map((kind) => [
        'create',
        `projects/${CLOUD_PROJECT}/serviceAccounts/${account(`convergence-${kind}-${env}`)}`,
      ]),
    );
    assert.match(plans.service_accounts![0]!.detail, /Convergence API \(iam\d+\)/);
    assert.deepEqual(
      plans.project_iam!.map((change) => `${change.action} ${change.detail}`),
      [
        `grant roles/bigquery.dataEditor to ${api}`,
        `grant roles/bigquery.jobUser to ${api}`,
        `grant roles/secretmanager.secretAccessor to ${api}`,
        `grant roles/bigquery.dataEditor to ${job}`,
        `grant roles/bigquery.jobUser to ${job}`,
        `grant roles/secretmanager.secretAccessor to ${job}`,
        `grant roles/logging.logWriter to ${job}`,
      ],
    );
    const created = fakes.iamAdmin.accounts().find((a) => a.email === account(`convergence-sched-${env}`));
    assert.equal(created?.displayName, `Convergence scheduler (${env})`);
    assert.ok(holders('roles/bigquery.jobUser').includes(api));
    assert.ok(holders('roles/logging.logWriter').includes(job));
    assert.ok(!holders('roles/logging.logWriter').includes(api), 'the API account does not write job logs');
    // One read-modify-write for all seven grants.
    assert.equal(fakes.grpc.calls('SetIamPolicy').length, setIamCalls + 1);

    const rerun = await withSetup(env, (setup) => runSteps(setup));
    assert.deepEqual(rerun, { service_accounts: [], project_iam: [] });
    assert.equal(fakes.grpc.calls('SetIamPolicy').length, setIamCalls + 1, 'a rerun writes nothing');
  });

  it("keeps another writer's binding that landed between its read and its write, and every binding it did not add", async () => {
    const env = await addEnv();
    const condition = { expression: 'request.time < timestamp("2031-01-01T00:00:00Z")', title: 'temporary', description: '', location: '' };
    const before = fakes.resourceManager.policy(CLOUD_PROJECT);
    fakes.resourceManager.seedPolicy(CLOUD_PROJECT, {
      version: 3,
      bindings: [...before.bindings, { role: 'roles/bigquery.jobUser', members: ['user:auditor@example.com'], condition }],
      auditConfigs: [{ service: 'allServices', auditLogConfigs: [{ logType: 'ADMIN_READ', exemptedMembers: [] }] }],
    });
    const seeded = fakes.resourceManager.policy(CLOUD_PROJECT);
    const aborted = () => fakes.grpc.calls('SetIamPolicy').filter((call) => call.code === 10).length;
    const abortedBefore = aborted();
    await withSetup(env, async (setup) => {
      await runSteps(setup, [serviceAccountsStep]);
      const changes = await projectIamStep.plan(setup);
      fakes.resourceManager.interleave((policy) =>
        policy.bindings.push({ role: 'roles/storage.admin', members: ['user:bob@example.com'] }),
      );
      await projectIamStep.apply(setup, changes);
    });
    assert.equal(aborted(), abortedBefore + 1, 'the first write lost the race and was retried');
    const after = fakes.resourceManager.policy(CLOUD_PROJECT);
    assert.deepEqual(holders('roles/storage.admin'), ['user:bob@example.com']);
    // What was there stays, in its place, with its members first; setup's members come after.
    for (const [index, binding] of seeded.bindings.entries()) {
      assert.equal(after.bindings[index]!.role, binding.role);
      assert.deepEqual(after.bindings[index]!.condition, binding.condition);
      assert.deepEqual(after.bindings[index]!.members.slice(0, binding.members.length), binding.members);
    }
    const conditional = after.bindings.find((binding) => binding.condition);
    assert.deepEqual(conditional?.members, ['user:auditor@example.com'], 'a conditional binding is not where setup grants');
    assert.deepEqual(after.auditConfigs, seeded.auditConfigs);
    assert.equal(after.version, 3);
    assert.ok(holders('roles/bigquery.jobUser').includes(`serviceAccount:${account(`convergence-job-${env}`)}`));
    assert.deepEqual(await withSetup(env, (setup) => projectIamStep.plan(setup)), []);
  });

  it('waits for an account IAM does not know yet right after its creation, then grants', async () => {
    const env = await addEnv();
    const job = account(`convergence-job-${env}`);
    const refused = () => fakes.grpc.calls('SetIamPolicy').filter((call) => call.code === 3).length;
    const refusedBefore = refused();
    await withSetup(env, async (setup) => {
      await runSteps(setup, [serviceAccountsStep]);
      fakes.resourceManager.notYetKnown(job, 2);
      await runSteps(setup, [projectIamStep]);
    });
    assert.equal(refused(), refusedBefore + 2);
    assert.ok(holders('roles/logging.logWriter').includes(`serviceAccount:${job}`));
  });

  it('a granted account that does not exist and is not being created: exit 2 naming it', async () => {
    const env = await addEnv();
    await withSetup(env, async (setup) => {
      const changes = await projectIamStep.plan(setup);
      const err = await expectExit(projectIamStep.apply(setup, changes), ExitCode.usage);
      assert.match(err.message, /has no service account convergence-(api|job)-iam\d+@/);
    });
  });

  it('gives up with a clear conflict when the policy keeps changing under it', async () => {
    const env = await addEnv();
    await withSetup(env, async (setup) => {
      await runSteps(setup, [serviceAccountsStep]);
      const changes = await projectIamStep.plan(setup);
      for (let i = 0; i < 5; i++)
        fakes.resourceManager.interleave((policy) => policy.bindings.push({ role: 'roles/viewer', members: [`user:w${i}@example.com`] }));
      const err = await expectExit(projectIamStep.apply(setup, changes), ExitCode.usage);
      assert.equal(err.code, 'CONFLICT');
      assert.match(err.message, /kept changing.*5 attempts/);
      assert.match(err.suggestion ?? '', /run setup again/);
    });
  });

  it('a caller without setIamPolicy: exit 7 naming the permission and the role; the rerun once granted picks up where it stopped', async () => {
    const env = await addEnv();
    fakes.resourceManager.granted.delete('resourcemanager.projects.setIamPolicy');
    try {
      const err = await withSetup(env, (setup) => expectExit(runSteps(setup), ExitCode.auth));
      assert.match(err.message, /resourcemanager\.projects\.setIamPolicy/);
      assert.match(err.suggestion ?? '', /roles\/resourcemanager\.projectIamAdmin/);
    } finally {
      fakes.resourceManager.granted = new Set(RESOURCE_MANAGER_PERMISSIONS);
    }
    // The accounts were made before the refusal: the rerun only grants.
    const rerun = await withSetup(env, (setup) => runSteps(setup));
    assert.deepEqual(rerun.service_accounts, []);
    assert.equal(rerun.project_iam!.length, 7);
    assert.deepEqual(await withSetup(env, (setup) => runSteps(setup)), { service_accounts: [], project_iam: [] });
  });

  it('a caller without iam.serviceAccounts.create: exit 7 naming the permission and roles/iam.serviceAccountAdmin', async () => {
    const env = await addEnv();
    fakes.iamAdmin.granted.delete('iam.serviceAccounts.create');
    try {
      const err = await withSetup(env, (setup) => expectExit(runSteps(setup), ExitCode.auth));
      assert.match(err.message, /iam\.serviceAccounts\.create/);
      assert.match(err.suggestion ?? '', /roles\/iam\.serviceAccountAdmin/);
    } finally {
      fakes.iamAdmin.granted = new Set(IAM_ADMIN_PERMISSIONS);
    }
  });

  it('an account created by someone else between plan and apply counts as created', async () => {
    const env = await addEnv();
    await withSetup(env, async (setup) => {
      const changes = await serviceAccountsStep.plan(setup);
      assert.equal(changes.length, 3);
      fakes.iamAdmin.beforeNextCreate(() => fakes.iamAdmin.addAccount(CLOUD_PROJECT, `convergence-api-${env}`, 'a concurrent setup'));
      await serviceAccountsStep.apply(setup, changes);
      assert.deepEqual(await serviceAccountsStep.plan(setup), []);
    });
  });

  it('uses an account convergence.yaml names in the project, and creates one account for two roles once', async () => {
    const shared = account('pipelines-shared');
    const env = await addEnv([`service_account: ${shared}`, `job_service_account: ${shared}`]);
    const plans = await withSetup(env, (setup) => runSteps(setup));
    assert.deepEqual(
      plans.service_accounts!.map((change) => change.resource.split('/').at(-1)),
      [shared, account(`convergence-sched-${env}`)],
    );
    const grants = plans.project_iam!.map((change) => change.detail);
    assert.equal(grants.length, 4, grants.join('\n'));
    assert.ok(grants.includes(`roles/logging.logWriter to serviceAccount:${shared}`));
  });

  it('refuses an account of another project named by convergence.yaml (exit 2, naming the key)', async () => {
    const env = await addEnv(['job_service_account: runner@other-project.iam.gserviceaccount.com']);
    const err = await withSetup(env, (setup) => expectExit(serviceAccountsStep.plan(setup), ExitCode.usage));
    assert.match(
      err.message,
      new RegExp(
        `environments\\.${env}\\.job_service_account is runner@other-project\\.iam\\.gserviceaccount\\.com, an account of project other-project`,
      ),
    );
    assert.match(err.suggestion ?? '', /remove job_service_account/);
  });

  it('refuses before creating anything an account id Google would refuse, suggesting a shorter one (exit 2)', async () => {
    const env = await addEnv([`scheduler_service_account: ${account('convergence-scheduler-production')}`]);
    const err = await withSetup(env, (setup) => expectExit(serviceAccountsStep.plan(setup), ExitCode.usage));
    assert.match(err.message, /its id "convergence-scheduler-production" \(32 characters\)/);
    assert.match(err.suggestion ?? '', new RegExp(`scheduler_service_account .* e\\.g\\. convergence-sched-${env}@`));
  });

  it('refuses a missing Google-managed account it cannot create (exit 2)', async () => {
    const env = await addEnv(['scheduler_service_account: 123456789012-compute@developer.gserviceaccount.com']);
    const err = await withSetup(env, (setup) => expectExit(serviceAccountsStep.plan(setup), ExitCode.usage));
    assert.match(err.message, /scheduler_service_account is 123456789012-compute@developer\.gserviceaccount\.com/);
  });
});

describe('withGrants', () => {
  it('adds members to unconditional bindings of the role, never to conditional ones, and reorders nothing', () => {
    const condition = { expression: 'true', title: 't', description: '', location: '' };
    const policy = {
      version: 3,
      etag: 'AAA=',
      bindings: [
        { role: 'roles/viewer', members: ['user:a@example.com'], condition },
        { role: 'roles/owner', members: ['user:o@example.com'] },
        { role: 'roles/viewer', members: ['user:b@example.com'] },
      ],
    };
    const { policy: next, added } = withGrants(policy, [
      { role: 'roles/viewer', member: 'serviceAccount:s@p.iam.gserviceaccount.com' },
      { role: 'roles/owner', member: 'user:o@example.com' },
      { role: 'roles/logging.logWriter', member: 'serviceAccount:s@p.iam.gserviceaccount.com' },
    ]);
    assert.deepEqual(
      added.map((grant) => grant.role),
      ['roles/viewer', 'roles/logging.logWriter'],
    );
    assert.deepEqual(next.bindings, [
      { role: 'roles/viewer', members: ['user:a@example.com'], condition },
      { role: 'roles/owner', members: ['user:o@example.com'] },
      { role: 'roles/viewer', members: ['user:b@example.com', 'serviceAccount:s@p.iam.gserviceaccount.com'] },
      { role: 'roles/logging.logWriter', members: ['serviceAccount:s@p.iam.gserviceaccount.com'] },
    ]);
    assert.equal(next.etag, 'AAA=');
    assert.deepEqual(policy.bindings[2]!.members, ['user:b@example.com'], 'the policy read is not changed in place');
  });
});
