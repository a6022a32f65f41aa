/**
 * The GitHub Actions workflow of `init --ci github`: valid YAML of GitHub's workflow shape (jobs,
 * needs, if, permissions, environments, concurrency), Workload Identity Federation as the only
 * credentials, its shell steps run for real (every tenant validated, tenant folder names never
 * executed, the credentials wrap google-auth-library mints ID tokens from), the environments taken
 * from convergence.yaml, and an existing workflow never overwritten.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { execa } from 'execa';
import { GoogleAuth } from 'google-auth-library';
import { parseDocument } from 'yaml';
import type { WorkspaceConfig } from '../../src/config/schema.ts';
import { ID_TOKEN_STEP_NAME, renderGithubWorkflow, type CiTargets } from '../../src/services/ci-github-workflow.ts';
import { GITHUB_WORKFLOW_FILE, githubNextSteps, pickCiTargets, writeCiWorkflow } from '../../src/services/ci-workflow.ts';
import { initWorkspace } from '../../src/services/init.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  name: string;
  needs?: string;
  if?: string;
  'runs-on': string;
  environment?: string;
  concurrency: { group: string; 'cancel-in-progress': boolean };
  env: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: { pull_request: null; push: { branches: string[] } };
  permissions: Record<string, string>;
  env: Record<string, string>;
  jobs: { validate: Job; 'deploy-staging': Job; 'deploy-production': Job };
}

const TARGETS: CiTargets = {
  staging: { name: 'staging', project: 'acme-stage', found: true },
  production: { name: 'prod', project: 'acme-prod', found: true },
};

/** Parses the workflow, failing on any YAML error or warning. */
function parseWorkflow(text: string): Workflow {
  const doc = parseDocument(text, { uniqueKeys: true });
  assert.deepEqual(doc.errors, [], 'the workflow is valid YAML');
  assert.deepEqual(doc.warnings, []);
  return doc.toJS() as Workflow;
}

const stepNamed = (job: Job, name: string) => {
  const step = job.steps.find((s) => s.name === name);
  assert.ok(step?.run, `job ${job.name} has the step "${name}"`);
  return step as Step & { run: string };
};

/** Runs one `run:` script as the runner does (bash -e), with `convergence` stubbed to log its arguments. */
async function runStep(script: string, cwd: string, env: Record<string, string>, failTenant?: string) {
  const bin = path.join(cwd, '.stub-bin');
  await mkdir(bin, { recursive: true });
  const log = path.join(cwd, 'convergence-calls.log');
  const fail = failTenant ? `case "$*" in *"--tenant ${failTenant} "*) exit 2;; esac\n` : '';
  await writeFile(path.join(bin, 'convergence'), `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >> "${log}"\n${fail}`);
  await chmod(path.join(bin, 'convergence'), 0o755);
  const result = await execa('bash', ['-e', '-c', script], {
    cwd,
    env: { ...env, PATH: `${bin}:${process.env.PATH}` },
    reject: false,
  });
  const calls = await readFile(log, 'utf8').then(
    (t) => t.trim().split('\n'),
    () => [],
  );
  return { exitCode: result.exitCode, calls, stderr: result.stderr };
}

describe('the GitHub workflow', () => {
  const text = renderGithubWorkflow(TARGETS, '1.2.3');
  const workflow = parseWorkflow(text);
  const { validate, 'deploy-staging': staging, 'deploy-production': production } = workflow.jobs;

  it('validates on pull requests and pushes, deploys develop to staging and main to production after validation', () => {
    assert.deepEqual(Object.keys(workflow.jobs), ['validate', 'deploy-staging', 'deploy-production']);
    assert.ok('pull_request' in workflow.on);
    assert.deepEqual(workflow.on.push.branches, ['develop', 'main']);
    assert.equal(validate.if, undefined, 'validation runs on every event');
    assert.equal(staging.needs, 'validate');
    assert.equal(production.needs, 'validate');
    assert.equal(staging.if, "github.event_name == 'push' && github.ref == 'refs/heads/develop'");
    assert.equal(production.if, "github.event_name == 'push' && github.ref == 'refs/heads/main'");
    for (const job of Object.values(workflow.jobs)) assert.equal(job['runs-on'], 'ubuntu-latest');
  });

  it('targets the environments of convergence.yaml, production behind its GitHub environment and --yes', () => {
    assert.equal(validate.env.CONVERGENCE_ENV, 'staging');
    assert.equal(staging.environment, 'staging');
    assert.equal(staging.env.CONVERGENCE_ENV, 'staging');
    assert.equal(production.environment, 'prod');
    assert.equal(production.env.CONVERGENCE_ENV, 'prod');
    const deploy = (job: Job) => stepNamed(job, "Deploy the environment's image with a canary").run;
    assert.equal(deploy(staging), 'convergence deploy --env "$CONVERGENCE_ENV" --canary');
    assert.equal(deploy(production), 'convergence deploy --env "$CONVERGENCE_ENV" --canary --yes');
    assert.match(text, /deploy --canary` to staging \(project acme-stage\)/);
    assert.match(text, /the same to prod \(project acme-prod\)/);
    assert.doesNotMatch(text, /PLACEHOLDER/);
  });

  it('never runs two deploys of one environment at once, and never cancels one', () => {
    assert.deepEqual(staging.concurrency, { group: 'convergence-deploy-staging', 'cancel-in-progress': false });
    assert.deepEqual(production.concurrency, { group: 'convergence-deploy-prod', 'cancel-in-progress': false });
    assert.equal(validate.concurrency['cancel-in-progress'], true, 'a newer commit of a pull request supersedes its validation');
  });

  it('authenticates only by Workload Identity Federation, with the OIDC token permission and nothing more', () => {
    assert.deepEqual(workflow.permissions, { contents: 'read', 'id-token': 'write' });
    for (const job of Object.values(workflow.jobs)) {
      const auth = job.steps.filter((s) => s.uses?.startsWith('google-github-actions/auth@'));
      assert.equal(auth.length, 1, `${job.name} authenticates once`);
      assert.deepEqual(auth[0]!.with, {
        workload_identity_provider: '${{ vars.GCP_WIF_PROVIDER }}',
        service_account: '${{ vars.GCP_DEPLOY_SA }}',
      });
      const setupNode = job.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
      assert.deepEqual(setupNode?.with, { 'node-version': 22 });
      assert.ok(job.steps[0]!.uses?.startsWith('actions/checkout@'), `${job.name} checks the workspace out first`);
    }
    assert.doesNotMatch(text, /credentials_json|secrets\.|GOOGLE_CREDENTIALS|private_key/, 'no key file or JSON secret');
  });

  it('pins every action to a major version and the CLI to the version that wrote it', () => {
    const uses = Object.values(workflow.jobs).flatMap((job) => job.steps.flatMap((s) => (s.uses ? [s.uses] : [])));
    assert.ok(uses.length >= 9);
    for (const ref of uses) assert.match(ref, /^[a-z-]+\/[a-z-]+@v\d+$/, ref);
    assert.equal(workflow.env.CONVERGENCE_PACKAGE, 'convergence@1.2.3');
  });

  it('keeps event data out of every shell script, and every script is valid bash', async () => {
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps) {
        if (!step.run) continue;
        assert.doesNotMatch(step.run, /\$\{\{/, `${job.name} / ${step.name}: no expression is pasted into a script`);
        const syntax = await execa('bash', ['-n', '-c', step.run], { reject: false });
        assert.equal(syntax.exitCode, 0, `${step.name}: ${syntax.stderr}`);
      }
    }
  });

  it('validates every tenant folder of configs/, reports all failures, and never executes a folder name', async () => {
    const ws = await makeTempDir('ci-loop');
    for (const tenant of ['acme_corp', 'globex', '$(touch pwned)']) await mkdir(path.join(ws, 'configs', tenant), { recursive: true });
    await writeFile(path.join(ws, 'configs', 'README.md'), 'not a tenant');
    const script = stepNamed(validate, "Validate every tenant's pipelines").run;
    const ok = await runStep(script, ws, { CONVERGENCE_ENV: 'staging' });
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.deepEqual(ok.calls.sort(), [
      'pipeline validate --tenant $(touch pwned) --env staging',
      'pipeline validate --tenant acme_corp --env staging',
      'pipeline validate --tenant globex --env staging',
    ]);
    await assert.rejects(stat(path.join(ws, 'pwned')), 'the folder name was passed as a value, not run');

    const failing = await makeTempDir('ci-loop-fail');
    for (const tenant of ['acme_corp', 'globex']) await mkdir(path.join(failing, 'configs', tenant), { recursive: true });
    const bad = await runStep(script, failing, { CONVERGENCE_ENV: 'staging' }, 'acme_corp');
    assert.equal(bad.exitCode, 1, 'an invalid tenant fails the job');
    assert.equal(bad.calls.length, 2, 'after every tenant was checked');

    const empty = await makeTempDir('ci-loop-empty');
    await mkdir(path.join(empty, 'configs'));
    const none = await runStep(script, empty, { CONVERGENCE_ENV: 'staging' });
    assert.deepEqual([none.exitCode, none.calls], [0, []], 'no tenant yet: nothing to check');
  });

  it('deploys first, then pushes every tenant pipelines to the same environment', async () => {
    const names = production.steps.map((s) => s.name ?? s.uses);
    assert.ok(names.indexOf("Deploy the environment's image with a canary") < names.indexOf("Push every tenant's pipelines"));
    const ws = await makeTempDir('ci-push');
    await mkdir(path.join(ws, 'configs', 'acme_corp'), { recursive: true });
    const pushed = await runStep(stepNamed(production, "Push every tenant's pipelines").run, ws, { CONVERGENCE_ENV: 'prod' });
    assert.deepEqual(pushed.calls, ['pipeline push --tenant acme_corp --env prod']);
  });

  it("wraps the auth step's external_account credentials into ones google-auth-library mints ID tokens from", async () => {
    assert.ok(!validate.steps.some((s) => s.name === ID_TOKEN_STEP_NAME), 'validation probes nothing');
    const script = stepNamed(staging, ID_TOKEN_STEP_NAME).run;
    const dir = await makeTempDir('ci-creds');
    const account = 'convergence-deploy@acme-stage.iam.gserviceaccount.com';
    // The shape google-github-actions/auth writes for workload_identity_provider + service_account.
    const federated = {
      type: 'external_account',
      audience: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/github/providers/github',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      credential_source: {
        url: 'https://pipelines.actions.invalid/idtoken?audience=x',
        headers: { Authorization: 'Bearer runner-request-token' },
        format: { type: 'json', subject_token_field_name: 'value' },
      },
    };
    const source = path.join(dir, 'gha-creds.json');
    await writeFile(
      source,
      JSON.stringify({
        ...federated,
        service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${account}:generateAccessToken`,
      }),
    );
    const githubEnv = path.join(dir, 'github-env');
    await writeFile(githubEnv, '');
    const result = await execa('bash', ['-e', '-c', script], {
      env: { GOOGLE_APPLICATION_CREDENTIALS: source, RUNNER_TEMP: dir, GITHUB_ENV: githubEnv, PATH: process.env.PATH },
      reject: false,
    });
    assert.equal(result.exitCode, 0, result.stderr);
    const wrappedPath = path.join(dir, 'convergence-credentials.json');
    assert.equal(await readFile(githubEnv, 'utf8'), `GOOGLE_APPLICATION_CREDENTIALS=${wrappedPath}\n`);
    assert.equal((await stat(wrappedPath)).mode & 0o777, 0o600, 'the runner token it carries stays private');
    const wrapped = JSON.parse(await readFile(wrappedPath, 'utf8')) as { type: string; source_credentials: unknown };
    assert.equal(wrapped.type, 'impersonated_service_account');
    assert.deepEqual(wrapped.source_credentials, federated, 'the federated token itself, without the impersonation');

    await assert.rejects(new GoogleAuth({ keyFile: source }).getIdTokenClient('https://svc.a.run.app'), /Cannot fetch ID token/);
    const auth = new GoogleAuth({ keyFile: wrappedPath });
    const client = (await auth.getClient()) as unknown as { targetPrincipal?: string };
    assert.equal(client.targetPrincipal, account, 'the same deploy account');
    await auth.getIdTokenClient('https://svc.a.run.app');

    // Federation without an account to impersonate: the auth step's file is left as it is.
    const direct = path.join(dir, 'direct.json');
    await writeFile(direct, JSON.stringify(federated));
    await writeFile(githubEnv, '');
    const left = await execa('bash', ['-e', '-c', script], {
      env: { GOOGLE_APPLICATION_CREDENTIALS: direct, RUNNER_TEMP: path.join(dir, 'none'), GITHUB_ENV: githubEnv, PATH: process.env.PATH },
      reject: false,
    });
    assert.equal(left.exitCode, 0, left.stderr);
    assert.equal(await readFile(githubEnv, 'utf8'), '');
  });

  it('names placeholders where convergence.yaml has no staging or production environment', () => {
    const placeholders = renderGithubWorkflow(pickCiTargets({}), '1.2.3');
    const parsed = parseWorkflow(placeholders);
    assert.equal(parsed.jobs['deploy-staging'].environment, 'staging');
    assert.equal(parsed.jobs['deploy-production'].environment, 'production');
    assert.equal(placeholders.match(/# PLACEHOLDER: convergence.yaml has no (staging|production) environment yet/g)?.length, 3);
  });
});

describe('pickCiTargets', () => {
  const gcp = (extra: Record<string, unknown> = {}) => ({
    region: 'us-central1',
    location: 'US',
    public: false,
    production: false,
    ...extra,
  });
  const envs = (entries: Record<string, unknown>) => entries as WorkspaceConfig['environments'];

  it('takes production from `production: true` and staging by name, ignoring local environments', () => {
    const targets = pickCiTargets(
      envs({
        local: { backend: 'local' },
        dev: gcp({ project: 'acme-dev' }),
        live: gcp({ project: 'acme-live', production: true }),
        stage: gcp({ project: 'acme-stage' }),
      }),
    );
    assert.deepEqual(targets, {
      staging: { name: 'stage', project: 'acme-stage', found: true },
      production: { name: 'live', project: 'acme-live', found: true },
    });
  });

  it('falls back to a production named prod and the first other cloud environment, else placeholders', () => {
    assert.deepEqual(pickCiTargets(envs({ local: null, prod: gcp(), qa: gcp({ project: 'acme-qa' }) })), {
      staging: { name: 'qa', project: 'acme-qa', found: true },
      production: { name: 'prod', found: true },
    });
    assert.deepEqual(pickCiTargets(envs({ local: { backend: 'local' } })), {
      staging: { name: 'staging', found: false },
      production: { name: 'production', found: false },
    });
  });
});

describe('githubNextSteps', () => {
  it('sets up each project, federates the repository with the deploy account and names the variables', () => {
    const steps = githubNextSteps(TARGETS).join('\n');
    assert.match(steps, /convergence setup --env staging\n\s+convergence setup --env prod\n/);
    for (const project of ['acme-stage', 'acme-prod']) {
      assert.match(steps, new RegExp(`workload-identity-pools create github --project=${project} `));
      assert.match(
        steps,
        new RegExp(
          `--role=roles/iam.workloadIdentityUser --member="principalSet://iam.googleapis.com/projects/\\$\\(gcloud projects describe ${project} `,
        ),
      );
    }
    assert.match(steps, /--attribute-condition="assertion.repository=='OWNER\/REPO'"/);
    for (const runtime of ['convergence-api-staging@acme-stage', 'convergence-job-staging@acme-stage', 'convergence-api-prod@acme-prod']) {
      assert.match(steps, new RegExp(`add-iam-policy-binding ${runtime}.iam.gserviceaccount.com .*roles/iam.serviceAccountUser`), runtime);
    }
    assert.match(steps, /gh variable set GCP_WIF_PROVIDER --body /);
    assert.match(steps, /gh variable set GCP_DEPLOY_SA --env prod --body convergence-deploy@acme-prod.iam.gserviceaccount.com/);
    assert.match(steps, /Require a reviewer for the GitHub environment "prod"/);
    assert.doesNotMatch(steps, /keys create|credentials_json|key-file/, 'no service account key is ever made');
  });

  it('federates a project shared by both environments once, acting as the accounts convergence.yaml names', () => {
    const shared: CiTargets = {
      staging: { name: 'staging', project: 'acme', found: true },
      production: { name: 'prod', project: 'acme', found: true },
    };
    const environments = {
      staging: { service_account: 'runner@acme.iam.gserviceaccount.com' },
      prod: { service_account: 'api@acme.iam.gserviceaccount.com', job_service_account: 'jobs@acme.iam.gserviceaccount.com' },
    } as unknown as WorkspaceConfig['environments'];
    const steps = githubNextSteps(shared, environments).join('\n');
    assert.equal(steps.match(/workload-identity-pools create github/g)?.length, 1);
    const actAs = [...steps.matchAll(/add-iam-policy-binding (\S+) .*roles\/iam.serviceAccountUser/g)].map((m) => m[1]);
    assert.deepEqual(actAs, [
      'runner@acme.iam.gserviceaccount.com',
      'api@acme.iam.gserviceaccount.com',
      'jobs@acme.iam.gserviceaccount.com',
    ]);
  });
});

describe('writeCiWorkflow', () => {
  it('writes .github/workflows/convergence.yml for the environments of convergence.yaml, and never overwrites it', async () => {
    const root = await makeTempDir('ci-write');
    await initWorkspace(root);
    await writeFile(
      path.join(root, 'convergence.yaml'),
      'version: 1\nenvironments:\n  local: { backend: local }\n  staging: { project: acme-stage }\n  prod: { project: acme-prod, production: true }\n',
    );
    const first = await writeCiWorkflow(root, 'github', '1.2.3');
    assert.equal(first.file, GITHUB_WORKFLOW_FILE);
    assert.equal(first.written, true);
    assert.deepEqual([first.staging.name, first.production.name], ['staging', 'prod']);
    const file = path.join(root, '.github', 'workflows', 'convergence.yml');
    const written = await readFile(file, 'utf8');
    assert.equal(parseWorkflow(written).jobs['deploy-production'].environment, 'prod');

    await writeFile(file, `${written}# edited by hand\n`);
    const second = await writeCiWorkflow(root, 'github', '9.9.9');
    assert.equal(second.written, false);
    assert.equal(await readFile(file, 'utf8'), `${written}# edited by hand\n`, 'an existing workflow is kept as it is');
  });
});
