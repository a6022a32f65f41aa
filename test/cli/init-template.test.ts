/**
 * `init --template ai-usage` as a user runs it, black-box against the built CLI: the files it
 * writes (and keeps on a second run), its refusals, validate naming the three secrets until
 * `tenant credentials set` reads them from stdin, then `pipeline run` against fakes of the three
 * APIs (embedded DuckDB): the rows the fakes serve land, and the next day's run asks only for it.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEMPLATES } from '../../src/services/template.ts';
import { resultsIn } from '../fakes/anthropic-usage-api.ts';
import { cursorRecordsIn } from '../fakes/cursor-admin-api.ts';
import {
  activeCursorRecords,
  allowFakeHosts,
  DIRECTORY,
  pointTemplateAtFakes,
  SHEET_ID,
  startAiUsageFakes,
  type AiUsageFakes,
} from '../helpers/ai-usage-fakes.ts';
import { runCli, runJson, show } from '../helpers/cli.ts';
import { withWarehouse } from '../helpers/context.ts';
import { cleanupAll, makeTempDir } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'northwind';
const INITIAL = '2025-01-01';
const RUN_DATE = '2025-03-05';
const NEXT_DAY = '2025-03-06';
const SECRET_NAMES = Object.keys(TEMPLATES['ai-usage'].secrets).sort();
const TEMPLATE_FILES = [
  'pipelines/p_ai_usage.yml',
  'schemas/raw_anthropic_usage.json',
  'schemas/raw_cursor_usage.json',
  'schemas/raw_team_directory.json',
  'sources/anthropic_usage.yml',
  'sources/cursor_usage.yml',
  'sources/team_directory.yml',
  'sql/dim_models.sql',
  'sql/dim_team_members.sql',
  'sql/fct_ai_usage_daily.sql',
  'sql/v_daily_usage_by_provider.sql',
  'sql/v_unassigned_api_keys.sql',
  'sql/v_usage_by_team.sql',
];

interface InitJson {
  root: string;
  created: string[];
  kept: string[];
  template?: { template: string; tenantId: string; created: string[]; kept: string[] };
}
interface ValidateError {
  data?: { report?: { files: Array<{ file: string; errors: string[] }> } };
}
interface RunJson {
  status: string;
  steps: Array<{ name: string; status: string; rowsOut?: number }>;
}

describe('init --template ai-usage', () => {
  let base: string;
  let ws: string;
  let fakes: AiUsageFakes;
  const cli = (args: string[], input?: string) => runCli(args, { cwd: ws, ...(input === undefined ? {} : { input }) });
  const json = <R>(args: string[]) => runJson<R>(args, { cwd: ws });

  before(async () => {
    fakes = await startAiUsageFakes();
    base = await makeTempDir('init-template');
    ws = path.join(base, 'analytics');
  });
  after(() => fakes.close());

  it('writes the template for the tenant and keeps every file on a second run', async () => {
    const first = await runJson<InitJson>(['init', ws, '--template', 'ai-usage', '--tenant', TENANT], { cwd: base });
    assert.equal(first.exitCode, 0, show(first));
    const expected = TEMPLATE_FILES.map((f) => path.join('configs', TENANT, f));
    assert.deepEqual(first.envelope.result?.template?.created, expected);
    for (const file of expected) assert.ok(first.envelope.result?.created.includes(file), file);

    const human = await runCli(['init', ws, '--template', 'ai-usage', '--tenant', TENANT], { cwd: base });
    assert.equal(human.exitCode, 0, show(human));
    for (const file of expected) assert.match(human.stdout, new RegExp(`kept +${file.replaceAll('.', '\\.')} \\(already exists\\)`));
    for (const name of SECRET_NAMES) assert.match(human.stdout, new RegExp(`tenant credentials set ${TENANT} ${name} `));
    assert.match(human.stdout, /team_directory_sheet_id/);
  });

  it('refuses --template with --example, an unknown template and a tenant id that is not one, writing nothing (exit 2)', async () => {
    for (const args of [
      ['--template', 'ai-usage', '--example'],
      ['--template', 'ai-usag'],
      ['--template', 'ai-usage', '--tenant', 'Bad-Tenant'],
      ['--template', 'ai-usage', '--tenant', '../escape'],
      ['--template', '../../examples/ai-usage'],
      ['--tenant', TENANT],
    ]) {
      const r = await runCli(['init', path.join(base, 'refused'), ...args], { cwd: base });
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${show(r)}`);
    }
    const r = await runCli(['init', path.join(base, 'refused'), '--template', 'ai-usage', '--tenant', 'Bad-Tenant'], { cwd: base });
    assert.match(r.stderr, /invalid tenant id/);
    assert.ok(
      !existsSync(path.join(base, 'refused', 'escape')) && !existsSync(path.join(base, 'escape')),
      'nothing written outside configs/',
    );
    assert.ok(!existsSync(path.join(base, 'refused', 'configs', 'Bad-Tenant')));
  });

  it('validate names the three secrets until tenant credentials set stores them from stdin', async () => {
    assert.equal((await cli(['bootstrap'])).exitCode, 0);
    const created = await cli(['tenant', 'create', TENANT, '--name', 'Northwind']);
    assert.equal(created.exitCode, 0, show(created));

    const missing = await json<never>(['pipeline', 'validate', '--tenant', TENANT]);
    assert.equal(missing.exitCode, 2, show(missing));
    const errors = (missing.envelope.error as ValidateError | undefined)?.data?.report?.files.flatMap((f) => f.errors) ?? [];
    const named = SECRET_NAMES.filter((name) => errors.some((e) => e.includes(`secret "${name}" is missing`)));
    assert.deepEqual(named, SECRET_NAMES, errors.join('\n'));
    assert.ok(
      errors.every((e) => /secret "[a-z_]+" is missing/.test(e)),
      `nothing but the secrets is wrong:\n${errors.join('\n')}`,
    );

    for (const [name, value] of Object.entries(fakes.secrets)) {
      const set = await cli(['tenant', 'credentials', 'set', TENANT, name], value);
      assert.equal(set.exitCode, 0, show(set));
      assert.ok(!set.all.includes(value));
    }
    const valid = await cli(['pipeline', 'validate', '--tenant', TENANT]);
    assert.equal(valid.exitCode, 0, show(valid));
  });

  it('pipeline run lands what the three APIs serve; the next day asks only for the new day', async () => {
    await pointTemplateAtFakes(ws, TENANT, fakes);
    await allowFakeHosts(ws, fakes);
    const runArgs = (runDate: string) => [
      'pipeline',
      'run',
      'p_ai_usage',
      '--tenant',
      TENANT,
      '--run-date',
      runDate,
      '--param',
      `team_directory_sheet_id=${SHEET_ID}`,
    ];
    const count = (table: string) => withWarehouse(ws, (w) => w.count(TENANT, table));

    const first = await json<RunJson>(runArgs(RUN_DATE));
    assert.equal(first.exitCode, 0, show(first));
    assert.equal(first.envelope.result?.status, 'COMPLETE');
    assert.equal(await count('raw_anthropic_usage'), resultsIn(INITIAL, RUN_DATE));
    assert.equal(await count('raw_cursor_usage'), cursorRecordsIn(INITIAL, RUN_DATE));
    assert.equal(await count('raw_team_directory'), DIRECTORY.length - 1);
    assert.equal(await count('fct_ai_usage_daily'), resultsIn(INITIAL, RUN_DATE) + activeCursorRecords(INITIAL, RUN_DATE));
    for (const secret of Object.values(fakes.secrets)) assert.ok(!first.all.includes(secret.slice(0, 40)));

    const anthropicBefore = fakes.anthropic.windowsAsked().length;
    const cursorBefore = fakes.cursor.rangesAsked().length;
    const next = await json<RunJson>(runArgs(NEXT_DAY));
    assert.equal(next.exitCode, 0, show(next));
    assert.deepEqual([...new Set(fakes.anthropic.windowsAsked().slice(anthropicBefore))], ['2025-03-05T00:00:00Z']);
    assert.deepEqual(fakes.cursor.rangesAsked().slice(cursorBefore), [{ startDate: '2025-03-05', endDate: '2025-03-06' }]);
    assert.equal(await count('raw_anthropic_usage'), resultsIn(INITIAL, NEXT_DAY));
    assert.equal(await count('raw_cursor_usage'), cursorRecordsIn(INITIAL, NEXT_DAY));

    const sourceText = await readFile(path.join(ws, 'configs', TENANT, 'sources', 'anthropic_usage.yml'), 'utf8');
    assert.match(sourceText, /group_by\[\]: \[model, api_key_id\]/, 'the tenant file is the template, only its base URL moved');
  });

  it('a run whose API fails in the middle of the backfill exits 3 naming the window; the next run resumes there', async () => {
    const tenant = 'westwind';
    const init = await runCli(['init', ws, '--template', 'ai-usage', '--tenant', tenant], { cwd: base });
    assert.equal(init.exitCode, 0, show(init));
    assert.equal((await cli(['tenant', 'create', tenant, '--name', 'Westwind'])).exitCode, 0);
    for (const [name, value] of Object.entries(fakes.secrets))
      assert.equal((await cli(['tenant', 'credentials', 'set', tenant, name], value)).exitCode, 0);
    await pointTemplateAtFakes(ws, tenant, fakes);
    const runArgs = [
      'pipeline',
      'run',
      'p_ai_usage',
      '--tenant',
      tenant,
      '--run-date',
      RUN_DATE,
      '--param',
      `team_directory_sheet_id=${SHEET_ID}`,
    ];

    fakes.anthropic.failWindow('2025-02-01');
    const before = fakes.anthropic.windowsAsked().length;
    let failed;
    try {
      failed = await cli(runArgs);
    } finally {
      fakes.anthropic.heal();
    }
    assert.equal(failed.exitCode, 3, show(failed));
    assert.match(failed.all, /window 2\/3 2025-02-01\.\.2025-03-04: HTTP 500/);
    assert.match(failed.all, /the next run starts at 2025-02-01/);
    assert.deepEqual([...new Set(fakes.anthropic.windowsAsked().slice(before))], ['2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z']);
    assert.equal(await withWarehouse(ws, (w) => w.count(tenant, 'raw_anthropic_usage')), resultsIn(INITIAL, '2025-02-01'));

    const resumed = fakes.anthropic.windowsAsked().length;
    const again = await json<RunJson>(runArgs);
    assert.equal(again.exitCode, 0, show(again));
    assert.deepEqual([...new Set(fakes.anthropic.windowsAsked().slice(resumed))], ['2025-02-01T00:00:00Z', '2025-03-04T00:00:00Z']);
    assert.equal(await withWarehouse(ws, (w) => w.count(tenant, 'raw_anthropic_usage')), resultsIn(INITIAL, RUN_DATE));
  });
});
