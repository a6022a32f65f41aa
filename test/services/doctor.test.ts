import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { runDoctor, type DoctorReport } from '../../src/services/doctor/index.ts';
import { createAdminKey, createKey } from '../../src/services/keys.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

const check = (report: DoctorReport, name: string) => {
  const found = report.checks.find((c) => c.name === name);
  assert.ok(found, `doctor has a "${name}" check: ${JSON.stringify(report.checks)}`);
  return found;
};

describe('doctor on a workspace as it evolves', () => {
  let root: string;
  before(async () => {
    root = await newWorkspace('doctor');
  });

  it('before bootstrap: fails the schema check with a fix that says `convergence bootstrap`', async () => {
    const report = await runDoctor(root, undefined);
    assert.equal(report.ok, false);
    assert.equal(report.env, 'local');
    for (const name of ['node', 'workspace', 'config', 'environment', 'warehouse']) assert.equal(check(report, name).status, 'pass', name);
    const schema = check(report, 'schema');
    assert.equal(schema.status, 'fail');
    assert.match(schema.fix ?? '', /`convergence bootstrap`/);
  });

  it('after bootstrap: every check passes', async () => {
    await withContext(root, (ctx) => bootstrap(ctx));
    const report = await runDoctor(root, undefined);
    assert.deepEqual(
      report.checks.filter((c) => c.status !== 'pass'),
      [],
      'no check other than pass',
    );
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['node', 'workspace', 'config', 'environment', 'warehouse', 'schema', 'keyring', 'secrets', 'gitignore'],
    );
  });

  it('a secret file readable by others fails with a `chmod 600` fix; 0600 passes again', async () => {
    await withContext(root, async (ctx) => {
      await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' });
      await createKey(ctx, { tenantId: 'acme_corp' });
      await createAdminKey(ctx);
    });
    const adminFile = path.join(root, '.convergence', 'secrets', 'admin-api-key-local.txt');
    const tenantFile = path.join(root, 'configs', 'acme_corp', 'secrets', 'usage_api_token.txt');
    await writeFile(tenantFile, 'token', { mode: 0o600 });
    const ok = await runDoctor(root, undefined);
    assert.equal(check(ok, 'secrets').status, 'pass');
    assert.match(check(ok, 'secrets').detail, /^2 secret file\(s\)/);

    await chmod(adminFile, 0o644);
    await chmod(tenantFile, 0o640);
    const report = await runDoctor(root, undefined);
    assert.equal(report.ok, false);
    const secrets = check(report, 'secrets');
    assert.equal(secrets.status, 'fail');
    assert.match(secrets.detail, /\.convergence\/secrets\/admin-api-key-local\.txt \(644\)/);
    assert.match(secrets.detail, /configs\/acme_corp\/secrets\/usage_api_token\.txt \(640\)/);
    assert.equal(secrets.fix, 'chmod 600 .convergence/secrets/admin-api-key-local.txt configs/acme_corp/secrets/usage_api_token.txt');

    await chmod(adminFile, 0o600);
    await chmod(tenantFile, 0o600);
    assert.equal((await runDoctor(root, undefined)).ok, true);
  });

  it('a keyring that is missing once values were encrypted with it fails', async () => {
    const { rename } = await import('node:fs/promises');
    const keyFile = path.join(root, '.convergence', 'keyring.key');
    await rename(keyFile, `${keyFile}.bak`);
    try {
      const report = await runDoctor(root, undefined);
      assert.equal(check(report, 'keyring').status, 'fail');
      assert.equal(report.ok, false);
    } finally {
      await rename(`${keyFile}.bak`, keyFile);
    }
  });

  it('a corrupted or world-readable keyring fails with a fix', async () => {
    const keyFile = path.join(root, '.convergence', 'keyring.key');
    await chmod(keyFile, 0o644);
    const loose = check(await runDoctor(root, undefined), 'keyring');
    assert.equal(loose.status, 'fail');
    assert.equal(loose.fix, `chmod 600 ${keyFile}`);
    await chmod(keyFile, 0o600);
    assert.equal(check(await runDoctor(root, undefined), 'keyring').status, 'pass');
  });

  it('missing .gitignore entries are a warning, not a failure', async () => {
    await writeFile(path.join(root, '.gitignore'), 'node_modules/\n');
    const report = await runDoctor(root, undefined);
    const gitignore = check(report, 'gitignore');
    assert.equal(gitignore.status, 'warn');
    assert.match(gitignore.detail, /configs\/\*\/secrets\//);
    assert.equal(report.ok, true);
  });

  it('an unknown --env fails the environment check and skips the rest', async () => {
    const report = await runDoctor(root, 'nope');
    assert.equal(check(report, 'environment').status, 'fail');
    assert.match(check(report, 'environment').detail, /unknown environment "nope"/);
    assert.equal(check(report, 'warehouse').status, 'skip');
    assert.equal(report.ok, false);
  });
});

describe('doctor without a usable workspace', () => {
  it('no workspace: says to run `convergence init`', async () => {
    const dir = await makeTempDir('doctor-none');
    const report = await runDoctor(dir, undefined);
    assert.equal(report.ok, false);
    assert.equal(report.env, null);
    const ws = check(report, 'workspace');
    assert.equal(ws.status, 'fail');
    assert.match(ws.fix ?? '', /convergence init/);
    for (const name of ['warehouse', 'schema', 'keyring', 'secrets', 'gitignore']) assert.equal(check(report, name).status, 'skip');
  });

  it('a malformed convergence.yaml fails the config check with file:line:column', async () => {
    const dir = await makeTempDir('doctor-bad');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'convergence.yaml'), 'version: 1\nenvironments:\n  local:\n    backend: local\n    colour: blue\n');
    const report = await runDoctor(dir, undefined);
    const config = check(report, 'config');
    assert.equal(config.status, 'fail');
    assert.match(config.detail, /convergence\.yaml:5:5: environments\.local: unknown key\(s\) "colour"/);
    assert.equal(check(report, 'workspace').status, 'pass');
  });
});
