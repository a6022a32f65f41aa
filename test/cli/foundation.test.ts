/**
 * The acceptance flow of the README quick start, black-box against the built CLI: init, bootstrap
 * twice, onboard a tenant, mint and list keys, store a credential, admin key, suspend/resume/delete.
 * The steps share one workspace and run in order.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { METADATA_DATASET } from '../../src/services/metadata/tables.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

const DESIGN_TABLES = [
  'schema_migrations',
  'tenant_api_keys',
  'tenant_cloud_credentials',
  'tenant_dq_results',
  'tenant_pipeline_configs',
  'tenant_pipeline_execution_queue',
  'tenant_pipeline_runs',
  'tenant_profiles',
  'tenant_scheduled_pipeline_runs',
  'tenant_step_logs',
  'tenant_subscriptions',
  'tenant_usage_quotas',
];

interface BootstrapJson {
  datasetCreated: boolean;
  tablesCreated: string[];
  tablesPresent: string[];
  tables: Array<{ name: string; state: string }>;
  schemaVersion: number;
}
interface KeyJson {
  apiKey: string;
  apiKeyId: string;
  tenantId: string;
  hashPrefix: string;
  status: string;
}
interface TenantJson {
  tenantId: string;
  name: string;
  status: string;
  plan: string;
}

let base: string;
let ws: string;
const run = (args: string[], input?: string) => runCli(args, { cwd: ws, ...(input === undefined ? {} : { input }) });
const json = <R>(args: string[]) => runJson<R>(args, { cwd: ws });
/** Every key minted in this file; none may ever show up where it should not. */
const minted: string[] = [];

before(async () => {
  base = await makeTempDir('foundation');
  ws = path.join(base, 'demo');
});
after(cleanupAll);

describe('acceptance flow: init → bootstrap → tenant → keys', () => {
  it('init demo creates the workspace skeleton', async () => {
    const r = await runCli(['init', 'demo'], { cwd: base });
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /created\s+convergence\.yaml/);
    for (const file of ['convergence.yaml', '.gitignore', path.join('configs', 'README.md')])
      assert.ok(existsSync(path.join(ws, file)), file);
    const gitignore = await readFile(path.join(ws, '.gitignore'), 'utf8');
    assert.match(gitignore, /^configs\/\*\/secrets\/$/m);
    assert.match(gitignore, /^\.convergence\/$/m);
  });

  it('init again keeps every file', async () => {
    const r = await runJson<{ created: string[]; kept: string[] }>(['init', 'demo'], { cwd: base });
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual(r.envelope.result?.created, []);
    assert.deepEqual([...(r.envelope.result?.kept ?? [])].sort(), ['.gitignore', 'configs/README.md', 'convergence.yaml']);
  });

  it('first bootstrap creates the 12 tables, schema_migrations included', async () => {
    const r = await run(['bootstrap']);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /^12 created, 0 present; schema version 3 /m);
    for (const table of DESIGN_TABLES) assert.match(r.stdout, new RegExp(`^tenants\\.${table}\\s+created\\s`, 'm'));
    // Migrations 2 and 3 add deployment_history and notification_deliveries next to the tables of seed 000.
    assert.deepEqual(
      await withWarehouse(ws, (w) => w.listTables(METADATA_DATASET)),
      [...DESIGN_TABLES, 'deployment_history', 'notification_deliveries'].sort(),
    );
  });

  it('second bootstrap: 0 created, 12 present (--json)', async () => {
    const r = await json<BootstrapJson>(['bootstrap']);
    assert.equal(r.exitCode, 0, show(r));
    assert.equal(r.envelope.status, 0);
    const result = r.envelope.result!;
    assert.equal(result.datasetCreated, false);
    assert.deepEqual(result.tablesCreated, []);
    assert.deepEqual([...result.tablesPresent].sort(), DESIGN_TABLES);
    assert.ok(result.tables.every((t) => t.state === 'present'));
    assert.equal(result.schemaVersion, 3);
  });

  it('tenant create acme_corp --name "ACME" --plan starter', async () => {
    const r = await run(['tenant', 'create', 'acme_corp', '--name', 'ACME', '--plan', 'starter']);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /Tenant acme_corp created in local\./);
    assert.match(r.stdout, /^plan:\s+starter$/m);
    const dirs = (await readdir(path.join(ws, 'configs', 'acme_corp'))).sort();
    assert.deepEqual(dirs, ['pipelines', 'schemas', 'secrets', 'sources', 'sql']);
  });

  it('keys create --json returns the key once, in the documented format', async () => {
    const r = await json<KeyJson>(['keys', 'create', '--tenant', 'acme_corp']);
    assert.equal(r.exitCode, 0, show(r));
    const key = r.envelope.result!;
    assert.match(key.apiKey, /^acme_corp_api_[0-9A-Za-z]{40,}$/);
    assert.equal(key.tenantId, 'acme_corp');
    assert.equal(key.status, 'ACTIVE');
    minted.push(key.apiKey);
  });

  it('keys create (text) prints only the key on stdout, the hints on stderr', async () => {
    const r = await run(['keys', 'create', '--tenant', 'acme_corp', '--description', 'billing export']);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /^acme_corp_api_[0-9A-Za-z]{43}\n$/);
    assert.match(r.stderr, /shown only once/);
    minted.push(r.stdout.trim());
    assert.notEqual(minted[0], minted[1]);
  });

  it('keys list (text and --json) shows the keys but never a key itself', async () => {
    const text = await run(['keys', 'list', '--tenant', 'acme_corp']);
    const listed = await json<Array<{ apiKeyId: string; hashPrefix: string; status: string; description: string | null }>>([
      'keys',
      'list',
      '--tenant',
      'acme_corp',
    ]);
    assert.equal(text.exitCode, 0, show(text));
    assert.equal(listed.exitCode, 0, show(listed));
    const keys = listed.envelope.result!;
    assert.equal(keys.length, 2);
    assert.deepEqual(
      keys.map((k) => k.status),
      ['ACTIVE', 'ACTIVE'],
    );
    assert.ok(keys.some((k) => k.description === 'billing export'));
    for (const k of keys) {
      assert.ok(text.stdout.includes(k.apiKeyId), 'the text table lists each key id');
      assert.ok(text.stdout.includes(k.hashPrefix), 'and its hash prefix');
    }
    for (const key of minted) {
      const body = key.slice('acme_corp_api_'.length);
      for (const out of [text.all, listed.all]) {
        assert.ok(!out.includes(key), 'the full key is never listed');
        assert.ok(!out.includes(body.slice(8)), 'nor most of its body');
      }
    }
  });

  it('tenant show and list report the tenant as read back', async () => {
    const shown = await json<TenantJson & { activeKeys: number; subscription: { maxApiKeys: number } }>(['tenant', 'show', 'acme_corp']);
    assert.equal(shown.exitCode, 0, show(shown));
    const t = shown.envelope.result!;
    assert.deepEqual(
      [t.tenantId, t.name, t.status, t.plan, t.activeKeys, t.subscription.maxApiKeys],
      ['acme_corp', 'ACME', 'ACTIVE', 'starter', 2, 5],
    );
    const text = await run(['tenant', 'show', 'acme_corp']);
    assert.match(text.stdout, /^active keys:\s+2 \/ 5$/m);

    const list = await json<TenantJson[]>(['tenant', 'list']);
    assert.deepEqual(
      list.envelope.result!.map((x) => [x.tenantId, x.status]),
      [['acme_corp', 'ACTIVE']],
    );
    const listText = await run(['tenant', 'list']);
    assert.match(listText.stdout, /^acme_corp\s+ACME\s+ACTIVE\s+starter\s/m);
  });

  it('suspend refuses new keys; resume allows them again', async () => {
    const s = await json<{ status: string; changed: boolean }>(['tenant', 'suspend', 'acme_corp', '--reason', 'unpaid invoice']);
    assert.equal(s.exitCode, 0, show(s));
    assert.deepEqual([s.envelope.result?.status, s.envelope.result?.changed], ['SUSPENDED', true]);
    const shown = await json<{ status: string; statusReason: string }>(['tenant', 'show', 'acme_corp']);
    assert.deepEqual([shown.envelope.result?.status, shown.envelope.result?.statusReason], ['SUSPENDED', 'unpaid invoice']);
    const suspendedList = await json<TenantJson[]>(['tenant', 'list', '--status', 'SUSPENDED']);
    assert.deepEqual(
      suspendedList.envelope.result!.map((x) => x.tenantId),
      ['acme_corp'],
    );

    const refused = await run(['keys', 'create', '--tenant', 'acme_corp']);
    assert.equal(refused.exitCode, 2, show(refused));
    assert.match(refused.stderr, /suspended/);
    assert.match(refused.stderr, /convergence tenant resume acme_corp/);

    const again = await run(['tenant', 'suspend', 'acme_corp']);
    assert.match(again.stdout, /already suspended/);

    const r = await json<{ status: string; previous: string }>(['tenant', 'resume', 'acme_corp']);
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual([r.envelope.result?.previous, r.envelope.result?.status], ['SUSPENDED', 'ACTIVE']);
    const keysNow = await json<unknown[]>(['keys', 'list', '--tenant', 'acme_corp']);
    assert.equal(keysNow.envelope.result?.length, 2, 'no key was minted while suspended');
  });

  it('tenant credentials set reads stdin; the plaintext is nowhere in the output or the DuckDB file', async () => {
    const secret = `sk-live-${Date.now().toString(36)}-PLAINTEXT-${Math.random().toString(36).slice(2)}`;
    const r = await run(['tenant', 'credentials', 'set', 'acme_corp', 'usage_api_token'], `${secret}\n`);
    assert.equal(r.exitCode, 0, show(r));
    assert.match(r.stdout, /Credential usage_api_token of acme_corp stored \(encrypted\)/);
    assert.ok(!r.all.includes(secret));

    const shown = await json<{ credentials: string[] }>(['tenant', 'show', 'acme_corp']);
    assert.deepEqual(shown.envelope.result?.credentials, ['usage_api_token']);
    assert.ok(!shown.all.includes(secret));

    // The stored value decrypts to what was piped in (minus the trailing newline)...
    const decrypted = await withContext(ws, async (ctx) => {
      const w = await ctx.backends.warehouse();
      const [row] = await w.select(METADATA_DATASET, 'tenant_cloud_credentials', {
        where: { tenant_id: 'acme_corp', credential_name: 'usage_api_token' },
      });
      const keyring = await ctx.backends.keyring();
      return (await keyring.decrypt(Buffer.from(String(row?.encrypted_value), 'base64'))).toString('utf8');
    });
    assert.equal(decrypted, secret);

    // ...and its plaintext is in no file of the local state, while a plain column value is (control).
    const stateDir = path.join(ws, '.convergence');
    const files = (await readdir(stateDir)).filter((f) => f.startsWith('warehouse.duckdb'));
    assert.ok(files.includes('warehouse.duckdb'));
    let sawPlainColumn = false;
    for (const file of files) {
      const bytes = await readFile(path.join(stateDir, file));
      assert.equal(bytes.indexOf(secret), -1, `${file} holds the credential in plain text`);
      assert.equal(bytes.indexOf(Buffer.from(secret, 'utf16le')), -1);
      if (bytes.indexOf('usage_api_token') >= 0) sawPlainColumn = true;
    }
    assert.ok(sawPlainColumn, 'control: plain column values are visible in the file bytes');
  });

  it('keys admin create writes a 0600 secret file; a second call needs --replace (exit 2)', async () => {
    const file = path.join(ws, '.convergence', 'secrets', 'admin-api-key-local.txt');
    const r = await run(['keys', 'admin', 'create']);
    assert.equal(r.exitCode, 0, show(r));
    const printed = r.stdout.trim();
    assert.match(printed, /^admin_[0-9A-Za-z]{43}$/);
    assert.equal(await readFile(file, 'utf8'), printed);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(r.stderr, /admin-api-key-local/);

    const again = await run(['keys', 'admin', 'create']);
    assert.equal(again.exitCode, 2, show(again));
    assert.match(again.stderr, /already exists/);
    assert.match(again.stderr, /--replace/);
    assert.equal(again.stdout, '');
    assert.equal(await readFile(file, 'utf8'), printed, 'the key is unchanged');

    const replaced = await json<{ adminKey: string; replaced: boolean }>(['keys', 'admin', 'create', '--replace']);
    assert.equal(replaced.exitCode, 0, show(replaced));
    assert.equal(replaced.envelope.result?.replaced, true);
    assert.notEqual(replaced.envelope.result?.adminKey, printed);
    assert.equal(await readFile(file, 'utf8'), replaced.envelope.result?.adminKey);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('tenant delete --yes revokes keys, drops the dataset, keeps the profile as DELETED', async () => {
    assert.equal(await withWarehouse(ws, (w) => w.datasetExists('acme_corp')), true);
    const r = await json<{ keysRevoked: number; datasetDropped: boolean }>(['tenant', 'delete', 'acme_corp', '--yes']);
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual([r.envelope.result?.keysRevoked, r.envelope.result?.datasetDropped], [2, true]);
    assert.equal(await withWarehouse(ws, (w) => w.datasetExists('acme_corp')), false);

    const active = await json<TenantJson[]>(['tenant', 'list']);
    assert.deepEqual(active.envelope.result, []);
    const all = await json<TenantJson[]>(['tenant', 'list', '--all']);
    assert.deepEqual(
      all.envelope.result!.map((t) => [t.tenantId, t.status]),
      [['acme_corp', 'DELETED']],
    );
    const keys = await json<Array<{ status: string }>>(['keys', 'list', '--tenant', 'acme_corp', '--all']);
    assert.deepEqual(
      keys.envelope.result!.map((k) => k.status),
      ['REVOKED', 'REVOKED'],
    );
    const shown = await json<TenantJson>(['tenant', 'show', 'acme_corp']);
    assert.equal(shown.envelope.result?.status, 'DELETED');
    assert.ok(existsSync(path.join(ws, 'configs', 'acme_corp')), 'config folder kept');
  });

  it('the deleted id cannot be reused, and a second delete is not found', async () => {
    const again = await run(['tenant', 'create', 'acme_corp', '--name', 'ACME']);
    assert.equal(again.exitCode, 2, show(again));
    assert.match(again.stderr, /tenant ids are not reused/);
    const twice = await run(['tenant', 'delete', 'acme_corp', '--yes']);
    assert.equal(twice.exitCode, 8, show(twice));
    assert.match(twice.stderr, /already deleted/);
  });

  it('no minted key ever reached a file other than through its hash', async () => {
    const stateDir = path.join(ws, '.convergence');
    for (const file of (await readdir(stateDir)).filter((f) => f.startsWith('warehouse.duckdb'))) {
      const bytes = await readFile(path.join(stateDir, file));
      for (const key of minted) assert.equal(bytes.indexOf(key), -1, `${file} holds an API key in plain text`);
    }
  });
});
