/** pipeline validate on REST sources' templates and windows: each problem at its file:line. */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, openContext, type TestContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'win_val';
let root: string;
let ctx: TestContext;
const dir = () => path.join(root, 'configs', TENANT);

const SOURCE_HEAD = ['source_id: usage', 'type: rest_api', 'url: https://api.example.com/v1/usage'];

async function errorsOf(relative: string, lines: string[]): Promise<string[]> {
  await mkdir(path.dirname(path.join(dir(), relative)), { recursive: true });
  await writeFile(path.join(dir(), relative), [...lines, ''].join('\n'));
  const report = await validateConfigs(ctx, { file: path.join(dir(), relative) });
  return report.files[0]!.errors;
}

describe('pipeline validate: REST templates and windows', () => {
  before(async () => {
    root = await newBootstrappedWorkspace('win-validate');
    ctx = await openContext(root);
    await createTenant(ctx, { tenantId: TENANT, name: 'Val', plan: 'starter' });
  });
  after(() => ctx.close());

  it('accepts windows with filters in params and a POST body', async () => {
    const errors = await errorsOf('sources/ok.yml', [
      ...SOURCE_HEAD,
      'method: POST',
      'params: { starting_at: "{{ window_start | rfc3339 }}", "group_by[]": [model, "{{ window_end | date }}"] }',
      'body: { startDate: "{{ window_start | epoch_ms }}", nested: [{ end: "{{ window_end | epoch_s }}" }] }',
      'windows: { size: 30d, from: "{{ cursor }}", to: "{{ run_date | rfc3339 }}" }',
      'incremental: { cursor_field: day, initial: "2025-01-01" }',
    ]);
    assert.deepEqual(errors, []);
  });

  it('names an unknown filter at its line, in params lists, headers and nested body values', async () => {
    const errors = await errorsOf('sources/filters.yml', [
      ...SOURCE_HEAD,
      'method: POST',
      'params:',
      '  "group_by[]": [model, "{{ run_date | millis }}"]',
      'headers: { x-day: "{{ run_date | day }}" }',
      'body:',
      '  range:',
      '    - start: "{{ run_date | epoch }}"',
    ]);
    assert.deepEqual(errors, [
      'configs/win_val/sources/filters.yml:6:25: params.group_by[].1: unknown template filter "millis" in {{ run_date | millis }} (filters: epoch_ms, epoch_s, rfc3339, date)',
      'configs/win_val/sources/filters.yml:7:19: headers.x-day: unknown template filter "day" in {{ run_date | day }} (filters: epoch_ms, epoch_s, rfc3339, date)',
      'configs/win_val/sources/filters.yml:10:14: body.range.0.start: unknown template filter "epoch" in {{ run_date | epoch }} (filters: epoch_ms, epoch_s, rfc3339, date)',
    ]);
  });

  it('refuses window bounds that cannot render and a size that is not whole seconds', async () => {
    const errors = await errorsOf('sources/bounds.yml', [
      ...SOURCE_HEAD,
      'windows:',
      '  size: 1500ms',
      '  from: "{{ backfill_start }}"',
      '  to: tomorrow',
      'incremental: { cursor_field: day, initial: "2025-01-01" }',
    ]);
    assert.deepEqual(errors, [
      'configs/win_val/sources/bounds.yml:6:9: windows.from: unknown template variable {{ backfill_start }}: window bounds can use cursor and run_date',
      'configs/win_val/sources/bounds.yml:7:7: windows.to: "tomorrow" is not a date (YYYY-MM-DD), an RFC 3339 timestamp or a template, nor run_date or now',
      'configs/win_val/sources/bounds.yml:5:9: windows.size: 1500ms is not a positive whole number of seconds (e.g. 1h, 1d, 30d)',
    ]);
    const literal = await errorsOf('sources/literal.yml', [
      ...SOURCE_HEAD,
      'windows: { size: 1d, from: "2025-02-30", to: "{{ secret(\'day_tok\') }}" }',
      'incremental: { cursor_field: day, initial: "2025-01-01" }',
    ]);
    assert.equal(literal.length, 2, literal.join('\n'));
    assert.match(literal[1]!, /literal\.yml:4:\d+: windows\.to: secrets cannot be used in window bounds$/);
    assert.match(
      literal[0]!,
      /literal\.yml:4:\d+: windows\.from: "2025-02-30" is not a date \(YYYY-MM-DD\), an RFC 3339 timestamp or a template$/,
    );
  });

  it('refuses {{ window_start }} in a source without windows', async () => {
    const errors = await errorsOf('sources/no_windows.yml', [...SOURCE_HEAD, 'params: { from: "{{ window_start | date }}" }']);
    assert.deepEqual(errors, [
      'configs/win_val/sources/no_windows.yml:4:17: params.from: {{ window_start }} is only set for a source with windows: (add windows: { size: 1d } or drop it)',
    ]);
  });

  it("refuses write_mode replace on a source with windows, at the step's write_mode", async () => {
    await errorsOf('sources/windowed.yml', [
      ...SOURCE_HEAD,
      'params: { from: "{{ window_start }}" }',
      'windows: { size: 1d }',
      'incremental: { cursor_field: day, initial: "2025-01-01" }',
    ]);
    const errors = await errorsOf('pipelines/p_win.yml', [
      'pipeline_id: p_win',
      'steps:',
      '  - name: ingest',
      '    type: ingest',
      '    source_config: sources/windowed.yml',
      '    destination:',
      '      table: raw_win',
      '      write_mode: replace',
    ]);
    assert.deepEqual(errors, [
      'configs/win_val/pipelines/p_win.yml:8:19: steps.0.destination.write_mode: write_mode replace cannot take a source with windows: ' +
        'each window would replace the rows of the windows before it; use write_mode merge (with merge_keys) or append',
    ]);
  });
});
