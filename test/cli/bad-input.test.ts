/**
 * Bad input, black-box: each case must fail with a clear message on stderr, the documented exit
 * code, nothing on stdout, and no partial state (datasets, metadata rows, statuses, folders,
 * secrets are compared before and after).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createKey } from '../../src/services/keys.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { runCli, runJson, show, type CliResult } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, newWorkspace, snapshotState, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

let ws: string;
let keyId: string;

before(async () => {
  ws = await newBootstrappedWorkspace('bad-input');
  await withContext(ws, async (ctx) => {
    await createTenant(ctx, { tenantId: 'acme_corp', name: 'ACME', plan: 'starter' });
    keyId = (await createKey(ctx, { tenantId: 'acme_corp' })).apiKeyId;
  });
});
after(cleanupAll);

/** Runs a command that must be refused, and checks exit code, stderr, empty stdout and unchanged state. */
async function refused(
  args: string[],
  exitCode: number,
  stderr: RegExp | RegExp[],
  options: { cwd?: string; input?: string; env?: Record<string, string | undefined> } = {},
): Promise<CliResult> {
  const cwd = options.cwd ?? ws;
  const before = cwd === ws ? await snapshotState(ws) : undefined;
  const r = await runCli(args, {
    cwd,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.env ? { env: options.env } : {}),
  });
  const label = `convergence ${args.join(' ')}`;
  assert.equal(r.exitCode, exitCode, `${label}\n${show(r)}`);
  assert.equal(r.stdout, '', `${label}: nothing on stdout`);
  assert.match(r.stderr, /^Error: /, `${label}: stderr starts with the error`);
  for (const pattern of Array.isArray(stderr) ? stderr : [stderr]) assert.match(r.stderr, pattern, `${label}\n${r.stderr}`);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr), `${label}: no stack trace`);
  if (before) assert.deepEqual(await snapshotState(ws), before, `${label}: left no partial state`);
  return r;
}

describe('invalid tenant ids are refused before any SQL or path is built', () => {
  const ids = ['acme; drop table x', 'ACME', 'a', '1abc', 'tenants', `a${'b'.repeat(50)}`, "acme'--"];

  for (const id of ids) {
    it(`tenant create ${JSON.stringify(id)} → 2`, async () => {
      const r = await refused(
        ['tenant', 'create', id, '--name', 'X'],
        2,
        id === 'tenants' ? /tenant id "tenants" is reserved/ : /invalid tenant id "/,
      );
      if (id !== 'tenants') assert.match(r.stderr, /^Try: a tenant id is 3-50 characters/m);
    });
  }

  it('the same rule guards show, delete, keys create and credentials set', async () => {
    await refused(['tenant', 'show', 'acme; drop table x'], 2, /invalid tenant id/);
    await refused(['tenant', 'delete', "acme'--", '--yes'], 2, /invalid tenant id/);
    await refused(['keys', 'create', '--tenant', 'ACME'], 2, /invalid tenant id/);
    await refused(['tenant', 'credentials', 'set', '../etc', 'token'], 2, /invalid tenant id/, { input: 'x' });
  });

  it('afterwards `tenant list --all --json` still shows only acme_corp, and no dataset was made', async () => {
    const r = await runJson<Array<{ tenantId: string }>>(['tenant', 'list', '--all'], { cwd: ws });
    assert.equal(r.exitCode, 0, show(r));
    assert.deepEqual(
      r.envelope.result!.map((t) => t.tenantId),
      ['acme_corp'],
    );
    const state = await snapshotState(ws);
    assert.deepEqual(state.datasets, ['acme_corp', 'tenants']);
    assert.deepEqual(state.configDirs, ['acme_corp']);
  });
});

describe('tenant create refusals', () => {
  it('a duplicate tenant → 2', async () => {
    await refused(['tenant', 'create', 'acme_corp', '--name', 'Other'], 2, [
      /tenant "acme_corp" already exists/,
      /convergence tenant show acme_corp/,
    ]);
  });

  it('an unknown plan → 2, naming the plans', async () => {
    await refused(['tenant', 'create', 'gold_co', '--name', 'Gold', '--plan', 'gold'], 2, [
      /unknown plan "gold"/,
      /starter, professional, scale/,
    ]);
  });

  it('an invalid contact email → 2', async () => {
    await refused(['tenant', 'create', 'mail_co', '--name', 'Mail', '--contact-email', 'nope'], 2, /invalid contact email/);
  });

  it('a missing --name or argument → 2, naming what is missing', async () => {
    await refused(['tenant', 'create', 'noname_co'], 2, /^Error: Missing required flag name$/m);
    await refused(['tenant', 'create', '--name', 'X'], 2, /^Error: Missing 1 required arg: tenant /m);
    await refused(['keys', 'create'], 2, /^Error: Missing required flag tenant$/m);
  });
});

describe('unknown tenants → 8', () => {
  for (const args of [
    ['tenant', 'show', 'nobody_co'],
    ['tenant', 'suspend', 'nobody_co'],
    ['tenant', 'resume', 'nobody_co'],
    ['tenant', 'delete', 'nobody_co', '--yes'],
    ['keys', 'create', '--tenant', 'nobody_co'],
    ['keys', 'list', '--tenant', 'nobody_co'],
    ['keys', 'rotate', '--tenant', 'nobody_co'],
  ]) {
    it(args.join(' '), async () => {
      await refused(args, 8, [/tenant "nobody_co" not found/, /^Try: .*convergence tenant list/m]);
    });
  }
});

describe('workspace and configuration problems → 2', () => {
  it('no workspace: the message says `convergence init`', async () => {
    const dir = await makeTempDir('bad-nows');
    await refused(['tenant', 'list'], 2, [/no convergence\.yaml in /, /convergence init/], { cwd: dir });
  });

  it('a YAML syntax error names file:line:column', async () => {
    const root = await newWorkspace('bad-yaml');
    await writeFile(path.join(root, 'convergence.yaml'), 'version: 1\nenvironments:\n  local: { backend: local\n  staging: [\n');
    const r = await refused(['tenant', 'list'], 2, /^Error: convergence\.yaml:\d+:\d+: /m, { cwd: root });
    assert.doesNotMatch(r.stderr, /YAMLParseError|at .*node_modules/);
  });

  it('an unknown key nested in an environment names its line, column and key', async () => {
    const root = await newWorkspace('bad-key');
    await writeFile(
      path.join(root, 'convergence.yaml'),
      'version: 1\nenvironments:\n  staging:\n    project: my-project-stage\n    regoin: us-east1\n',
    );
    await refused(['tenant', 'list'], 2, /^Error: convergence\.yaml:5:5: environments\.staging: unknown key\(s\) "regoin"$/m, {
      cwd: root,
    });
    // From a subdirectory the path is shown relative to where the user is.
    await refused(['tenant', 'list'], 2, /^Error: \.\.\/convergence\.yaml:5:5: /m, { cwd: path.join(root, 'configs') });
  });

  it('a bad project id names its line, column and key', async () => {
    const root = await newWorkspace('bad-project');
    await writeFile(path.join(root, 'convergence.yaml'), 'version: 1\nenvironments:\n  staging:\n    project: Not_A_Project\n');
    await refused(
      ['tenant', 'list'],
      2,
      /^Error: convergence\.yaml:4:14: environments\.staging\.project: expected a Google Cloud project id$/m,
      { cwd: root },
    );
  });

  it('an unknown --env → 2, listing the known environments', async () => {
    await refused(['tenant', 'list', '--env', 'nope'], 2, [/unknown environment "nope" \(known: local\)/]);
  });

  it('a gcp env whose API cannot be reached → 1 with what to check, not a crash', async () => {
    const root = await newWorkspace('gcp-env');
    await writeFile(path.join(root, 'convergence.yaml'), 'version: 1\nenvironments:\n  staging:\n    project: my-project-stage\n');
    await refused(['tenant', 'list', '--env', 'staging'], 1, [/cannot reach the API \(ECONNREFUSED\)/, /HTTPS_PROXY/], {
      cwd: root,
      env: { CONVERGENCE_BIGQUERY_ENDPOINT: 'http://127.0.0.1:1', METADATA_SERVER_DETECTION: 'none', GCE_METADATA_HOST: '127.0.0.1:1' },
    });
  });
});

describe('keys: bad flags and lookups', () => {
  for (const value of ['soon', '0s', '-1d', '1.5h', '10']) {
    it(`keys create --expires-in ${value} → 2 and no key row`, async () => {
      await refused(['keys', 'create', '--tenant', 'acme_corp', `--expires-in=${value}`], 2, /--expires-in/);
    });
  }

  it('keys rotate --grace soon → 2 and nothing rotated', async () => {
    await refused(['keys', 'rotate', '--tenant', 'acme_corp', '--grace', 'soon'], 2, /--grace: "soon" is not a duration/);
  });

  it('keys rotate --grace 0s without --yes → 2 asking for confirmation, and no key revoked', async () => {
    await refused(['keys', 'rotate', '--tenant', 'acme_corp', '--grace', '0s'], 2, [
      /refusing to revoke every active key of acme_corp at once/,
      /pass --yes to confirm/,
    ]);
  });

  it('revoke: an unknown id or hash prefix → 8; a malformed one → 2', async () => {
    await refused(['keys', 'revoke', '00000000-0000-4000-8000-00000000beef'], 8, /no API key with id or hash prefix/);
    await refused(['keys', 'revoke', 'eeeeeeeeeeee'], 8, /no API key with id or hash prefix "eeeeeeeeeeee"/);
    await refused(['keys', 'revoke', 'acme_corp_api_xyz'], 2, /neither a key id nor a hash prefix/);
    await refused(['keys', 'revoke', 'abc'], 2, /neither a key id nor a hash prefix/);
  });

  it('revoke: an ambiguous hash prefix → 2 and revokes nothing', async () => {
    const ids = ['00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000b2'];
    await withWarehouse(ws, async (w) => {
      const [row] = await w.select(METADATA_DATASET, T.apiKeys, { where: { api_key_id: keyId } });
      assert.ok(row);
      await w.insert(METADATA_DATASET, T.apiKeys, [
        { ...row, api_key_id: ids[0]!, api_key_hash: `cafebabe1${'0'.repeat(55)}` },
        { ...row, api_key_id: ids[1]!, api_key_hash: `cafebabe2${'0'.repeat(55)}` },
      ]);
    });
    await refused(['keys', 'revoke', 'cafebabe'], 2, [/hash prefix "cafebabe" matches 2 keys/, /more digits/]);
    const ok = await runCli(['keys', 'revoke', 'cafebabe2'], { cwd: ws });
    assert.equal(ok.exitCode, 0, show(ok));
    assert.match(ok.stdout, new RegExp(`Key ${ids[1]} of acme_corp revoked`));
  });

  it('tenant list --status with a value not in the list → 2', async () => {
    await refused(['tenant', 'list', '--status', 'GONE'], 2, /GONE/);
  });

  it('tenant credentials set with empty stdin → 2', async () => {
    await refused(['tenant', 'credentials', 'set', 'acme_corp', 'token'], 2, /empty/, { input: '' });
    await refused(['tenant', 'credentials', 'set', 'acme_corp', 'bad/name'], 2, /invalid credential name/, { input: 'value' });
  });
});

describe('confirmation without a terminal', () => {
  for (const [label, env] of [
    ['no TTY, CI unset', { CI: undefined }],
    ['no TTY, CI=1', {}],
  ] as const) {
    it(`tenant delete without --yes (${label}) → 2, asks for --yes, deletes nothing`, async () => {
      await refused(['tenant', 'delete', 'acme_corp'], 2, [/refusing to delete tenant acme_corp without confirmation/, /--yes/], { env });
    });
  }

  it('bootstrap --force-recreate-tables without --yes → 2 and drops nothing', async () => {
    await refused(['bootstrap', '--force-recreate-tables'], 2, [/refusing to drop the metadata tables/, /--yes/]);
  });
});

describe('a corrupted keyring', () => {
  it('keys create and credentials set exit with the keyring error and write nothing', async () => {
    const keyFile = path.join(ws, '.convergence', 'keyring.key');
    const original = await readFile(keyFile);
    await writeFile(keyFile, 'this is not a key\u0000\u00ff garbage\n');
    try {
      await refused(['keys', 'create', '--tenant', 'acme_corp'], 2, [
        /keyring file .*keyring\.key is corrupted/,
        /restore the file from a backup/,
      ]);
      await refused(['keys', 'rotate', '--tenant', 'acme_corp'], 2, /keyring file .*is corrupted/);
      await refused(['tenant', 'credentials', 'set', 'acme_corp', 'token'], 2, /keyring file .*is corrupted/, { input: 'value' });
    } finally {
      await writeFile(keyFile, original, { mode: 0o600 });
    }
    const r = await runCli(['keys', 'create', '--tenant', 'acme_corp'], { cwd: ws });
    assert.equal(r.exitCode, 0, `works again once the keyring is restored\n${show(r)}`);
  });
});
