/** setup's plan → diff → apply flow, with stand-in steps over the cloud fakes (the real steps have their own tests). */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { authError, ConvergenceError, ExitCode, isConvergenceError } from '../../src/lib/errors.ts';
import { planRows, planSummary } from '../../src/services/setup/plan-table.ts';
import { runSetup, type SetupOptions, type SetupRunResult } from '../../src/services/setup/run.ts';
import type { PlannedChange, SetupContext } from '../../src/services/setup/step.ts';
import { configStep } from '../../src/services/setup/steps/config.ts';
import { datasetStep } from '../../src/services/setup/steps/dataset.ts';
import { setupSteps, SETUP_ORDER, type RegisteredStep } from '../../src/services/setup/steps/index.ts';
import { jobStep } from '../../src/services/setup/steps/job.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

let fakes: CloudFakes;
let root: string;
let envCounter = 0;

/** A fresh cloud environment per test: the fakes' settings, without the keys a test leaves out. */
async function addEnv(options: { drop?: string[]; extra?: string[] } = {}): Promise<string> {
  const name = `set${++envCounter}`;
  const drop = options.drop ?? [];
  const lines = fakes
    .yaml(name)
    .trimEnd()
    .split('\n')
    .filter((l) => !drop.some((key) => l.startsWith(`    ${key}:`)));
  await appendFile(path.join(root, 'convergence.yaml'), `${[...lines, ...(options.extra ?? [])].join('\n')}\n`);
  return name;
}

/** A step over an in-memory set of resources: plans a create for each one missing, counts its writes. */
function memoryStep(id: string, wanted: string[], options: { failApplyOnce?: Error; failPlanOnce?: Error } = {}) {
  const made = new Set<string>();
  const counts = { plans: 0, applies: 0 };
  let { failApplyOnce, failPlanOnce } = options;
  const step: RegisteredStep = {
    id,
    title: `Make ${id}`,
    plan: async (): Promise<PlannedChange[]> => {
      counts.plans++;
      if (failPlanOnce) {
        const err = failPlanOnce;
        failPlanOnce = undefined;
        throw err;
      }
      return wanted.filter((r) => !made.has(r)).map((resource) => ({ action: 'create', resource, detail: `${id} ${resource}` }));
    },
    apply: async (_setup: SetupContext, changes: PlannedChange[]) => {
      counts.applies++;
      // Half of the work lands before the failure, as a real partial apply would.
      made.add(changes[0]!.resource);
      if (failApplyOnce) {
        const err = failApplyOnce;
        failApplyOnce = undefined;
        throw err;
      }
      for (const change of changes) made.add(change.resource);
    },
  };
  return { step, made, counts };
}

const setup = (env: string, options: SetupOptions = {}) => withContext(root, (ctx) => runSetup(ctx, options), { env });

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

const stepOf = (result: SetupRunResult, id: string) => result.steps.find((s) => s.id === id)!;
const envYaml = async (env: string) =>
  (parse(await readFile(path.join(root, 'convergence.yaml'), 'utf8')) as { environments: Record<string, Record<string, unknown>> })
    .environments[env]!;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('setup');
});

after(async () => {
  await fakes.stop();
  await cleanupAll();
});

describe('setup flow', () => {
  it('plans every step, applies them in order, then a rerun plans nothing and says so', async () => {
    const env = await addEnv();
    const a = memoryStep('apis', ['services/run.googleapis.com', 'services/iam.googleapis.com']);
    const b = memoryStep('kms', ['keyRings/r']);
    const steps = [a.step, b.step, datasetStep];
    let planned: SetupRunResult | undefined;
    const first = await setup(env, { steps, onPlan: (p) => (planned = structuredClone(p)) });
    assert.deepEqual(
      planned!.steps.map((s) => [s.id, s.changes.length, s.applied]),
      [
        ['apis', 2, false],
        ['kms', 1, false],
        ['dataset', planned!.steps[2]!.changes.length, false],
      ],
    );
    assert.deepEqual(
      first.steps.map((s) => [s.id, s.applied]),
      [
        ['apis', true],
        ['kms', true],
        ['dataset', stepOf(first, 'dataset').changes.length > 0],
      ],
    );
    assert.equal(first.doctor?.ok, true, JSON.stringify(first.doctor?.checks.filter((c) => c.status === 'fail')));
    assert.equal(first.project, CLOUD_PROJECT);

    const second = await setup(env, { steps });
    assert.ok(second.steps.every((s) => s.changes.length === 0 && !s.applied));
    assert.equal(planSummary(second), `Nothing to change: project ${CLOUD_PROJECT} (environment ${env}) is set up.`);
    assert.deepEqual(
      planRows(second).map((r) => r.detail),
      ['nothing to change', 'nothing to change', 'nothing to change'],
    );
    assert.deepEqual([a.counts.applies, b.counts.applies], [1, 1]);
  });

  it('--dry-run prints the plan and changes nothing, convergence.yaml included', async () => {
    const env = await addEnv({ drop: ['kms_key', 'state_bucket'] });
    const before = await readFile(path.join(root, 'convergence.yaml'), 'utf8');
    const a = memoryStep('apis', ['services/run.googleapis.com']);
    const result = await setup(env, { steps: [configStep, a.step], dryRun: true });
    assert.equal(result.dryRun, true);
    assert.equal(result.doctor, null);
    assert.equal(a.counts.applies, 0);
    assert.equal(await readFile(path.join(root, 'convergence.yaml'), 'utf8'), before);
    const config = stepOf(result, 'config').changes.map((c) => c.detail);
    assert.ok(
      config.includes(
        `environments.${env}.kms_key = projects/${CLOUD_PROJECT}/locations/us-central1/keyRings/convergence-${env}/cryptoKeys/api-key-encryption`,
      ),
    );
    assert.ok(config.includes(`environments.${env}.state_bucket = ${CLOUD_PROJECT}-convergence-state-${env}`));
    assert.match(planSummary(result), /^Dry run, nothing written: \d+ change\(s\) planned/);
  });

  it('a failing step stops setup with its exit code; the steps before stay applied and a rerun plans only what is left', async () => {
    const env = await addEnv();
    const a = memoryStep('apis', ['services/run.googleapis.com']);
    const refused = authError("Permission 'resourcemanager.projects.setIamPolicy' denied on project demo-project", {
      suggestion: 'grant roles/resourcemanager.projectIamAdmin to the caller',
    });
    const b = memoryStep('project_iam', ['roles/bigquery.dataEditor', 'roles/bigquery.jobUser'], { failApplyOnce: refused });
    const c = memoryStep('kms', ['keyRings/r']);
    const steps = [a.step, b.step, c.step, datasetStep];
    const err = await expectExit(setup(env, { steps }), ExitCode.auth);
    assert.match(
      err.message,
      /setup step "project_iam" \(Make project_iam\) failed: Permission 'resourcemanager\.projects\.setIamPolicy' denied/,
    );
    assert.match(err.suggestion ?? '', /roles\/resourcemanager\.projectIamAdmin.*run setup again to continue/);
    const partial = err.data?.setup as SetupRunResult;
    assert.deepEqual(
      partial.steps.map((s) => [s.id, s.applied, s.error?.exitCode]),
      [
        ['apis', true, undefined],
        ['project_iam', false, ExitCode.auth],
        ['kms', false, undefined],
        ['dataset', false, undefined],
      ],
    );
    assert.equal(c.counts.applies, 0, 'nothing after the failed step is applied');

    const rerun = await setup(env, { steps });
    assert.deepEqual(
      rerun.steps.map((s) => [s.id, s.changes.map((ch) => ch.resource)]),
      [
        ['apis', []],
        ['project_iam', ['roles/bigquery.jobUser']],
        ['kms', ['keyRings/r']],
        ['dataset', []],
      ],
    );
    assert.equal(a.counts.applies, 1);
  });

  it('a step whose API an earlier step enables is planned when reached', async () => {
    const env = await addEnv();
    const a = memoryStep('apis', ['services/cloudkms.googleapis.com']);
    const disabled = new ConvergenceError(
      'SERVICE_DISABLED',
      ExitCode.auth,
      'cloudkms.googleapis.com is not enabled in project demo-project',
    );
    const b = memoryStep('kms', ['keyRings/r'], { failPlanOnce: disabled });
    let planned: SetupRunResult | undefined;
    const result = await setup(env, { steps: [a.step, b.step, datasetStep], onPlan: (p) => (planned = structuredClone(p)) });
    assert.match(stepOf(planned!, 'kms').note ?? '', /^planned once the steps before it are applied \(cloudkms/);
    assert.deepEqual(stepOf(result, 'kms').changes, [{ action: 'create', resource: 'keyRings/r', detail: 'kms keyRings/r' }]);
    assert.equal(stepOf(result, 'kms').applied, true);
  });

  it('a refusal while planning, with nothing before it to enable, stops before anything is written', async () => {
    const env = await addEnv();
    const a = memoryStep('apis', []);
    const b = memoryStep('kms', ['keyRings/r'], { failPlanOnce: authError("Permission 'cloudkms.keyRings.get' denied") });
    const c = memoryStep('state_bucket', ['b']);
    const err = await expectExit(setup(env, { steps: [a.step, c.step, b.step] }), ExitCode.auth);
    assert.match(err.message, /setup step "kms".*cloudkms\.keyRings\.get/);
    assert.equal(c.counts.applies, 0);
  });

  it('a production environment asks first; without an answer it is refused and nothing is written', async () => {
    const env = await addEnv({ extra: ['    production: true'] });
    const a = memoryStep('apis', ['services/run.googleapis.com']);
    const refused = await expectExit(setup(env, { steps: [a.step, datasetStep] }), ExitCode.usage);
    assert.match(refused.message, new RegExp(`refusing to set up production environment ${env} without confirmation`));
    assert.equal(a.counts.applies, 0);

    const questions: string[] = [];
    const done = await setup(env, { steps: [a.step, datasetStep], confirm: async (q) => void questions.push(q) });
    assert.deepEqual(questions, [`Change project ${CLOUD_PROJECT} for production environment ${env}?`]);
    assert.equal(stepOf(done, 'apis').applied, true);

    // Nothing to change: nothing to ask.
    await setup(env, { steps: [a.step, datasetStep], confirm: async (q) => void questions.push(q) });
    assert.equal(questions.length, 1);
  });

  it('the local environment is refused with exit 2', async () => {
    const err = await expectExit(setup('local', { steps: [] }), ExitCode.usage);
    assert.match(err.message, /environment "local" is local: setup prepares a Google Cloud project/);
  });

  it('a failing doctor check after apply fails setup (exit 2) with the setup in the error data', async () => {
    const env = await addEnv({ drop: ['state_bucket'], extra: ['    state_bucket: no-such-bucket-convergence'] });
    const err = await expectExit(setup(env, { steps: [datasetStep] }), ExitCode.usage);
    assert.match(err.message, /^setup applied, but doctor \d+ check\(s\) failed: .*locks/);
    const result = err.data?.setup as SetupRunResult;
    assert.equal(result.doctor?.checks.find((c) => c.name === 'locks')?.status, 'fail');
  });
});

describe('names in convergence.yaml', () => {
  it('apply writes the names the environment lacks, keeps comments and explicit settings, and a rerun writes none', async () => {
    const env = await addEnv({
      drop: ['service'],
      extra: ['    # operator note: keep this', '    service_account: api@demo-project.iam.gserviceaccount.com'],
    });
    const result = await setup(env, { steps: [configStep, datasetStep, jobStep] });
    assert.deepEqual(
      stepOf(result, 'config').changes.map((c) => c.detail.split(' = ')[0]),
      ['service', 'job', 'job_service_account', 'scheduler_service_account'].map((k) => `environments.${env}.${k}`),
    );
    // The job is skipped (no image): the scheduler check failing on the missing job does not fail setup.
    assert.equal(result.doctor?.checks.find((c) => c.name === 'scheduler')?.status, 'fail');
    const text = await readFile(path.join(root, 'convergence.yaml'), 'utf8');
    assert.match(text, /# operator note: keep this/);
    const settings = await envYaml(env);
    assert.equal(settings.service_account, 'api@demo-project.iam.gserviceaccount.com');
    assert.equal(settings.job_service_account, `convergence-job-${env}@${CLOUD_PROJECT}.iam.gserviceaccount.com`);
    assert.equal(settings.scheduler_service_account, `convergence-sched-${env}@${CLOUD_PROJECT}.iam.gserviceaccount.com`);
    assert.equal(settings.service, `convergence-api-${env}`);
    assert.equal(settings.job, `convergence-pipeline-${env}`);

    const rerun = await setup(env, { steps: [configStep, datasetStep, jobStep] });
    assert.deepEqual(stepOf(rerun, 'config').changes, []);
  });

  it('the job step is skipped until the environment has an image', async () => {
    const env = await addEnv();
    const result = await setup(env, { steps: [datasetStep, jobStep] });
    assert.equal(stepOf(result, 'job').note, 'skipped: set image in convergence.yaml or run deploy');
    assert.equal(stepOf(result, 'job').applied, false);
  });
});

describe('step registry', () => {
  it('runs the registered steps in SETUP_ORDER, whatever their place in the list', () => {
    const ids = setupSteps().map((s) => s.id);
    const known = ids.filter((id) => (SETUP_ORDER as readonly string[]).includes(id));
    assert.deepEqual(
      known,
      SETUP_ORDER.filter((id) => ids.includes(id)),
    );
    for (const id of ['config', 'dataset', 'job']) assert.ok(ids.includes(id), id);
  });
});
