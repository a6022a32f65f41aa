/**
 * Every cloud command as an operator without Google credentials meets it: no gcloud login, no
 * key file, no endpoint overrides, no metadata server. Each ends with one clean error (exit 7,
 * the login command named, the --json status equal to the exit code) and never a stack trace.
 * A network guard loaded into each child records any connection beyond 127.0.0.1: there must be
 * none, since credentials are loaded before any client may send a request.
 *
 * Then a service-account key whose token endpoint (the OAuth fake) refuses it: the first call
 * that needs a token fails the same clean way, and the token request is the only one made.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { OAuthFake } from '../fakes/oauth.ts';
import { mapLimit, runCli, show, type CliResult, type Envelope } from '../helpers/cli.ts';
import { newWorkspace } from '../helpers/context.ts';
import { noCredentialsEnv, STAGING_PROJECT, stagingEnvironment, type EnvChanges } from '../helpers/no-credentials.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const TENANT = 'acme_corp';
const STAGING = stagingEnvironment({
  job: 'convergence-pipeline-staging',
  image: `us-docker.pkg.dev/${STAGING_PROJECT}/convergence/convergence:1`,
  service_account: `convergence-api-staging@${STAGING_PROJECT}.iam.gserviceaccount.com`,
  // The tenant's gs:// source lies under its prefix, so the run reaches the credentials.
  file_roots: "['gs://acme-exports/{tenant}/']",
});

/** Every command that talks to Google on a cloud environment, with arguments that get it there. */
const CLOUD_COMMANDS: string[][] = [
  ['doctor'],
  ['bootstrap', '--yes'],
  ['tenant', 'list'],
  ['tenant', 'create', TENANT, '--name', 'Acme Corp'],
  ['tenant', 'show', TENANT],
  ['tenant', 'suspend', TENANT],
  ['tenant', 'resume', TENANT],
  ['tenant', 'delete', TENANT, '--yes'],
  ['tenant', 'credentials', 'set', TENANT, 'api_token'],
  ['keys', 'create', '--tenant', TENANT],
  ['keys', 'list', '--tenant', TENANT],
  ['keys', 'rotate', '--tenant', TENANT, '--yes'],
  ['keys', 'revoke', 'cvg_0123456789abcdef'],
  ['keys', 'admin', 'create'],
  ['pipeline', 'list', '--tenant', TENANT],
  ['pipeline', 'push', '--tenant', TENANT],
  ['pipeline', 'run', 'p_events', '--tenant', TENANT, '--remote'],
  ['pipeline', 'run', 'p_events', '--tenant', TENANT],
  ['pipeline', 'runs', '--tenant', TENANT],
  ['pipeline', 'status', '00000000-0000-4000-8000-000000000000'],
  ['pipeline', 'logs', '00000000-0000-4000-8000-000000000000'],
  ['pipeline', 'cancel', '00000000-0000-4000-8000-000000000000'],
  ['quota', 'show', '--tenant', TENANT],
  ['quota', 'reset', '--tenant', TENANT, '--yes'],
  ['maintenance', 'cleanup-orphans'],
  ['deploy', '--dry-run'],
  ['deploy', '--yes'],
  ['rollback', '--list'],
  ['scheduler', 'list'],
  ['scheduler', 'setup'],
  ['scheduler', 'run', 'quota-reset'],
  ['scheduler', 'delete', 'quota-reset', '--yes'],
];

/**
 * Loaded into each child with --import: records every host a socket is opened to, except
 * 127.0.0.1, and fails that connection locally, so nothing leaves the machine either way.
 */
const NETWORK_GUARD = `
import dns from 'node:dns';
import net from 'node:net';
import { appendFileSync } from 'node:fs';
const log = process.env.CONVERGENCE_TEST_NETWORK_LOG;
const local = (host) => host === '127.0.0.1' || host === 'localhost' || host === '::1';
const refuse = (host) => {
  appendFileSync(log, host + '\\n');
  return Object.assign(new Error('network guard: ' + host + ' is not 127.0.0.1'), { code: 'ENOTFOUND' });
};
const lookup = dns.lookup;
dns.lookup = function (host, ...rest) {
  if (local(host)) return lookup.call(this, host, ...rest);
  const callback = rest.at(-1);
  const err = refuse(host);
  process.nextTick(() => callback(err));
};
const lookupAsync = dns.promises.lookup;
dns.promises.lookup = async (host, ...rest) => {
  if (local(host)) return lookupAsync(host, ...rest);
  throw refuse(host);
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const options = args[0] && typeof args[0] === 'object' && !Array.isArray(args[0]) ? args[0] : { host: args[1] };
  if (options.host && net.isIP(options.host) && !local(options.host)) {
    const err = refuse(options.host);
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};
`;

let root: string;
let guard: string;
let networkLog: string;
let noCredentials: EnvChanges;

before(async () => {
  root = await newWorkspace('no-credentials');
  await appendFile(path.join(root, 'convergence.yaml'), STAGING);
  const tenantDir = path.join(root, 'configs', TENANT);
  await mkdir(path.join(tenantDir, 'sources'), { recursive: true });
  await mkdir(path.join(tenantDir, 'pipelines'), { recursive: true });
  await writeFile(
    path.join(tenantDir, 'sources', 'events.yml'),
    'source_id: events\ntype: file\npath: gs://acme-exports/acme_corp/events_*.csv\nformat: csv\n',
  );
  await writeFile(
    path.join(tenantDir, 'pipelines', 'p_events.yml'),
    'pipeline_id: p_events\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/events.yml, destination: { table: events } }\n',
  );
  const dir = await makeTempDir('no-credentials-env');
  guard = path.join(dir, 'network-guard.mjs');
  await writeFile(guard, NETWORK_GUARD);
  networkLog = path.join(dir, 'network.log');
  await writeFile(networkLog, '');
  noCredentials = { ...(await noCredentialsEnv()), NODE_OPTIONS: `--import ${guard}`, CONVERGENCE_TEST_NETWORK_LOG: networkLog };
});
after(cleanupAll);

const STACK_LINE = /^\s{4}at /m;

/** The clean-failure contract; returns the envelope. */
function assertCleanAuthFailure(r: CliResult, label: string): Envelope {
  assert.doesNotMatch(r.all, STACK_LINE, `${label}: no stack trace\n${show(r)}`);
  let envelope: Envelope;
  try {
    envelope = JSON.parse(r.stdout) as Envelope;
  } catch {
    assert.fail(`${label}: stdout is one JSON envelope\n${show(r)}`);
  }
  assert.equal(r.exitCode, envelope.status, `${label}: the exit code is the envelope status\n${show(r)}`);
  assert.equal(r.exitCode, 7, `${label}: exits 7 (auth)\n${show(r)}`);
  assert.match(envelope.error?.suggestion ?? '', /gcloud auth application-default login/, `${label}\n${show(r)}`);
  return envelope;
}

async function networkAttempts(): Promise<string[]> {
  return (await readFile(networkLog, 'utf8')).split('\n').filter(Boolean);
}

describe('cloud commands without Google credentials', () => {
  it('the network guard sees a connection beyond 127.0.0.1 (so its silence below means something)', async () => {
    const r = await execa(process.execPath, ['--import', guard, '-e', "await fetch('https://example.com').catch(() => undefined)"], {
      env: { CONVERGENCE_TEST_NETWORK_LOG: networkLog },
      reject: false,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(await networkAttempts(), ['example.com']);
    await writeFile(networkLog, '');
  });

  it('every cloud command ends with exit 7 and the login command, no stack trace, no request', async () => {
    const results = await mapLimit(CLOUD_COMMANDS, 2, async (args) => {
      const full = [...args, '--env', 'staging', '--json'];
      // `tenant credentials set` reads the value from stdin, never from argv.
      const input = args[1] === 'credentials' ? 'value-from-stdin' : undefined;
      return { label: `convergence ${full.join(' ')}`, r: await runCli(full, { cwd: root, env: noCredentials, input }) };
    });
    const failures: string[] = [];
    for (const { label, r } of results) {
      try {
        const envelope = assertCleanAuthFailure(r, label);
        assert.match(envelope.error!.message, /credentials are missing/, label);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    assert.deepEqual(failures, []);
    const text = await runCli(['scheduler', 'list', '--env', 'staging'], { cwd: root, env: noCredentials });
    assert.equal(text.exitCode, 7, show(text));
    assert.doesNotMatch(text.all, STACK_LINE, show(text));
    assert.match(text.stderr, /Try: run `gcloud auth application-default login`/);
    assert.deepEqual(await networkAttempts(), [], 'no connection beyond 127.0.0.1');
  });

  it('doctor lists every check: credentials failing with the fix, the checks that need them skipped', async () => {
    const r = await runCli(['doctor', '--env', 'staging'], { cwd: root, env: noCredentials });
    assert.equal(r.exitCode, 7, show(r));
    assert.doesNotMatch(r.all, STACK_LINE, show(r));
    assert.match(r.stdout, /\[FAIL\] credentials +Google credentials are missing/);
    assert.match(r.stdout, /fix: run `gcloud auth application-default login`/);
    for (const name of ['warehouse', 'schema', 'keyring', 'cloud run', 'secret manager', 'locks']) {
      assert.match(r.stdout, new RegExp(`\\[skip\\] ${name} +needs Google credentials`), show(r));
    }
  });
});

describe('a service-account key whose token endpoint refuses it', () => {
  let oauth: OAuthFake;
  before(async () => {
    oauth = await OAuthFake.start();
  });
  after(async () => {
    await oauth.stop();
  });

  it('fails at the first call that needs a token, exit 7 with the login command, nothing else contacted', async () => {
    const email = 'deployer@my-project-stage.iam.gserviceaccount.com';
    const key = await oauth.writeKeyFile(await makeTempDir('key'), email);
    oauth.refuse('invalid_grant');
    await writeFile(networkLog, '');
    const args = ['tenant', 'list', '--env', 'staging', '--json'];
    const r = await runCli(args, { cwd: root, env: { ...noCredentials, GOOGLE_APPLICATION_CREDENTIALS: key } });
    const envelope = assertCleanAuthFailure(r, `convergence ${args.join(' ')}`);
    assert.match(envelope.error!.message, /expired or revoked/, show(r));
    assert.ok(
      oauth.requests.some((request) => request.email === email),
      'the token request went to the key file token endpoint',
    );
    assert.deepEqual(await networkAttempts(), [], 'no connection beyond 127.0.0.1');
  });
});

/**
 * A command whose library leaves a rejected promise behind (the shape of the gRPC clients' own
 * `initialize().catch(err => { throw err })`), run through bin/stray-rejections.js and the
 * built base command: before the command reported, the rejection is its error; after, the exit
 * code of the reported error stays and stdout keeps its one envelope.
 */
const STRAY_COMMAND = `
import { reportStrayRejections } from ${JSON.stringify(path.join(REPO_ROOT, 'bin', 'stray-rejections.js'))};
reportStrayRejections();
const { BaseCommand } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'cli', 'base-command.js'))});
const { notFoundError } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'lib', 'errors.js'))});
const noAdc = () => new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.');
class Stray extends BaseCommand {
  static flags = {};
  async run() {
    if (process.env.STRAY_AFTER === '1') {
      setTimeout(() => void Promise.reject(noAdc()), 100);
      throw notFoundError('tenant nobody_co not found');
    }
    void Promise.reject(noAdc());
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    return { finished: true };
  }
}
await Stray.run(process.argv.slice(2), ${JSON.stringify(REPO_ROOT)});
`;

describe('a rejection nobody awaited', () => {
  let script: string;
  before(async () => {
    script = path.join(await makeTempDir('stray'), 'stray-command.mjs');
    await writeFile(script, STRAY_COMMAND);
  });
  const run = (args: string[], env: Record<string, string> = {}) =>
    execa(process.execPath, [script, ...args], { env: { ...env, NO_COLOR: '1' }, reject: false, timeout: 60_000 });

  it('while the command runs: it becomes the command error, exit 7 with the login command, no stack trace', async () => {
    const json = await run(['--json']);
    assert.doesNotMatch(`${json.stdout}\n${json.stderr}`, STACK_LINE, json.stderr);
    const envelope = JSON.parse(json.stdout) as Envelope;
    assert.equal(json.exitCode, 7);
    assert.equal(envelope.status, 7);
    assert.match(envelope.error!.suggestion!, /gcloud auth application-default login/);
    const text = await run([]);
    assert.equal(text.exitCode, 7);
    assert.match(text.stderr, /^Error: Google credentials are missing/m);
    assert.doesNotMatch(text.stderr, STACK_LINE);
  });

  it('after the command reported its error: the exit code and the one envelope stay', async () => {
    const r = await run(['--json'], { STRAY_AFTER: '1' });
    assert.doesNotMatch(`${r.stdout}\n${r.stderr}`, STACK_LINE, r.stderr);
    const envelope = JSON.parse(r.stdout) as Envelope;
    assert.equal(envelope.status, 8);
    assert.equal(r.exitCode, 8);
  });

  it('before any command is loaded: the message alone, exit 1', async () => {
    const r = await execa(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { reportStrayRejections } from ${JSON.stringify(path.join(REPO_ROOT, 'bin', 'stray-rejections.js'))}; reportStrayRejections(); Promise.reject(new Error('boom'));`,
      ],
      { reject: false },
    );
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr, 'Error: boom');
  });
});
