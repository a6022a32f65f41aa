/**
 * acme_corp attacks globex_inc (and the host, the keyring, the admin key) through file paths, on
 * the local environment, with the built CLI: every `path:` of a file source, and every config file
 * of configs/acme_corp/, must stay where acme_corp may read. Each attack is refused with exit 2 by
 * `pipeline validate` and by `pipeline run` (before any run row), nothing of globex_inc is read or
 * changed, and no content of a file behind a refused path appears in any output.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAdminKey, createKey } from '../../src/services/keys.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { runJson, show, type JsonResult } from '../helpers/cli.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

const ATTACKER = 'acme_corp';
const VICTIM = 'globex_inc';
/** Tenants whose own folders are links: configs/linked_co -> globex's, data/rogue_co -> globex's. */
const LINKED_CONFIGS = 'linked_co';
const LINKED_DATA = 'rogue_co';

/** Text that must never appear in any output: each sits in a file acme_corp must not read. */
const CANARY = {
  payroll: 'GLOBEX_PAYROLL_7f3a9c',
  secret: 'GLOBEX_SECRET_2c81e4',
  sql: 'GLOBEX_SQL_5b20d1',
  schema: 'globex_schema_91d0b7',
  source: 'GLOBEX_SOURCE_d4e5f6',
  ownSecret: 'ACME_OWN_SECRET_0a9b8c',
  host: 'HOST_ONLY_FILE_5e6f70',
};

let root: string;
let exportsDir: string;
let hostFile: string;
/** Text that must not leak besides the canaries: the keyring key, the admin key, globex's API key. */
const secrets: string[] = [];

const acme = (...parts: string[]) => path.join(root, 'configs', ATTACKER, ...parts);
const globex = (...parts: string[]) => path.join(root, 'configs', VICTIM, ...parts);
const data = (tenant: string, ...parts: string[]) => path.join(root, 'data', tenant, ...parts);

/** Content hash of every file under the given paths (links not followed), to prove nothing changed. */
async function snapshot(paths: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const base of paths) {
    const entries = existsSync(base) ? await readdir(base, { recursive: true, withFileTypes: true }).catch(() => null) : null;
    const files = entries ? entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)) : [base];
    for (const file of files) {
      if (existsSync(file))
        out[path.relative(root, file)] = createHash('sha256')
          .update(await readFile(file))
          .digest('hex');
    }
  }
  return out;
}
const guarded = () => snapshot([path.join(root, 'data', VICTIM), globex(), path.join(root, '.convergence', 'keyring.key')]);

function assertNothingLeaked(r: JsonResult<unknown>, label: string) {
  for (const text of [...Object.values(CANARY), ...secrets]) {
    assert.ok(!r.all.includes(text), `${label}: output holds ${text.slice(0, 12)}...\n${show(r)}`);
  }
}

const source = (id: string, pathText: string) => `source_id: ${id}\ntype: file\npath: ${pathText}\nformat: csv\n`;
const ingestPipeline = (id: string, sourceFile: string) =>
  `pipeline_id: ${id}\nsteps:\n  - { name: ingest, type: ingest, source_config: ${sourceFile}, destination: { table: ${id} } }\n`;
const transformPipeline = (id: string, sqlFile: string) =>
  `pipeline_id: ${id}\nsteps:\n  - { name: build, type: transform, sql: ${sqlFile}, destination: { table: ${id}, write_mode: replace } }\n`;

before(async () => {
  root = await newBootstrappedWorkspace('paths');
  exportsDir = await makeTempDir('exports');
  hostFile = path.join(await makeTempDir('host'), 'host-secret.txt');
  await writeFile(hostFile, `${CANARY.host}\n`);
  for (const tenant of [ATTACKER, VICTIM]) await mkdir(path.join(exportsDir, tenant), { recursive: true });
  await writeFile(path.join(exportsDir, ATTACKER, 'ok.csv'), 'id,v\n1,a\n');
  await writeFile(path.join(exportsDir, VICTIM, 'payroll.csv'), `id,v\n1,${CANARY.payroll}\n`);

  // local: the exports folder per tenant; wide: a root that holds the whole workspace.
  const config = path.join(root, 'convergence.yaml');
  const text = await readFile(config, 'utf8');
  await writeFile(
    config,
    text.replace(
      '    backend: local\n',
      `    backend: local\n    file_roots: [${JSON.stringify(path.join(exportsDir, '{tenant}'))}]\n  wide:\n    backend: local\n    file_roots: [${JSON.stringify(root)}]\n`,
    ),
  );

  await withContext(root, async (ctx) => {
    for (const tenantId of [ATTACKER, VICTIM, LINKED_CONFIGS, LINKED_DATA])
      await createTenant(ctx, { tenantId, name: tenantId, plan: 'scale' });
    secrets.push((await createKey(ctx, { tenantId: VICTIM })).apiKey);
    secrets.push((await createAdminKey(ctx)).adminKey);
  });
  secrets.push((await readFile(path.join(root, '.convergence', 'keyring.key'), 'utf8')).trim());

  // What globex_inc has: data, a secret, SQL, a schema, a source and a pipeline.
  await mkdir(data(VICTIM), { recursive: true });
  await writeFile(data(VICTIM, 'payroll.csv'), `id,salary\n1,${CANARY.payroll}\n`);
  await writeFile(globex('secrets', 'api_token.txt'), CANARY.secret, { mode: 0o600 });
  await writeFile(globex('sql', 'payroll.sql'), `SELECT '${CANARY.sql}' AS x\n`);
  await writeFile(globex('schemas', 'payroll.json'), JSON.stringify([{ name: CANARY.schema, type: 'STRING' }]));
  await writeFile(globex('sources', 'payroll.yml'), `${source('payroll', 'payroll.csv')}# ${CANARY.source}\n`);
  await writeFile(globex('pipelines', 'p_payroll.yml'), ingestPipeline('p_payroll', 'sources/payroll.yml'));

  // What acme_corp has of its own: a data file and a secret.
  await mkdir(data(ATTACKER, 'glob'), { recursive: true });
  await writeFile(data(ATTACKER, 'ok.csv'), 'id,v\n1,a\n');
  await writeFile(data(ATTACKER, 'glob', 'a.csv'), 'id,v\n1,a\n');
  await writeFile(acme('secrets', 'own_token.txt'), CANARY.ownSecret, { mode: 0o600 });
  await chmod(acme('secrets'), 0o700);

  // Links acme_corp plants in its own folders.
  await symlink(data(VICTIM, 'payroll.csv'), data(ATTACKER, 'theirs.csv'));
  await symlink(path.join('..', '..', VICTIM, 'payroll.csv'), data(ATTACKER, 'glob', 'zz_theirs.csv'));
  await symlink(data(VICTIM), data(ATTACKER, 'their_folder'));
  await symlink(acme('secrets', 'own_token.txt'), data(ATTACKER, 'own_secret.csv'));
  await symlink(path.join(root, '.convergence', 'keyring.key'), data(ATTACKER, 'keyring.csv'));
  await symlink('/etc/hostname', acme('sql', 'hostname.sql'));
  await symlink(hostFile, acme('sql', 'host_file.sql'));
  await symlink(globex('sql', 'payroll.sql'), acme('sql', 'theirs.sql'));
  await symlink(path.join('..', 'secrets', 'own_token.txt'), acme('sql', 'own_secret.sql'));
  await symlink(globex('schemas', 'payroll.json'), acme('schemas', 'theirs.json'));
  await symlink(globex('sources', 'payroll.yml'), acme('sources', 'theirs.yml'));
  await symlink(globex('pipelines', 'p_payroll.yml'), acme('pipelines', 'p_theirs.yml'));

  // Tenants whose folder itself is a link to globex_inc's.
  await rm(path.join(root, 'configs', LINKED_CONFIGS), { recursive: true });
  await symlink(globex(), path.join(root, 'configs', LINKED_CONFIGS));
  await symlink(data(VICTIM), data(LINKED_DATA));
  await writeFile(path.join(root, 'configs', LINKED_DATA, 'sources', 'payroll.yml'), source('payroll', 'payroll.csv'));
  await writeFile(
    path.join(root, 'configs', LINKED_DATA, 'pipelines', 'p_payroll.yml'),
    ingestPipeline('p_payroll', 'sources/payroll.yml'),
  );
});

interface PathAttack {
  name: string;
  /** The `path:` acme_corp writes (YAML text). */
  path: string;
  /** What the refusal says. */
  refusal: RegExp;
  env?: string;
}

const ABS = (parts: () => string) => parts;

const pathAttacks: Array<Omit<PathAttack, 'path'> & { path: string | (() => string) }> = [
  { name: 'the admin key through ../..', path: '../../.convergence/secrets/*.txt', refusal: /contains \\?"\.\.\\?"/ },
  { name: 'the keyring from the workspace root', path: '.convergence/keyring.key', refusal: /names \.convergence\/ of the workspace/ },
  { name: "globex's data through ..", path: `../${VICTIM}/payroll.csv`, refusal: /contains \\?"\.\.\\?"/ },
  { name: "globex's secrets", path: `configs/${VICTIM}/secrets/*.txt`, refusal: /names configs\/ of the workspace/ },
  { name: '/etc/passwd without file_roots', path: '/etc/passwd', refusal: /is absolute and not under a folder listed in file_roots/ },
  {
    name: "globex's folder of a {tenant} root",
    path: ABS(() => JSON.stringify(path.join(exportsDir, VICTIM, 'payroll.csv'))),
    refusal: /not under a folder listed in file_roots/,
  },
  { name: 'a link in the data folder to globex data', path: 'theirs.csv', refusal: /theirs\.csv leads outside data\/acme_corp\// },
  { name: 'a glob that matches a link', path: "'glob/*.csv'", refusal: /zz_theirs\.csv leads outside data\/acme_corp\// },
  { name: 'a linked folder in the data folder', path: 'their_folder/payroll.csv', refusal: /leads outside data\/acme_corp\// },
  { name: "a link to the tenant's own secret", path: 'own_secret.csv', refusal: /own_secret\.csv leads outside/ },
  { name: 'a link to the keyring', path: 'keyring.csv', refusal: /keyring\.csv leads outside/ },
  { name: '.. as a glob alternative', path: `'{..,x}/${VICTIM}/*.csv'`, refusal: /contains \\?"\.\.\\?"/ },
  { name: '.. after a glob', path: `'*/../../${VICTIM}/*.csv'`, refusal: /contains \\?"\.\.\\?"/ },
  { name: 'a NUL byte', path: '"ok.csv\\0/../../x"', refusal: /contains a control character/ },
  { name: 'URL-encoded dots', path: `'%2e%2e/${VICTIM}/payroll.csv'`, refusal: /is percent-encoded/ },
  { name: 'URL-encoded slash', path: `'..%2f${VICTIM}%2fpayroll.csv'`, refusal: /is percent-encoded/ },
  {
    name: 'the keyring under a root that holds the workspace',
    env: 'wide',
    path: ABS(() => JSON.stringify(path.join(root, '.convergence', 'keyring.key'))),
    refusal: /lies in the local state folder, which no tenant's file source may read/,
  },
  {
    name: "globex's data under a root that holds the workspace",
    env: 'wide',
    path: ABS(() => JSON.stringify(data(VICTIM, 'payroll.csv'))),
    refusal: /lies in data\/ of the workspace outside the tenant's own folder/,
  },
  {
    name: "globex's secrets under a root that holds the workspace",
    env: 'wide',
    path: ABS(() => JSON.stringify(globex('secrets', '*.txt'))),
    refusal: /lies in configs\/ of the workspace/,
  },
  {
    name: 'a link to the keyring under a root that holds the workspace',
    env: 'wide',
    path: ABS(() => JSON.stringify(data(ATTACKER, 'keyring.csv'))),
    refusal: /data\/acme_corp\/keyring\.csv leads outside the file_roots of this environment/,
  },
  {
    name: 'a glob over the whole workspace under a root that holds it',
    env: 'wide',
    path: ABS(() => JSON.stringify(path.join(root, '**', '*.txt'))),
    refusal: /one of its matches leads outside the file_roots of this environment/,
  },
];

const runsOf = (tenantId: string) => withWarehouse(root, (w) => w.count(METADATA_DATASET, T.runs, { tenant_id: tenantId }));

describe("a tenant's file paths reach only its own data folder", () => {
  for (const [index, attack] of pathAttacks.entries()) {
    it(`refuses ${attack.name} in validate and run (exit 2), reading nothing`, async () => {
      const id = `p_attack_${index}`;
      const written = typeof attack.path === 'function' ? attack.path() : attack.path;
      await writeFile(acme('sources', `attack_${index}.yml`), source(`attack_${index}`, written));
      await writeFile(acme('pipelines', `${id}.yml`), ingestPipeline(id, `sources/attack_${index}.yml`));
      const env = attack.env ? ['--env', attack.env] : [];
      const before = await guarded();
      const runsBefore = await runsOf(ATTACKER);

      const validated = await runJson(['pipeline', 'validate', acme('sources', `attack_${index}.yml`), ...env], { cwd: root });
      assert.equal(validated.exitCode, 2, show(validated));
      const report = JSON.stringify(validated.envelope.error?.data);
      assert.match(report, new RegExp(`configs/acme_corp/sources/attack_${index}\\.yml:3:\\d+: path: `), show(validated));
      assert.match(report, attack.refusal, show(validated));
      assertNothingLeaked(validated, 'validate');

      const ran = await runJson(['pipeline', 'run', id, '--tenant', ATTACKER, ...env], { cwd: root });
      assert.equal(ran.exitCode, 2, show(ran));
      assert.match(ran.envelope.error?.message ?? '', attack.refusal, show(ran));
      assertNothingLeaked(ran, 'run');

      assert.equal(await runsOf(ATTACKER), runsBefore, 'refused before any run row');
      assert.deepEqual(await guarded(), before, "globex's files, secrets and the keyring are unchanged");
      await rm(acme('pipelines', `${id}.yml`));
      await rm(acme('sources', `attack_${index}.yml`));
    });
  }

  it('reads its own data folder, an absolute path under its {tenant} root and under a wide root (the same checks let these pass)', async () => {
    const cases: Array<[string, string, string[]]> = [
      ['own', 'ok.csv', []],
      ['own_prefixed', `data/${ATTACKER}/glob/a.csv`, []],
      ['design_style', 'data/glob/a.csv', []],
      ['own_root', JSON.stringify(path.join(exportsDir, ATTACKER, 'ok.csv')), []],
      ['wide_root', JSON.stringify(data(ATTACKER, 'ok.csv')), ['--env', 'wide']],
    ];
    for (const [name, written, env] of cases) {
      await writeFile(acme('sources', `${name}.yml`), source(name, written));
      await writeFile(acme('pipelines', `p_${name}.yml`), ingestPipeline(`p_${name}`, `sources/${name}.yml`));
      const validated = await runJson(['pipeline', 'validate', acme('pipelines', `p_${name}.yml`), ...env], { cwd: root });
      assert.equal(validated.exitCode, 0, show(validated));
      const ran = await runJson<{ status: string; rowsProcessed: number }>(['pipeline', 'run', `p_${name}`, '--tenant', ATTACKER, ...env], {
        cwd: root,
      });
      assert.equal(ran.exitCode, 0, show(ran));
      assert.deepEqual([ran.envelope.result?.status, ran.envelope.result?.rowsProcessed], ['COMPLETE', 1]);
      await rm(acme('pipelines', `p_${name}.yml`));
      await rm(acme('sources', `${name}.yml`));
    }
  });
});

describe("data/ in a relative path is the tenant's own data folder", () => {
  it(`data/${VICTIM}/payroll.csv written by ${ATTACKER} reads data/${ATTACKER}/${VICTIM}/payroll.csv, never globex's file`, async () => {
    await mkdir(data(ATTACKER, VICTIM), { recursive: true });
    await writeFile(data(ATTACKER, VICTIM, 'payroll.csv'), 'id,v\n1,acme-own-row\n');
    await writeFile(acme('sources', 'named_like_victim.yml'), source('named_like_victim', `data/${VICTIM}/payroll.csv`));
    await writeFile(acme('pipelines', 'p_named_like_victim.yml'), ingestPipeline('p_named_like_victim', 'sources/named_like_victim.yml'));
    const before = await guarded();
    const ran = await runJson<{ status: string; rowsProcessed: number }>(['pipeline', 'run', 'p_named_like_victim', '--tenant', ATTACKER], {
      cwd: root,
    });
    assert.equal(ran.exitCode, 0, show(ran));
    assert.deepEqual([ran.envelope.result?.status, ran.envelope.result?.rowsProcessed], ['COMPLETE', 1]);
    assertNothingLeaked(ran, 'run');
    const rows = await withWarehouse(root, (w) => w.query(`SELECT * FROM ${w.qualify(ATTACKER, 'p_named_like_victim')}`));
    assert.ok(JSON.stringify(rows).includes('acme-own-row'), JSON.stringify(rows));
    assert.ok(!JSON.stringify(rows).includes(CANARY.payroll));
    assert.deepEqual(await guarded(), before);
  });
});

interface ConfigAttack {
  name: string;
  /** The pipeline acme_corp runs and the file validate is given. */
  pipeline: string;
  write?: () => Promise<void>;
  refusal: RegExp;
}

const configAttacks: ConfigAttack[] = [
  {
    name: 'sql/x.sql -> /etc/hostname',
    pipeline: 'p_hostname',
    write: () => writeFile(acme('pipelines', 'p_hostname.yml'), transformPipeline('p_hostname', 'sql/hostname.sql')),
    refusal: /configs\/acme_corp\/sql\/hostname\.sql leads outside configs\/acme_corp\//,
  },
  {
    name: 'sql/x.sql -> a file of the host',
    pipeline: 'p_host_file',
    write: () => writeFile(acme('pipelines', 'p_host_file.yml'), transformPipeline('p_host_file', 'sql/host_file.sql')),
    refusal: /sql\/host_file\.sql leads outside/,
  },
  {
    name: "sql/x.sql -> globex's SQL",
    pipeline: 'p_theirs_sql',
    write: () => writeFile(acme('pipelines', 'p_theirs_sql.yml'), transformPipeline('p_theirs_sql', 'sql/theirs.sql')),
    refusal: /sql\/theirs\.sql leads outside/,
  },
  {
    name: "sql/x.sql -> the tenant's own secret",
    pipeline: 'p_own_secret',
    write: () => writeFile(acme('pipelines', 'p_own_secret.yml'), transformPipeline('p_own_secret', 'sql/own_secret.sql')),
    refusal: /sql\/own_secret\.sql leads outside/,
  },
  {
    name: "a schema file -> globex's schema",
    pipeline: 'p_theirs_schema',
    write: async () => {
      await writeFile(acme('sources', 'with_schema.yml'), `${source('with_schema', 'ok.csv')}schema: schemas/theirs.json\n`);
      await writeFile(acme('pipelines', 'p_theirs_schema.yml'), ingestPipeline('p_theirs_schema', 'sources/with_schema.yml'));
    },
    refusal: /schemas\/theirs\.json leads outside/,
  },
  {
    name: "a source file -> globex's source",
    pipeline: 'p_theirs_source',
    write: () => writeFile(acme('pipelines', 'p_theirs_source.yml'), ingestPipeline('p_theirs_source', 'sources/theirs.yml')),
    refusal: /sources\/theirs\.yml leads outside/,
  },
  { name: "a pipeline file -> globex's pipeline", pipeline: 'p_theirs', refusal: /pipelines\/p_theirs\.yml leads outside/ },
];

describe("a tenant's config files are read only from its own folder, after resolving links", () => {
  for (const attack of configAttacks) {
    it(`refuses ${attack.name} in validate and run (exit 2), showing nothing of the target`, async () => {
      await attack.write?.();
      const before = await guarded();
      const runsBefore = await runsOf(ATTACKER);
      const validated = await runJson(['pipeline', 'validate', acme('pipelines', `${attack.pipeline}.yml`)], { cwd: root });
      assert.equal(validated.exitCode, 2, show(validated));
      assert.match(JSON.stringify(validated.envelope.error), attack.refusal, show(validated));
      assertNothingLeaked(validated, 'validate');
      const ran = await runJson(['pipeline', 'run', attack.pipeline, '--tenant', ATTACKER], { cwd: root });
      assert.equal(ran.exitCode, 2, show(ran));
      assert.match(ran.envelope.error?.message ?? '', attack.refusal, show(ran));
      assertNothingLeaked(ran, 'run');
      // The host's /etc/hostname is short; where it is long enough to be told apart, it must not show either.
      const hostname = existsSync('/etc/hostname') ? (await readFile('/etc/hostname', 'utf8')).trim() : '';
      if (hostname.length >= 8) assert.ok(!ran.all.includes(hostname) && !validated.all.includes(hostname));
      assert.equal(await runsOf(ATTACKER), runsBefore, 'refused before any run row');
      assert.deepEqual(await guarded(), before);
    });
  }

  it('refuses the whole tenant when validate lists its files (each link named, no content shown)', async () => {
    const r = await runJson(['pipeline', 'validate', '--tenant', ATTACKER], { cwd: root });
    assert.equal(r.exitCode, 2, show(r));
    const report = JSON.stringify(r.envelope.error?.data);
    for (const link of [
      'sql/hostname.sql',
      'sql/host_file.sql',
      'sql/theirs.sql',
      'sql/own_secret.sql',
      'schemas/theirs.json',
      'sources/theirs.yml',
    ]) {
      assert.ok(report.includes(`configs/acme_corp/${link} leads outside`), `${link}\n${show(r)}`);
    }
    assertNothingLeaked(r, 'validate --tenant');
  });

  it("refuses a tenant whose configs folder is a link to another tenant's", async () => {
    const before = await guarded();
    for (const args of [
      ['pipeline', 'validate', '--tenant', LINKED_CONFIGS],
      ['pipeline', 'run', 'p_payroll', '--tenant', LINKED_CONFIGS],
      ['pipeline', 'list', '--tenant', LINKED_CONFIGS],
    ]) {
      const r = await runJson(args, { cwd: root });
      assert.equal(r.exitCode, 2, show(r));
      assert.match(r.envelope.error?.message ?? '', /configs\/linked_co\/pipelines leads outside configs\/linked_co\//, show(r));
      assertNothingLeaked(r, args.join(' '));
    }
    assert.equal(await runsOf(LINKED_CONFIGS), 0);
    assert.deepEqual(await guarded(), before);
  });

  it("refuses a tenant whose data folder is a link to another tenant's", async () => {
    for (const args of [
      ['pipeline', 'validate', '--tenant', LINKED_DATA],
      ['pipeline', 'run', 'p_payroll', '--tenant', LINKED_DATA],
    ]) {
      const r = await runJson(args, { cwd: root });
      assert.equal(r.exitCode, 2, show(r));
      assert.match(JSON.stringify(r.envelope.error), /data\/rogue_co is not a folder \(a symbolic link\?\)/, show(r));
      assertNothingLeaked(r, args.join(' '));
    }
    assert.equal(await runsOf(LINKED_DATA), 0);
    assert.equal(await withWarehouse(root, (w) => w.tableExists(LINKED_DATA, 'p_payroll')), false);
  });
});
