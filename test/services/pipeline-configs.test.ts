/**
 * Validation of tenant config files: every bad-config path names file, line, column and key, and
 * references between files (sources, SQL, schemas, secrets) are checked.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FileSecretStore } from '../../src/backends/secrets/files.ts';
import { listPipelines } from '../../src/services/pipelines/catalog.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { setTenantCredential } from '../../src/services/credentials.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'cfg_tenant';
let root: string;
let ctx: TestContext;
const dir = () => path.join(root, 'configs', TENANT);

async function put(relative: string, lines: string[] | string) {
  const full = path.join(dir(), relative);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, Array.isArray(lines) ? `${lines.join('\n')}\n` : lines);
}

const GOOD_SOURCE = [
  'source_id: usage_api',
  'type: rest_api',
  'url: https://api.example.com/v1/usage',
  'auth: { type: bearer, secret: usage_api_token }',
  'pagination: { type: cursor, cursor_path: next_page, param: page }',
  'records_path: data',
];
const pipeline = (steps: string[], id = 'p_daily') => [`pipeline_id: ${id}`, 'steps:', ...steps];

async function reportFor(file: string) {
  const report = await validateConfigs(ctx, { file: path.join(dir(), file) });
  return report.files[0]!;
}

describe('pipeline config validation', () => {
  before(async () => {
    root = await newBootstrappedWorkspace('cfg');
    ctx = await openContext(root);
    await createTenant(ctx, { tenantId: TENANT, name: 'Cfg', plan: 'starter' });
  });
  after(() => ctx.close());

  it('accepts a complete tenant and resolves the secret from the secret file', async () => {
    await new FileSecretStore({ workspaceRoot: root, systemDir: path.join(root, '.convergence', 'secrets') }).put(
      TENANT,
      'usage_api_token',
      't0ken',
    );
    await put('sources/usage_api.yml', GOOD_SOURCE);
    await put('sql/fct.sql', "SELECT date, SUM(cost_usd) AS cost FROM {{ ref('raw_usage') }} GROUP BY date");
    await put('schemas/raw_usage.json', '[{"name": "date", "type": "DATE", "mode": "REQUIRED"}, {"name": "cost_usd", "type": "FLOAT64"}]');
    await put(
      'pipelines/p_daily.yml',
      pipeline([
        '  - name: ingest',
        '    type: ingest',
        '    source_config: sources/usage_api.yml',
        '    destination: { table: raw_usage, write_mode: merge, merge_keys: [date], schema: schemas/raw_usage.json }',
        '  - name: check',
        '    type: dq',
        '    table: raw_usage',
        '    rules:',
        '      - { check: not_null, columns: [date] }',
        '      - { check: range, column: cost_usd, min: 0, severity: warn }',
        '  - { name: fct, type: transform, sql: sql/fct.sql, destination: { table: fct_daily, write_mode: replace } }',
      ]),
    );
    const report = await validateConfigs(ctx, { tenantId: TENANT });
    assert.deepEqual(
      report.files.map((f) => [f.file, f.ok, f.errors]),
      [
        ['configs/cfg_tenant/pipelines/p_daily.yml', true, []],
        ['configs/cfg_tenant/sources/usage_api.yml', true, []],
        ['configs/cfg_tenant/schemas/raw_usage.json', true, []],
        ['configs/cfg_tenant/sql/fct.sql', true, []],
      ],
    );
    assert.deepEqual(report.pipelines, ['p_daily']);
    const [entry] = await listPipelines(ctx, TENANT);
    assert.deepEqual(entry!.steps, ['ingest:ingest', 'check:dq', 'fct:transform']);
  });

  it('a secret found only in tenant credentials also resolves; an unknown one is reported', async () => {
    await put('sources/other.yml', [
      ...GOOD_SOURCE.slice(0, 3).map((l) => l.replace('usage_api', 'other')),
      'auth: { type: header, name: X-Key, secret: vault_key }',
    ]);
    let f = await reportFor('sources/other.yml');
    assert.equal(f.ok, false);
    assert.match(
      f.errors[0]!,
      /auth\.secret: secret "vault_key" is missing: not in configs\/cfg_tenant\/secrets\/vault_key\.txt nor in tenant credentials/,
    );
    await setTenantCredential(ctx, TENANT, 'vault_key', 'v');
    f = await reportFor('sources/other.yml');
    assert.deepEqual(f.errors, []);
  });

  it('merge without merge_keys names the file, line, column and key', async () => {
    await put(
      'pipelines/p_merge.yml',
      pipeline(
        [
          '  - name: ingest',
          '    type: ingest',
          '    source_config: sources/usage_api.yml',
          '    destination:',
          '      table: raw_usage',
          '      write_mode: merge',
        ],
        'p_merge',
      ),
    );
    const f = await reportFor('pipelines/p_merge.yml');
    assert.equal(f.ok, false);
    assert.match(
      f.errors[0]!,
      /^configs\/cfg_tenant\/pipelines\/p_merge\.yml:7:7: steps\.0\.destination\.merge_keys: write_mode merge needs merge_keys/,
    );
  });

  it('an unknown key is reported at its own line', async () => {
    await put('pipelines/p_typo.yml', pipeline(['  - name: check', '    type: dq', '    table: raw_usage', '    rulez: []'], 'p_typo'));
    const f = await reportFor('pipelines/p_typo.yml');
    assert.match(f.errors.join('\n'), /p_typo\.yml:\d+:\d+: steps\.0.*(rulez|rules)/);
  });

  it('an unknown rule kind, a bad regex and a range without bounds are each reported', async () => {
    await put(
      'pipelines/p_rules.yml',
      pipeline(
        [
          '  - name: check',
          '    type: dq',
          '    table: raw_usage',
          '    rules:',
          '      - { check: not_a_rule, column: x }',
          '      - { check: regex, column: email, pattern: "([" }',
          '      - { check: range, column: cost }',
        ],
        'p_rules',
      ),
    );
    const text = (await reportFor('pipelines/p_rules.yml')).errors.join('\n');
    assert.match(text, /:7:\d+: steps\.0\.rules\.0\.check: Invalid discriminator value/);
    assert.match(text, /:8:\d+: steps\.0\.rules\.1\.pattern: expected a valid regular expression/);
    assert.match(text, /:9:\d+: steps\.0\.rules\.2.*range needs min, max or both/);
  });

  it('missing referenced files are named', async () => {
    await put(
      'pipelines/p_refs.yml',
      pipeline(
        [
          '  - { name: a, type: ingest, source_config: sources/nope.yml, destination: { table: t } }',
          '  - { name: b, type: transform, sql: sql/missing.sql, destination: { table: u } }',
        ],
        'p_refs',
      ),
    );
    const f = await reportFor('pipelines/p_refs.yml');
    assert.deepEqual(f.errors, [
      'configs/cfg_tenant/pipelines/p_refs.yml: steps.0 (a): configs/cfg_tenant/sources/nope.yml does not exist',
      'configs/cfg_tenant/pipelines/p_refs.yml: steps.1 (b): configs/cfg_tenant/sql/missing.sql does not exist',
    ]);
  });

  it('paths escaping the tenant folder, duplicate step names and a mismatched pipeline_id are refused', async () => {
    await put(
      'pipelines/p_bad.yml',
      pipeline(
        [
          '  - { name: a, type: transform, sql: ../../other/sql/x.sql, destination: { table: t } }',
          '  - { name: a, type: dq, table: t, rules: [{ check: row_count, min: 1 }] }',
        ],
        'p_other',
      ),
    );
    const text = (await reportFor('pipelines/p_bad.yml')).errors.join('\n');
    assert.match(text, /steps\.0\.sql: expected a path relative to the tenant folder, without "\.\."/);
    assert.match(text, /steps\.1\.name: duplicate step name "a" \(also step 1\)/);
  });

  it('a YAML syntax error and an invalid JSON schema file give positions', async () => {
    await put('pipelines/p_syntax.yml', 'pipeline_id: p_syntax\nsteps:\n  - name: [unclosed\n');
    assert.match((await reportFor('pipelines/p_syntax.yml')).errors[0]!, /^configs\/cfg_tenant\/pipelines\/p_syntax\.yml:\d+:\d+: /);
    await put('schemas/bad.json', '[{"name": "date", "type": "DATETIME"}]');
    assert.match((await reportFor('schemas/bad.json')).errors[0]!, /bad\.json:1:\d+: 0\.type: /);
  });

  it('a file outside configs/<tenant>/<kind>/ is refused with exit 2', async () => {
    await assert.rejects(
      validateConfigs(ctx, { file: path.join(root, 'convergence.yaml') }),
      (err: { exitCode: number; message: string }) => {
        assert.equal(err.exitCode, 2);
        assert.match(err.message, /is not a tenant config file/);
        return true;
      },
    );
  });
});
