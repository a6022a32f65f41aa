/** pipeline validate on a REST source's google auth: what a run in this environment would refuse, at its file:line. */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'auth_val';
const SHEETS = 'url: https://sheets.googleapis.com/v4/spreadsheets/abc/values/Directory';
const SCOPES = '  scopes: [https://www.googleapis.com/auth/spreadsheets.readonly]';

async function errorsOf(ctx: TestContext, root: string, relative: string, lines: string[]): Promise<string[]> {
  const file = path.join(root, 'configs', TENANT, relative);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, ['source_id: directory', 'type: rest_api', ...lines, ''].join('\n'));
  return (await validateConfigs(ctx, { file })).files[0]!.errors;
}

describe('pipeline validate: google auth', () => {
  let root: string;
  let ctx: TestContext;
  before(async () => {
    root = await newBootstrappedWorkspace('auth-validate');
    ctx = await openContext(root);
    await createTenant(ctx, { tenantId: TENANT, name: 'Val', plan: 'starter' });
    await mkdir(path.join(root, 'configs', TENANT, 'secrets'), { recursive: true });
    await writeFile(path.join(root, 'configs', TENANT, 'secrets', 'sheets_sa_key.txt'), '{"type":"service_account"}', { mode: 0o600 });
  });
  after(() => ctx.close());

  it('accepts a key_secret source on a Google API host', async () => {
    assert.deepEqual(
      await errorsOf(ctx, root, 'sources/ok.yml', [SHEETS, 'auth:', '  type: google', '  key_secret: sheets_sa_key', SCOPES]),
      [],
    );
  });

  it('names a source without key_secret where the environment does not allow ADC, and a non-Google URL, at their lines', async () => {
    const errors = await errorsOf(ctx, root, 'sources/adc.yml', [
      'url: https://collector.example.net/v4/x',
      'auth:',
      '  type: google',
      SCOPES,
    ]);
    assert.deepEqual(errors, [
      'configs/auth_val/sources/adc.yml:5:3: auth: auth type google without key_secret would use the environment’s own Google credentials, ' +
        'which this environment does not allow for tenant sources (environment "local"): store the tenant\'s service-account key as a secret ' +
        'and name it in auth.key_secret, or an operator sets environments.local.rest_sources.google_adc: true in convergence.yaml',
      'configs/auth_val/sources/adc.yml:3:6: url: auth type google sends a Google access token, which only goes to https Google API hosts ' +
        '(*.googleapis.com), not to https://collector.example.net',
    ]);
  });

  it('accepts a source without key_secret where the operator allows ADC', async () => {
    await allowFakeApis(root, { googleAdc: true });
    const allowing = await openContext(root);
    try {
      assert.deepEqual(await errorsOf(allowing, root, 'sources/adc-ok.yml', [SHEETS, 'auth:', '  type: google', SCOPES]), []);
    } finally {
      await allowing.close();
    }
  });
});
