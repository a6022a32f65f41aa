/**
 * Attack: a POST source with windows renders a secret into its JSON body, and the API echoes the
 * body back in its error and in its 200 answers. The secret must stay out of the run's error, its
 * progress lines, and the tenant_step_logs and tenant_pipeline_runs rows.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { startFakeApi, type FakeApi } from '../fakes/http-api.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { allowFakeApis } from '../helpers/rest-sources.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'body_co';
const SECRET = 'body-SECRET8888';
const LEAK = /SECRET\d{4}/;

describe('a secret rendered into a POST body never leaves', () => {
  let root: string;
  let api: FakeApi;

  before(async () => {
    // The first window is answered (its body echoed into the records' sibling), the second refused with the body echoed.
    api = await startFakeApi((req) => {
      const { startDate } = JSON.parse(req.body) as { startDate: number };
      if (startDate === Date.parse('2025-01-01T00:00:00Z')) return { body: { echo: req.body, data: [{ id: 1 }] } };
      return { status: 400, body: { error: `bad request ${req.body}` } };
    });
    root = await newBootstrappedWorkspace('body-secrets');
    await allowFakeApis(root);
    await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'Body', plan: 'scale' }));
    const dir = path.join(root, 'configs', TENANT);
    await writeFile(path.join(dir, 'secrets', 'body_tok.txt'), SECRET, { mode: 0o600 });
    await writeFile(
      path.join(dir, 'sources', 'posted.yml'),
      [
        'source_id: posted',
        'type: rest_api',
        `url: ${api.base}/usage`,
        'method: POST',
        `body: { token: "{{ secret('body_tok') }}", startDate: "{{ window_start | epoch_ms }}", endDate: "{{ window_end | epoch_ms }}" }`,
        'records_path: data',
        'retry: { max_attempts: 1 }',
        'windows: { size: 1d }',
        'incremental: { cursor_field: id, initial: "2025-01-01" }',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'pipelines', 'p_posted.yml'),
      'pipeline_id: p_posted\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/posted.yml, destination: { table: posted } }\n',
    );
  });
  after(() => api.close());

  it('the API received the secret, the run failed at the second window and no record of it holds the secret', async () => {
    const progress: string[] = [];
    const summary = await withContext(root, (ctx) =>
      runPipeline(
        ctx,
        { tenantId: TENANT, pipelineId: 'p_posted', runDate: '2025-01-03' },
        { stepProgress: (_, text) => progress.push(text) },
      ),
    );
    assert.equal(api.requests.length, 2);
    assert.ok(api.requests.every((r) => r.body.includes(SECRET)));
    assert.equal(summary.status, 'FAILED');
    assert.match(summary.error?.message ?? '', /HTTP 400/);
    assert.match(summary.error?.message ?? '', /\[REDACTED\]/);
    assert.doesNotMatch(JSON.stringify(summary), LEAK);
    assert.doesNotMatch(progress.join('\n'), LEAK);
    const rows = await withWarehouse(root, async (w) => [
      ...(await w.select(METADATA_DATASET, T.stepLogs, { where: { tenant_id: TENANT } })),
      ...(await w.select(METADATA_DATASET, T.runs, { where: { tenant_id: TENANT } })),
      ...(await w.select(TENANT, 'posted')),
    ]);
    assert.ok(rows.length >= 3);
    assert.doesNotMatch(JSON.stringify(rows), LEAK);
  });
});
