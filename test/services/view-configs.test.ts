/**
 * `write_mode: view` in tenant pipelines: only a transform makes a view, and the table options a
 * view cannot have are reported at their file, line and key.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'view_cfg';
let root: string;
let ctx: TestContext;
const dir = () => path.join(root, 'configs', TENANT);

async function put(relative: string, lines: string[]) {
  const full = path.join(dir(), relative);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, `${lines.join('\n')}\n`);
}

async function errorsOf(file: string): Promise<string[]> {
  const report = await validateConfigs(ctx, { file: path.join(dir(), file) });
  return report.files[0]!.errors;
}

describe('write_mode view in pipeline configs', () => {
  before(async () => {
    root = await newBootstrappedWorkspace('view-cfg');
    ctx = await openContext(root);
    await createTenant(ctx, { tenantId: TENANT, name: 'View cfg', plan: 'starter' });
    await put('sources/usage.yml', ['source_id: usage', 'type: file', 'path: data/usage.csv', 'format: csv']);
    await put('sql/v.sql', ["SELECT 1 AS one FROM {{ ref('raw_usage') }}"]);
  });
  after(() => ctx.close());

  it('refuses a view on an ingest step, naming the line and saying why', async () => {
    await put('pipelines/p_ingest_view.yml', [
      'pipeline_id: p_ingest_view',
      'steps:',
      '  - name: ingest',
      '    type: ingest',
      '    source_config: sources/usage.yml',
      '    destination:',
      '      table: raw_usage',
      '      write_mode: view',
    ]);
    const errors = await errorsOf('pipelines/p_ingest_view.yml');
    assert.match(
      errors.join('\n'),
      /p_ingest_view\.yml:8:\d+: steps\.0\.destination\.write_mode: write_mode view is for transforms: an ingest lands rows in a table/,
    );
  });

  it('refuses table options on a view', async () => {
    await put('pipelines/p_view_opts.yml', [
      'pipeline_id: p_view_opts',
      'steps:',
      '  - name: v',
      '    type: transform',
      '    sql: sql/v.sql',
      '    destination:',
      '      table: v_daily',
      '      write_mode: view',
      '      partition_by: date',
      '      cluster_by: [provider]',
      '      merge_keys: [date]',
    ]);
    const errors = (await errorsOf('pipelines/p_view_opts.yml')).join('\n');
    assert.match(
      errors,
      /:9:\d+: steps\.0\.destination\.partition_by: partition_by applies to tables; a view \(write_mode view\) stores a query/,
    );
    assert.match(errors, /:10:\d+: steps\.0\.destination\.cluster_by: cluster_by applies to tables/);
    assert.match(errors, /:11:\d+: steps\.0\.destination\.merge_keys: merge_keys only applies to write_mode merge \(this is view\)/);
  });

  it('accepts a transform view', async () => {
    await put('pipelines/p_view_ok.yml', [
      'pipeline_id: p_view_ok',
      'steps:',
      '  - { name: v, type: transform, sql: sql/v.sql, destination: { table: v_daily, write_mode: view } }',
    ]);
    const errors = await errorsOf('pipelines/p_view_ok.yml');
    assert.ok(!errors.some((e) => /write_mode|destination/.test(e)), errors.join('\n'));
  });
});
