/** `convergence setup` as a user runs it (the built CLI) against the Google fakes. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SetupRunResult } from '../../src/services/setup/run.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { newWorkspace } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

let fakes: CloudFakes;
let root: string;

const run = (args: string[]) => runCli(args, { cwd: root, env: fakes.vars });
const json = <R>(args: string[]) => runJson<R>(args, { cwd: root, env: fakes.vars });
const env = (name: string, extra: string[] = []) =>
  [`  ${name}:`, `    project: ${CLOUD_PROJECT}`, '    region: us-central1', '    location: US', ...extra, ''].join('\n');

before(async () => {
  fakes = await startCloudFakes();
  root = await newWorkspace('setup-cli');
  await appendFile(path.join(root, 'convergence.yaml'), env('staging') + env('prod', ['    production: true']));
});
after(async () => {
  await fakes?.stop();
  await cleanupAll();
});

describe('setup (built CLI)', () => {
  it('--dry-run prints the plan table and the summary, and writes nothing', async () => {
    const before = await readFile(path.join(root, 'convergence.yaml'), 'utf8');
    const r = await run(['setup', '--env', 'staging', '--dry-run']);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /^STEP\s+ACTION\s+RESOURCE\s+DETAIL/m);
    assert.match(
      r.stdout,
      /^config\s+update\s+convergence\.yaml\s+environments\.staging\.kms_key = projects\/demo-project\/locations\/us-central1\/keyRings\/convergence-staging\/cryptoKeys\/api-key-encryption$/m,
    );
    assert.match(r.stdout, /^job\s+-\s+-\s+skipped: set image in convergence\.yaml or run deploy$/m);
    assert.match(r.stdout, /Dry run, nothing written: \d+ change\(s\) planned in project demo-project \(environment staging\)\./);
    assert.equal(await readFile(path.join(root, 'convergence.yaml'), 'utf8'), before);
  });

  it('--json gives env, project, dryRun, the steps and doctor', async () => {
    const r = await json<SetupRunResult>(['setup', '--env', 'staging', '--dry-run']);
    assert.equal(r.exitCode, 0, show(r));
    const result = r.envelope.result!;
    assert.deepEqual([result.env, result.project, result.dryRun, result.doctor], ['staging', CLOUD_PROJECT, true, null]);
    for (const step of result.steps) {
      assert.equal(typeof step.id, 'string');
      assert.equal(typeof step.title, 'string');
      assert.ok(Array.isArray(step.changes), step.id);
      assert.equal(step.applied, false, step.id);
    }
    assert.equal(r.stderr, '', 'nothing but the envelope, on stdout');
  });

  it('a production environment without --yes in a non-interactive session is refused (exit 2), writing nothing', async () => {
    const before = await readFile(path.join(root, 'convergence.yaml'), 'utf8');
    const r = await json<never>(['setup', '--env', 'prod']);
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error!.message, /refusing to set up a production environment without confirmation/);
    assert.match(r.envelope.error!.suggestion ?? '', /--yes/);
    assert.equal(await readFile(path.join(root, 'convergence.yaml'), 'utf8'), before);
  });

  it('without --env it is refused with exit 2 naming the flag', async () => {
    const r = await json<never>(['setup']);
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error!.message, /setup needs --env <name> of a cloud environment/);
  });

  it('the local environment is refused with exit 2', async () => {
    const r = await json<never>(['setup', '--env', 'local']);
    assert.equal(r.exitCode, 2, show(r));
    assert.match(r.envelope.error!.message, /environment "local" is local/);
  });

  it('applies, then a second run prints "nothing to change" for every step', async () => {
    const first = await run(['setup', '--env', 'staging']);
    assert.equal(first.exitCode, 0, show(first));
    assert.match(first.stdout, /Set up project demo-project for environment staging\./);
    const second = await run(['setup', '--env', 'staging']);
    assert.equal(second.exitCode, 0, show(second));
    assert.match(second.stdout, /Nothing to change: project demo-project \(environment staging\) is set up\./);
    assert.match(second.stdout, /^config: nothing to change$/m);
    assert.match(second.stdout, /^dataset: nothing to change$/m);
    assert.match(second.stdout, /Nothing changed: project demo-project was already set up for staging\./);
  });
});
