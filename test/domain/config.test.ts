import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { workspaceConfigSchema } from '../../src/config/schema.ts';
import { loadWorkspace, resolveEnv } from '../../src/config/workspace.ts';
import { ConvergenceError, ExitCode } from '../../src/lib/errors.ts';
import { parseYamlWith } from '../../src/lib/yaml-errors.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

interface Located {
  message: string;
  data: { file: string; line: number; column: number; key?: string; issues?: Array<{ key: string; message: string }> };
}

/** Parses `text` and returns the validation error it must produce. */
async function failure(text: string, file = 'convergence.yaml'): Promise<Located> {
  try {
    await parseYamlWith(file, text, workspaceConfigSchema);
  } catch (err) {
    assert.ok(err instanceof ConvergenceError, `expected a ConvergenceError, got ${String(err)}`);
    assert.equal(err.exitCode, ExitCode.usage);
    return { message: err.message, data: err.data as Located['data'] };
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function positionOf(text: string, needle: string): { line: number; column: number } {
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `${needle} not in the fixture`);
  const before = text.slice(0, index).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

const STAGING = (extra: string) => `version: 1
default_env: local
environments:
  local:
    backend: local
  staging:
    project: my-project-stage
    region: us-central1
${extra}`;

describe('convergence.yaml validation messages', () => {
  it('accepts the documented keys', async () => {
    const config = await parseYamlWith(
      'convergence.yaml',
      STAGING(`    service: convergence-api-staging
    service_account: sa@my-project-stage.iam.gserviceaccount.com
    canary: { steps: [25, 50, 100], interval: 10m, max_error_rate: 0.01, failure_limit: 2 }
`),
      workspaceConfigSchema,
    );
    const staging = config.environments.staging;
    assert.ok(staging && staging.backend !== 'local');
    assert.equal(staging.project, 'my-project-stage');
    assert.deepEqual(staging.canary?.steps, [25, 50, 100]);
    assert.equal(staging.location, 'US', 'defaults are filled in');
  });

  it('an unknown key nested in environments.staging: file:line:column of that key, and its name', async () => {
    const text = STAGING('    regoin: us-east1\n');
    const at = positionOf(text, 'regoin');
    const err = await failure(text);
    assert.equal(err.message, `convergence.yaml:${at.line}:${at.column}: environments.staging: unknown key(s) "regoin"`);
    assert.equal(err.data.line, at.line);
    assert.equal(err.data.column, at.column);
    assert.equal(err.data.key, 'environments.staging');
  });

  it('an unknown key two levels down (environments.staging.canary)', async () => {
    const text = STAGING('    canary:\n      steps: [10, 100]\n      max_eror_rate: 0.1\n');
    const at = positionOf(text, 'max_eror_rate');
    const err = await failure(text);
    assert.equal(err.message, `convergence.yaml:${at.line}:${at.column}: environments.staging.canary: unknown key(s) "max_eror_rate"`);
  });

  it('a bad value points at the value and names the full key path', async () => {
    const text = STAGING('    canary:\n      interval: ten minutes\n').replace('my-project-stage', 'My_Project');
    const err = await failure(text);
    const project = positionOf(text, 'My_Project');
    const interval = positionOf(text, 'ten minutes');
    const lines = err.message.split('\n');
    assert.equal(lines.length, 2, err.message);
    assert.ok(
      lines.includes(
        `convergence.yaml:${project.line}:${project.column}: environments.staging.project: expected a Google Cloud project id`,
      ),
      err.message,
    );
    assert.ok(
      lines.includes(
        `convergence.yaml:${interval.line}:${interval.column}: environments.staging.canary.interval: expected a duration like 30s, 10m, 24h or 90d`,
      ),
      err.message,
    );
    assert.deepEqual(err.data.issues?.map((i) => i.key).sort(), ['environments.staging.canary.interval', 'environments.staging.project']);
  });

  it('an array element is located by index', async () => {
    const text = STAGING('    canary:\n      steps: [25, 0, 100]\n');
    const err = await failure(text);
    const at = positionOf(text, '0, 100');
    assert.equal(err.data.key, 'environments.staging.canary.steps.1');
    assert.ok(err.message.startsWith(`convergence.yaml:${at.line}:${at.column}: environments.staging.canary.steps.1: `), err.message);
  });

  it('an unknown top-level key is located on its own line', async () => {
    const text = 'version: 1\nenvironmnets:\n  local:\n    backend: local\n';
    const err = await failure(text);
    assert.equal(err.message, 'convergence.yaml:2:1: (top level): unknown key(s) "environmnets"');
  });

  it('a misspelt key of a cloud environment is named at its line', async () => {
    const text = 'version: 1\nenvironments:\n  staging:\n    projekt: my-project-stage\n';
    const err = await failure(text);
    assert.match(err.message, /^convergence\.yaml:4:5: environments\.staging: unknown key\(s\) "projekt"/);
  });

  it('a cloud key in a local environment is an unknown key there, not a vague union error', async () => {
    const text = 'environments:\n  dev:\n    backend: local\n    project: my-project-stage\n';
    const err = await failure(text);
    assert.equal(err.message, 'convergence.yaml:4:5: environments.dev: unknown key(s) "project"');
  });

  it('an unknown backend names environments.<env>.backend', async () => {
    const err = await failure('environments:\n  dev:\n    backend: azure\n');
    assert.equal(err.data.key, 'environments.dev.backend');
    assert.match(err.message, /^convergence\.yaml:3:14: environments\.dev\.backend: /);
  });

  it('YAML syntax errors carry file:line:column', async () => {
    const text = 'version: 1\nenvironments:\n  local: { backend: local\n';
    const err = await failure(text, 'ws/convergence.yaml');
    assert.match(err.message, /^ws\/convergence\.yaml:\d+:\d+: /);
    assert.equal(err.data.file, 'ws/convergence.yaml');
    assert.ok(err.data.line >= 3, `line ${err.data.line}`);
  });

  it('duplicate keys are refused at the second one', async () => {
    const err = await failure('version: 1\ndefault_env: local\ndefault_env: staging\n');
    assert.match(err.message, /^convergence\.yaml:3:1: /);
  });

  it('a wrong version is reported with its key', async () => {
    const err = await failure('version: 2\n');
    assert.match(err.message, /^convergence\.yaml:1:10: version: /);
  });

  it('lists at most five issues and counts the rest', async () => {
    const envs = Array.from({ length: 7 }, (_, i) => `  e${i}:\n    project: X${i}\n`).join('');
    const err = await failure(`environments:\n${envs}`);
    const lines = err.message.split('\n');
    assert.equal(lines.length, 6, err.message);
    assert.equal(lines.at(-1), '(and 2 more)');
    assert.equal(err.data.issues?.length, 7);
  });

  it('an empty file is a valid (empty) configuration', async () => {
    const config = await parseYamlWith('convergence.yaml', '', workspaceConfigSchema);
    assert.deepEqual(config, { version: 1, environments: {} });
  });
});

describe('workspace and environment resolution', () => {
  async function workspaceWith(text: string) {
    const root = await makeTempDir('config');
    await writeFile(path.join(root, 'convergence.yaml'), text);
    return root;
  }

  it('finds the workspace from a subdirectory', async () => {
    const root = await workspaceWith('version: 1\n');
    const sub = path.join(root, 'configs', 'acme_corp');
    await mkdir(sub, { recursive: true });
    const ws = await loadWorkspace(sub);
    assert.equal(ws.root, root);
    assert.equal(ws.configFile, path.join(root, 'convergence.yaml'));
  });

  it('without a workspace: usage error that points to `convergence init`', async () => {
    const dir = await makeTempDir('noworkspace');
    await assert.rejects(loadWorkspace(dir), (err: unknown) => {
      assert.ok(err instanceof ConvergenceError);
      assert.equal(err.exitCode, ExitCode.usage);
      assert.match(err.message, /no convergence\.yaml in /);
      assert.match(err.suggestion ?? '', /convergence init/);
      return true;
    });
  });

  it('the project of a cloud env: --project, then the environment, then GOOGLE_CLOUD_PROJECT', async () => {
    const root = await workspaceWith('environments:\n  staging:\n    project: stage-project\n  bare:\n    location: EU\n');
    const ws = await loadWorkspace(root);
    const saved = process.env.GOOGLE_CLOUD_PROJECT;
    const projectOf = (env: ReturnType<typeof resolveEnv>) => (env.backend === 'gcp' ? env.settings.project : undefined);
    try {
      process.env.GOOGLE_CLOUD_PROJECT = 'shell-project';
      assert.equal(projectOf(resolveEnv(ws, 'staging')), 'stage-project', 'the shell never redirects an env that names its project');
      assert.equal(projectOf(resolveEnv(ws, 'staging', 'flag-project')), 'flag-project');
      assert.equal(projectOf(resolveEnv(ws, 'bare')), 'shell-project');
      delete process.env.GOOGLE_CLOUD_PROJECT;
      assert.throws(
        () => resolveEnv(ws, 'bare'),
        (err: unknown) =>
          err instanceof ConvergenceError &&
          err.exitCode === 2 &&
          /no Google Cloud project/.test(err.message) &&
          /--project/.test(err.suggestion ?? ''),
      );
      assert.throws(() => resolveEnv(ws, 'staging', 'Bad_Project'), /not a Google Cloud project id/);
      assert.throws(() => resolveEnv(ws, 'local', 'some-project'), /--project applies to cloud environments/);
    } finally {
      if (saved === undefined) delete process.env.GOOGLE_CLOUD_PROJECT;
      else process.env.GOOGLE_CLOUD_PROJECT = saved;
    }
  });

  it('--env beats CONVERGENCE_ENV beats default_env beats local', async () => {
    const root = await workspaceWith(
      'default_env: dev\nenvironments:\n  dev:\n    backend: local\n    state_dir: .state-dev\n  qa:\n    backend: local\n',
    );
    const ws = await loadWorkspace(root);
    const saved = process.env.CONVERGENCE_ENV;
    try {
      delete process.env.CONVERGENCE_ENV;
      assert.equal(resolveEnv(ws, undefined).name, 'dev');
      assert.equal(resolveEnv(ws, undefined).stateDir, path.join(root, '.state-dev'));
      process.env.CONVERGENCE_ENV = 'qa';
      assert.equal(resolveEnv(ws, undefined).name, 'qa');
      assert.equal(resolveEnv(ws, undefined).stateDir, path.join(root, '.convergence'));
      assert.equal(resolveEnv(ws, 'local').name, 'local');
    } finally {
      if (saved === undefined) delete process.env.CONVERGENCE_ENV;
      else process.env.CONVERGENCE_ENV = saved;
    }
  });

  it('local works without being declared; an unknown env lists the known ones', async () => {
    const root = await workspaceWith('environments:\n  staging:\n    project: my-project-stage\n');
    const ws = await loadWorkspace(root);
    assert.deepEqual(resolveEnv(ws, 'local'), { name: 'local', backend: 'local', stateDir: path.join(root, '.convergence') });
    const staging = resolveEnv(ws, 'staging');
    assert.equal(staging.backend, 'gcp');
    assert.throws(
      () => resolveEnv(ws, 'prod'),
      (err: unknown) =>
        err instanceof ConvergenceError &&
        err.exitCode === ExitCode.usage &&
        err.message === 'unknown environment "prod" (known: local, staging)',
    );
  });
});
