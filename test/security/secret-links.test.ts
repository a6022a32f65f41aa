import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileSecretStore } from '../../src/backends/secrets/files.ts';
import { ConvergenceError } from '../../src/lib/errors.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const GLOBEX_TOKEN = 'globex-secret-token-5d1c9e';
const ADMIN_KEY = 'admin_SystemKeyThatMustStayPut';
let root: string;
let store: FileSecretStore;

before(async () => {
  root = await makeTempDir('secret-links');
  for (const tenant of ['acme_corp', 'globex_inc']) await mkdir(path.join(root, 'configs', tenant, 'secrets'), { recursive: true });
  await mkdir(path.join(root, '.convergence', 'secrets'), { recursive: true });
  await writeFile(path.join(root, 'configs', 'globex_inc', 'secrets', 'api_token.txt'), `${GLOBEX_TOKEN}\n`);
  await writeFile(path.join(root, '.convergence', 'secrets', 'admin-api-key-local.txt'), ADMIN_KEY);
  store = new FileSecretStore({ workspaceRoot: root, systemDir: path.join(root, '.convergence', 'secrets') });
});
after(cleanupAll);

async function refusedRead(
  tenant: string | null,
  name: string,
  hidden = [GLOBEX_TOKEN, ADMIN_KEY, 'globex_inc', '.convergence/secrets/admin'],
): Promise<void> {
  const err = await store.get(tenant, name).then(
    () => assert.fail(`reading ${name} through a link out of its folder must be refused`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConvergenceError, String(err));
  assert.equal(err.exitCode, 2);
  assert.equal(err.code, 'SECRET_PATH');
  const shown = `${err.message}\n${err.suggestion ?? ''}`;
  for (const secret of hidden) {
    assert.ok(!shown.includes(secret), `the refusal shows ${secret}: ${shown}`);
  }
}

describe('a tenant secret file cannot be a door to another secret', () => {
  it("a link in acme_corp's secrets/ to globex_inc's secret is refused, naming only the link", async () => {
    await symlink('../../globex_inc/secrets/api_token.txt', path.join(root, 'configs', 'acme_corp', 'secrets', 'stolen.txt'));
    await refusedRead('acme_corp', 'stolen');
  });

  it('a link to the admin key or to the keyring is refused', async () => {
    const secrets = path.join(root, 'configs', 'acme_corp', 'secrets');
    await symlink(path.join(root, '.convergence', 'secrets', 'admin-api-key-local.txt'), path.join(secrets, 'admin.txt'));
    await refusedRead('acme_corp', 'admin');
  });

  it('a linked secrets/ folder or tenant folder is refused', async () => {
    await mkdir(path.join(root, 'configs', 'initech_co'), { recursive: true });
    await symlink('../globex_inc/secrets', path.join(root, 'configs', 'initech_co', 'secrets'));
    await refusedRead('initech_co', 'api_token');
    await symlink('globex_inc', path.join(root, 'configs', 'umbrella_co'));
    await refusedRead('umbrella_co', 'api_token');
  });

  it('a system secret linked to a tenant folder is refused', async () => {
    await symlink(
      path.join(root, 'configs', 'globex_inc', 'secrets', 'api_token.txt'),
      path.join(root, '.convergence', 'secrets', 'admin-api-key-prod.txt'),
    );
    await refusedRead(null, 'admin-api-key-prod', [GLOBEX_TOKEN, 'globex_inc']);
  });

  it('a link inside the same secrets folder is followed, and plain files read as before', async () => {
    const secrets = path.join(root, 'configs', 'globex_inc', 'secrets');
    await symlink('api_token.txt', path.join(secrets, 'alias.txt'));
    assert.equal(await store.get('globex_inc', 'alias'), GLOBEX_TOKEN);
    assert.equal(await store.get('globex_inc', 'api_token'), GLOBEX_TOKEN);
    assert.equal(await store.get('acme_corp', 'missing'), undefined);
    assert.equal(await store.get(null, 'admin-api-key-local'), ADMIN_KEY);
    assert.equal(await readFile(path.join(secrets, 'api_token.txt'), 'utf8'), `${GLOBEX_TOKEN}\n`, 'unchanged');
  });
});
