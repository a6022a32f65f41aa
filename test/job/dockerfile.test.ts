/** Docker cannot run here: check the Dockerfile's promises by reading it. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.ts';

interface Instruction {
  op: string;
  args: string;
}

function parseDockerfile(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  for (const raw of logical) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [op, ...rest] = line.split(/\s+/);
    const instruction = { op: op!.toUpperCase(), args: rest.join(' ') };
    if (instruction.op === 'FROM') stages.push([]);
    stages.at(-1)!.push(instruction);
  }
  return stages;
}

describe('Dockerfile', () => {
  it('builds a non-root Node 22 slim image with production dependencies and the CLI as entrypoint', async () => {
    const stages = parseDockerfile(await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
    assert.ok(stages.length >= 1);
    for (const stage of stages) assert.match(stage[0]!.args, /^node:22-slim\b/);
    const runtime = stages.at(-1)!;
    const all = (op: string) => runtime.filter((i) => i.op === op);
    const users = all('USER');
    assert.ok(users.length > 0, 'the runtime stage sets a USER');
    assert.doesNotMatch(users.at(-1)!.args, /^(root|0)(:|$)/);
    assert.ok(
      all('RUN').some((i) => /npm ci\b.*--omit=dev/.test(i.args)),
      'production dependencies only, exactly as locked',
    );
    for (const stage of stages) {
      assert.ok(!stage.some((i) => i.op === 'RUN' && /npm (install|i)\b/.test(i.args)), 'every stage installs with npm ci');
    }
    for (const copied of ['bin/', 'examples/', 'dist/', 'oclif.manifest.json']) {
      assert.ok(
        all('COPY').some((i) => i.args.includes(copied)),
        `copies ${copied}`,
      );
    }
    assert.deepEqual(JSON.parse(all('ENTRYPOINT').at(-1)!.args), ['node', '/app/bin/run.js']);
    assert.deepEqual(JSON.parse(all('CMD').at(-1)!.args), ['job', 'run-pipeline']);
  });

  it("locks every platform's native packages, so npm ci works on Linux x64/arm64 and macOS", async () => {
    const lock = JSON.parse(await readFile(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const natives = ['node_modules/nodejs-polars', 'node_modules/@duckdb/node-bindings'];
    for (const name of natives) {
      const optional = Object.keys(lock.packages[name]?.optionalDependencies ?? {});
      assert.ok(optional.length > 0, `${name} is locked with its platform packages`);
      for (const platform of ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']) {
        assert.ok(
          optional.some((dep) => dep.includes(platform)),
          `${name} offers ${platform}`,
        );
      }
      for (const dep of optional) assert.ok(lock.packages[`node_modules/${dep}`], `${dep} is in the lock file`);
    }
  });

  it('keeps secrets, dependencies and build output out of the build context', async () => {
    const ignored = (await readFile(path.join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
    for (const entry of ['node_modules/', 'dist/', '.convergence/', 'configs/', '.git/']) assert.ok(ignored.includes(entry), entry);
  });
});
