/**
 * `init --ci github` as a user runs it, black-box against the built CLI: the workflow written for
 * the environments of convergence.yaml, the next steps printed (setup, federation, variables),
 * --json, the combination with --example, an existing workflow kept, and the refusals (an
 * unknown CI system, an invalid convergence.yaml) that write no workflow.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

const WORKFLOW = path.join('.github', 'workflows', 'convergence.yml');

interface InitCiJson {
  created: string[];
  kept: string[];
  ci: { provider: string; file: string; written: boolean; staging: { name: string }; production: { name: string }; nextSteps: string[] };
}

interface Jobs {
  jobs: Record<string, { environment?: string; env: { CONVERGENCE_ENV: string } }>;
}

describe('convergence init --ci github', () => {
  it('writes the workflow with placeholders in a new workspace, prints the next steps, and keeps it on a second run', async () => {
    const base = await makeTempDir('init-ci');
    const ws = path.join(base, 'ws');
    const first = await runCli(['init', ws, '--ci', 'github'], { cwd: base });
    assert.equal(first.exitCode, 0, show(first));
    assert.match(first.stdout, /created +\.github\/workflows\/convergence\.yml/);
    assert.match(first.stdout, /Before the workflow can deploy to staging and production:/);
    assert.match(first.stdout, /convergence setup --env staging/);
    assert.match(first.stdout, /gcloud iam workload-identity-pools create github --project=STAGING_PROJECT/);
    assert.match(first.stdout, /gh variable set GCP_WIF_PROVIDER/);
    assert.match(first.stdout, /gh variable set GCP_DEPLOY_SA --env production/);
    assert.match(first.stdout, /placeholder environment names/);
    const text = await readFile(path.join(ws, WORKFLOW), 'utf8');
    assert.match(text, /# PLACEHOLDER: convergence.yaml has no staging environment yet/);
    assert.ok(existsSync(path.join(ws, 'convergence.yaml')), 'the workspace is made too');

    await writeFile(path.join(ws, WORKFLOW), `${text}# mine\n`);
    const again = await runCli(['init', ws, '--ci', 'github'], { cwd: base });
    assert.equal(again.exitCode, 0, show(again));
    assert.match(again.stdout, /kept +\.github\/workflows\/convergence\.yml \(already exists\)/);
    assert.equal(await readFile(path.join(ws, WORKFLOW), 'utf8'), `${text}# mine\n`);
  });

  it('targets the cloud environments of an existing convergence.yaml, and reports in --json', async () => {
    const ws = await makeTempDir('init-ci-envs');
    await writeFile(
      path.join(ws, 'convergence.yaml'),
      [
        'version: 1',
        'environments:',
        '  local: { backend: local }',
        '  stage: { project: acme-stage-1 }',
        '  live: { project: acme-live-1, production: true }',
        '',
      ].join('\n'),
    );
    const r = await runJson<InitCiJson>(['init', '.', '--ci', 'github'], { cwd: ws });
    assert.equal(r.exitCode, 0, show(r));
    const ci = r.envelope.result!.ci;
    assert.deepEqual([ci.provider, ci.file, ci.written, ci.staging.name, ci.production.name], ['github', WORKFLOW, true, 'stage', 'live']);
    assert.ok(r.envelope.result!.created.includes(WORKFLOW));
    assert.ok(ci.nextSteps.some((line) => line.includes('workload-identity-pools create github --project=acme-live-1')));
    const workflow = parse(await readFile(path.join(ws, WORKFLOW), 'utf8')) as Jobs;
    assert.equal(workflow.jobs.validate!.env.CONVERGENCE_ENV, 'stage');
    assert.equal(workflow.jobs['deploy-staging']!.environment, 'stage');
    assert.equal(workflow.jobs['deploy-production']!.environment, 'live');
  });

  it('combines with --example', async () => {
    const base = await makeTempDir('init-ci-example');
    const r = await runCli(['init', 'demo', '--example', '--ci', 'github'], { cwd: base });
    assert.equal(r.exitCode, 0, show(r));
    assert.ok(existsSync(path.join(base, 'demo', WORKFLOW)));
    assert.ok(existsSync(path.join(base, 'demo', 'configs', 'acme_corp')));
  });

  it('refuses an unknown CI system and an invalid convergence.yaml with exit 2, writing no workflow', async () => {
    const base = await makeTempDir('init-ci-refused');
    const unknown = await runCli(['init', 'ws', '--ci', 'gitlab'], { cwd: base });
    assert.equal(unknown.exitCode, 2, show(unknown));
    assert.match(unknown.stderr, /github/);
    assert.ok(!existsSync(path.join(base, 'ws')));

    const bad = path.join(base, 'bad');
    await mkdir(bad);
    await writeFile(path.join(bad, 'convergence.yaml'), 'version: 1\nenvironments:\n  staging: { project: NOT_A_PROJECT }\n');
    const invalid = await runCli(['init', bad, '--ci', 'github'], { cwd: base });
    assert.equal(invalid.exitCode, 2, show(invalid));
    assert.match(invalid.stderr, /project/);
    assert.ok(!existsSync(path.join(bad, WORKFLOW)));
  });
});
