/**
 * A pipeline run on the embedded warehouse lets DuckDB read a clean local CSV source itself, and
 * stages a file that needs it (with the reason in the step's details), landing the same rows.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const TENANT = 'acme_corp';
const SCHEMA = [
  { name: 'id', type: 'INT64', mode: 'REQUIRED' },
  { name: 'day', type: 'DATE', mode: 'NULLABLE' },
  { name: 'cost', type: 'FLOAT64', mode: 'NULLABLE' },
  { name: 'label', type: 'STRING', mode: 'NULLABLE' },
];

async function workspace(csv: Record<string, string>, writeMode: 'append' | 'replace' | 'merge' = 'append'): Promise<string> {
  const root = await newBootstrappedWorkspace('csv-direct');
  await withContext(root, (ctx) => createTenant(ctx, { tenantId: TENANT, name: 'ACME', plan: 'scale' }));
  const dir = path.join(root, 'configs', TENANT);
  await mkdir(path.join(root, 'data', TENANT), { recursive: true });
  for (const [name, body] of Object.entries(csv)) await writeFile(path.join(root, 'data', TENANT, name), body);
  await writeFile(path.join(dir, 'schemas', 'events.json'), JSON.stringify(SCHEMA));
  await writeFile(
    path.join(dir, 'sources', 'events.yml'),
    'source_id: events\ntype: file\npath: events_*.csv\nformat: csv\nschema: schemas/events.json\n',
  );
  const merge = writeMode === 'merge' ? ', merge_keys: [id]' : '';
  await writeFile(
    path.join(dir, 'pipelines', 'p_events.yml'),
    `pipeline_id: p_events\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/events.yml, destination: { table: events, write_mode: ${writeMode}${merge} } }\n`,
  );
  return root;
}

const run = (root: string) =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: TENANT, pipelineId: 'p_events', runDate: '2025-01-31' }));

async function stepDetails(root: string, runId: string): Promise<Record<string, unknown>> {
  return withWarehouse(root, async (w) => {
    const [row] = await w.select(METADATA_DATASET, T.stepLogs, { where: { pipeline_logging_id: runId } });
    return JSON.parse(String(row?.['details'])) as Record<string, unknown>;
  });
}

const CLEAN_A = 'id,day,cost,label\n1,2025-01-01,1.5,a\n2,2025-01-02,2.25,"b, with a comma"\n';
const CLEAN_B = 'id,day,cost,label\n3,2025-01-03,,c\n';

describe('pipeline run reads clean local CSV in DuckDB', () => {
  it('loads clean files in the warehouse, with the same counts and notes a staged load gives', async () => {
    const root = await workspace({ 'events_a.csv': CLEAN_A, 'events_b.csv': CLEAN_B, 'events_c.csv': '' });
    const summary = await run(root);
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const step = summary.steps[0]!;
    assert.equal(step.rowsIn, 3);
    assert.equal(step.rowsOut, 3);
    assert.ok(
      step.notes.some((n) => /file is empty/.test(n)),
      step.notes.join('; '),
    );
    const details = await stepDetails(root, summary.runId);
    assert.equal(details['loadedBy'], 'warehouse');
    assert.equal(details['created'], true);
    const rows = await withWarehouse(root, (w) => w.query(`SELECT id, day, cost, label FROM ${w.qualify(TENANT, 'events')} ORDER BY id`));
    assert.deepEqual(rows, [
      { id: 1, day: '2025-01-01', cost: 1.5, label: 'a' },
      { id: 2, day: '2025-01-02', cost: 2.25, label: 'b, with a comma' },
      { id: 3, day: '2025-01-03', cost: null, label: 'c' },
    ]);
  });

  it('stages files with a bad value or a ragged line, quarantining them with their line, and says why', async () => {
    const root = await workspace({ 'events_a.csv': `${CLEAN_A}4,2025-01-04,n/a,d\n5,2025-01-05\n`, 'events_b.csv': CLEAN_B });
    const summary = await run(root);
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal(summary.steps[0]!.rowsOut, 3);
    const details = await stepDetails(root, summary.runId);
    assert.equal(details['loadedBy'], undefined);
    assert.equal(typeof details['stagedBecause'], 'string');
    const quarantined = await withWarehouse(root, (w) =>
      w.query(`SELECT _reason, _source_row FROM ${w.qualify(TENANT, 'events__quarantine')} ORDER BY _source_row`),
    );
    assert.deepEqual(quarantined, [
      { _reason: "cost: 'n/a' is not a valid FLOAT64", _source_row: 4 },
      { _reason: 'line has 2 fields, expected 4', _source_row: 5 },
    ]);
    assert.equal(await withWarehouse(root, (w) => w.count(TENANT, 'events')), 3, 'the failed direct attempt left nothing behind');
  });

  it('stages a merge (the last row of a key wins by line) and replaces on a rerun of replace', async () => {
    const merged = await workspace({ 'events_a.csv': `${CLEAN_A}1,2025-01-09,9,a2\n` }, 'merge');
    const summary = await run(merged);
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    assert.equal((await stepDetails(merged, summary.runId))['loadedBy'], undefined);
    const labels = await withWarehouse(merged, (w) => w.query(`SELECT label FROM ${w.qualify(TENANT, 'events')} ORDER BY id`));
    assert.deepEqual(
      labels.map((r) => r['label']),
      ['a2', 'b, with a comma'],
    );

    const replaced = await workspace({ 'events_a.csv': CLEAN_A }, 'replace');
    await run(replaced);
    const again = await run(replaced);
    assert.equal((await stepDetails(replaced, again.runId))['loadedBy'], 'warehouse');
    assert.equal(await withWarehouse(replaced, (w) => w.count(TENANT, 'events')), 2);
  });
});
