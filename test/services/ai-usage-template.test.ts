/**
 * The ai-usage template end to end, in process, against fakes of its three APIs: validate names
 * the secrets it needs until they are stored; a first run backfills every window from the
 * sources' initial date to the run date and builds the model; a run on the next day asks only for
 * the new day; an API failing in the middle of a backfill leaves the windows before it landed and
 * the next run resumes at the failed window.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTenantCredential } from '../../src/services/credentials.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { installTemplate, TEMPLATES } from '../../src/services/template.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { resultsIn } from '../fakes/anthropic-usage-api.ts';
import { cursorRecordsIn } from '../fakes/cursor-admin-api.ts';
import {
  activeCursorRecords,
  allowFakeHosts,
  DIRECTORY,
  fakeHostsSetting,
  modelsUsed,
  pointTemplateAtFakes,
  SHEET_ID,
  SHEETS_ACCOUNT,
  startAiUsageFakes,
  UNASSIGNED_API_KEY,
  type AiUsageFakes,
} from '../helpers/ai-usage-fakes.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newBootstrappedWorkspace, newWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const INITIAL = '2025-01-01';
const RUN_DATE = '2025-03-05';
const NEXT_DAY = '2025-03-06';
const PARAMS = { team_directory_sheet_id: SHEET_ID };
const SECRET_NAMES = Object.keys(TEMPLATES['ai-usage'].secrets).sort();

describe('init --template ai-usage: the template against its APIs', () => {
  let root: string;
  let fakes: AiUsageFakes;

  before(async () => {
    fakes = await startAiUsageFakes();
    root = await newBootstrappedWorkspace('ai-usage');
    await allowFakeHosts(root, fakes);
  });
  after(() => fakes.close());

  /** A tenant with the template installed and pointed at the fakes; its secrets stored unless `withSecrets` is false. */
  async function templateTenant(tenantId: string, withSecrets = true): Promise<void> {
    await withContext(root, (ctx) => createTenant(ctx, { tenantId, name: tenantId, plan: 'scale' }));
    await installTemplate(root, 'ai-usage', tenantId);
    await pointTemplateAtFakes(root, tenantId, fakes);
    if (withSecrets) await storeSecrets(tenantId);
  }

  const storeSecrets = (tenantId: string) =>
    withContext(root, async (ctx) => {
      for (const [name, value] of Object.entries(fakes.secrets)) await setTenantCredential(ctx, tenantId, name, value);
    });

  const run = (tenantId: string, runDate: string) =>
    withContext(root, (ctx) => runPipeline(ctx, { tenantId, pipelineId: 'p_ai_usage', runDate, params: PARAMS }));
  const count = (tenantId: string, table: string) => withWarehouse(root, (w) => w.count(tenantId, table));
  /** What the fakes are asked from now on. */
  const mark = () => ({
    anthropic: fakes.anthropic.windowsAsked().length,
    cursor: fakes.cursor.rangesAsked().length,
    sheets: fakes.sheets.readsAsked().length,
  });
  const askedSince = (m: ReturnType<typeof mark>) => ({
    anthropic: [...new Set(fakes.anthropic.windowsAsked().slice(m.anthropic))],
    cursor: fakes.cursor.rangesAsked().slice(m.cursor),
    sheets: fakes.sheets.readsAsked().slice(m.sheets),
  });

  it('validate names each secret the template needs until tenant credentials stores it', async () => {
    await templateTenant('tpl_validate', false);
    const missing = await withContext(root, (ctx) => validateConfigs(ctx, { tenantId: 'tpl_validate' }));
    assert.equal(missing.ok, false);
    // A source's problems are listed under its own file and under each pipeline using it.
    const errors = [...new Set(missing.files.flatMap((f) => f.errors))];
    const named = SECRET_NAMES.filter((name) => errors.some((e) => e.includes(`secret "${name}" is missing`)));
    assert.deepEqual(named, SECRET_NAMES, errors.join('\n'));
    assert.equal(errors.length, SECRET_NAMES.length, `only the secrets are missing:\n${errors.join('\n')}`);

    await storeSecrets('tpl_validate');
    const valid = await withContext(root, (ctx) => validateConfigs(ctx, { tenantId: 'tpl_validate' }));
    assert.equal(valid.ok, true, valid.files.flatMap((f) => f.errors).join('\n'));
    assert.deepEqual(valid.pipelines, ['p_ai_usage']);
  });

  it('a first run loads every window up to the run date and builds the model; the next day asks for that day only', async () => {
    const tenant = 'tpl_full';
    await templateTenant(tenant);
    const first = mark();
    const summary = await run(tenant, RUN_DATE);
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error ?? summary.steps));

    const asked = askedSince(first);
    assert.deepEqual(asked.anthropic, ['2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z', '2025-03-04T00:00:00Z'], 'windows of 31 days');
    assert.deepEqual(asked.cursor, [
      { startDate: '2025-01-01', endDate: '2025-01-31' },
      { startDate: '2025-01-31', endDate: '2025-03-02' },
      { startDate: '2025-03-02', endDate: '2025-03-05' },
    ]);
    assert.deepEqual(asked.sheets, [`${SHEET_ID}/Directory!A:D`]);

    const anthropicRows = resultsIn(INITIAL, RUN_DATE);
    assert.equal(await count(tenant, 'raw_anthropic_usage'), anthropicRows);
    assert.equal(await count(tenant, 'raw_cursor_usage'), cursorRecordsIn(INITIAL, RUN_DATE));
    assert.equal(await count(tenant, 'raw_team_directory'), DIRECTORY.length - 1);
    assert.equal(await count(tenant, 'fct_ai_usage_daily'), anthropicRows + activeCursorRecords(INITIAL, RUN_DATE));

    const members = await withWarehouse(root, (w) => w.select(tenant, 'dim_team_members'));
    const dana = members.find((m) => m['user_email'] === 'dana@acme.example');
    assert.equal(dana?.['anthropic_api_key_id'], null, 'a trailing empty cell the API left out is null');
    const unassigned = await withWarehouse(root, (w) => w.select(tenant, 'v_unassigned_api_keys'));
    assert.deepEqual(
      unassigned.map((r) => r['api_key_id']),
      [UNASSIGNED_API_KEY],
    );
    const byProvider = await withWarehouse(root, (w) => w.select(tenant, 'v_daily_usage_by_provider'));
    assert.ok(
      byProvider.some((r) => r['provider'] === 'anthropic' && Number(r['cost_usd']) > 0),
      'anthropic usage is priced',
    );

    const next = mark();
    const rerun = await run(tenant, NEXT_DAY);
    assert.equal(rerun.status, 'COMPLETE', JSON.stringify(rerun.error ?? rerun.steps));
    const again = askedSince(next);
    assert.deepEqual(again.anthropic, ['2025-03-05T00:00:00Z'], 'only the new day');
    assert.deepEqual(again.cursor, [{ startDate: '2025-03-05', endDate: '2025-03-06' }]);
    assert.equal(await count(tenant, 'raw_anthropic_usage'), resultsIn(INITIAL, NEXT_DAY));
    assert.equal(await count(tenant, 'raw_cursor_usage'), cursorRecordsIn(INITIAL, NEXT_DAY));
    assert.equal(await count(tenant, 'fct_ai_usage_daily'), resultsIn(INITIAL, NEXT_DAY) + activeCursorRecords(INITIAL, NEXT_DAY));
  });

  it('an API failing in the middle of a backfill keeps the windows before it; the next run resumes at the failed window', async () => {
    const tenant = 'tpl_resume';
    await templateTenant(tenant);
    fakes.anthropic.failWindow('2025-02-01');
    const first = mark();
    let failed;
    try {
      failed = await run(tenant, RUN_DATE);
    } finally {
      fakes.anthropic.heal();
    }
    assert.equal(failed.status, 'FAILED', JSON.stringify(failed.steps));
    assert.deepEqual(askedSince(first).anthropic, ['2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z']);
    assert.equal(await count(tenant, 'raw_anthropic_usage'), resultsIn(INITIAL, '2025-02-01'), 'the first window landed');
    assert.doesNotMatch(JSON.stringify(failed), new RegExp(fakes.secrets['anthropic_admin_key']!), 'the key is in no message');

    const resumed = mark();
    const summary = await run(tenant, RUN_DATE);
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error ?? summary.steps));
    assert.deepEqual(askedSince(resumed).anthropic, ['2025-02-01T00:00:00Z', '2025-03-04T00:00:00Z'], 'resumes at the failed window');
    assert.equal(await count(tenant, 'raw_anthropic_usage'), resultsIn(INITIAL, RUN_DATE));
    assert.equal(await count(tenant, 'raw_cursor_usage'), cursorRecordsIn(INITIAL, RUN_DATE));
  });

  /** Edits one line of a tenant's installed source file. */
  async function editSource(tenantId: string, file: string, from: string, to: string): Promise<void> {
    const full = path.join(root, 'configs', tenantId, 'sources', file);
    const text = await readFile(full, 'utf8');
    assert.ok(text.includes(from), `${file} has ${from}`);
    await writeFile(full, text.replace(from, to));
  }

  /** The run's error message, asserted to carry none of the tenant's secrets. */
  function failure(summary: Awaited<ReturnType<typeof run>>): string {
    assert.equal(summary.status, 'FAILED', JSON.stringify(summary.steps));
    const all = JSON.stringify(summary);
    for (const [name, value] of Object.entries(fakes.secrets)) {
      for (const part of value.split('\n').filter((line) => line.length > 20))
        assert.ok(!all.includes(part), `secret ${name} in the run's summary`);
    }
    return summary.error?.message ?? '';
  }

  describe("the APIs' refusals reach the run as they said them", () => {
    it('Anthropic: a window of more days than a request may hold is a 400 invalid_request_error', async () => {
      await templateTenant('tpl_anthropic_400');
      await editSource('tpl_anthropic_400', 'anthropic_usage.yml', 'windows: { size: 31d }', 'windows: { size: 45d }');
      const message = failure(await run('tpl_anthropic_400', RUN_DATE));
      assert.match(message, /400/);
      assert.match(message, /more than 31 buckets/);
    });

    it("Cursor: a window longer than 30 days is refused by the API's cap", async () => {
      await templateTenant('tpl_cursor_400');
      await editSource('tpl_cursor_400', 'cursor_usage.yml', 'windows: { size: 30d }', 'windows: { size: 31d }');
      const summary = await run('tpl_cursor_400', RUN_DATE);
      const message = failure(summary);
      assert.match(message, /400/);
      assert.match(message, /cannot exceed 30 days/);
      assert.equal(await count('tpl_cursor_400', 'raw_anthropic_usage'), resultsIn(INITIAL, RUN_DATE), 'the steps before it ran');
    });

    it('Sheets: a spreadsheet not shared with the service account is a 403 PERMISSION_DENIED', async () => {
      await templateTenant('tpl_sheets_403');
      const other = fakes.sheets.accounts.issue('someone-else@acme-analytics.iam.gserviceaccount.com');
      await withContext(root, (ctx) => setTenantCredential(ctx, 'tpl_sheets_403', 'google_sheets_sa_key', other.json));
      const message = failure(await run('tpl_sheets_403', RUN_DATE));
      assert.match(message, /403/);
      assert.match(message, /PERMISSION_DENIED|does not have permission/);
    });

    it('Sheets: a key Google no longer knows is a 401 UNAUTHENTICATED', async () => {
      await templateTenant('tpl_sheets_401');
      const revoked = fakes.sheets.accounts.issue(SHEETS_ACCOUNT);
      fakes.sheets.accounts.revoke(revoked.privateKeyId);
      await withContext(root, (ctx) => setTenantCredential(ctx, 'tpl_sheets_401', 'google_sheets_sa_key', revoked.json));
      const message = failure(await run('tpl_sheets_401', RUN_DATE));
      assert.match(message, /401/);
    });
  });

  describe('on BigQuery', () => {
    let cloud: CloudFakes;
    after(() => cloud?.stop());

    it('the same run lands the same rows and builds the same model (GoogleSQL checked by the analyzer)', async () => {
      cloud = await startCloudFakes({ pointProcess: true });
      const cloudRoot = await newWorkspace('ai-usage-bq');
      await appendFile(path.join(cloudRoot, 'convergence.yaml'), `${cloud.yaml('cloud')}    ${fakeHostsSetting(fakes)}\n`);
      const tenant = 'tpl_bigquery';
      await installTemplate(cloudRoot, 'ai-usage', tenant);
      await pointTemplateAtFakes(cloudRoot, tenant, fakes);
      const counts = await withContext(
        cloudRoot,
        async (ctx) => {
          await bootstrap(ctx);
          await createTenant(ctx, { tenantId: tenant, name: tenant, plan: 'scale' });
          for (const [name, value] of Object.entries(fakes.secrets)) await setTenantCredential(ctx, tenant, name, value);
          const summary = await runPipeline(ctx, { tenantId: tenant, pipelineId: 'p_ai_usage', runDate: RUN_DATE, params: PARAMS });
          assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error ?? summary.steps));
          const w = await ctx.backends.warehouse();
          const tables = ['raw_anthropic_usage', 'raw_cursor_usage', 'fct_ai_usage_daily', 'dim_models', 'v_unassigned_api_keys'];
          return Object.fromEntries(await Promise.all(tables.map(async (t) => [t, (await w.select(tenant, t)).length] as const)));
        },
        { env: 'cloud' },
      );
      assert.deepEqual(counts, {
        raw_anthropic_usage: resultsIn(INITIAL, RUN_DATE),
        raw_cursor_usage: cursorRecordsIn(INITIAL, RUN_DATE),
        fct_ai_usage_daily: resultsIn(INITIAL, RUN_DATE) + activeCursorRecords(INITIAL, RUN_DATE),
        dim_models: modelsUsed(INITIAL, RUN_DATE),
        v_unassigned_api_keys: 1,
      });
    });
  });
});
