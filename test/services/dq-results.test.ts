/**
 * dq results as tenant_dq_results rows, written to and read back from the real metadata table.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { runDataQuality } from '../../src/engine/dq/index.ts';
import { METADATA_TABLES, T } from '../../src/services/metadata/tables.ts';
import { dqResultRows } from '../../src/services/runs/dq-results.ts';
import { DATASET, freshWarehouse, makeTable, NOW } from '../engine/dq/helpers.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('dqResultRows', () => {
  it('builds one tenant_dq_results row per rule that the metadata table accepts', async () => {
    const wh = await freshWarehouse('rows');
    await makeTable(
      wh,
      'usage',
      [
        { name: 'date', type: 'DATE' },
        { name: 'model', type: 'STRING' },
        { name: 'loaded_at', type: 'TIMESTAMP' },
      ],
      [
        { date: '2025-01-09', model: 'a', loaded_at: new Date('2025-01-09T05:00:00Z') },
        { date: '2025-01-09', model: 'a', loaded_at: null },
      ],
    );
    const outcome = await runDataQuality(wh, {
      dataset: DATASET,
      table: 'usage',
      now: NOW,
      rules: [
        { check: 'unique', columns: ['date', 'model'] },
        { check: 'freshness', column: 'loaded_at', max_age: '1d', severity: 'warn' },
        { check: 'row_count', min: 1 },
      ],
    });
    const checkedAt = new Date('2025-01-10T06:00:05Z');
    const rows = dqResultRows(outcome, {
      runId: '6f1c2d3e-0000-4000-8000-000000000001',
      tenantId: DATASET,
      pipelineId: 'p_usage_daily',
      stepName: 'check_usage',
      tableName: 'usage',
      checkedAt,
    });
    assert.equal(rows.length, 3);
    assert.equal(new Set(rows.map((r) => r['dq_result_id'])).size, 3);
    for (const row of rows) assert.match(String(row['dq_result_id']), UUID);
    assert.deepEqual(rows[0], {
      dq_result_id: rows[0]!['dq_result_id'],
      pipeline_logging_id: '6f1c2d3e-0000-4000-8000-000000000001',
      tenant_id: DATASET,
      pipeline_id: 'p_usage_daily',
      step_name: 'check_usage',
      table_name: 'usage',
      rule_name: 'unique_date_model',
      check_type: 'unique',
      column_name: 'date,model',
      severity: 'error',
      passed: false,
      failing_count: 2,
      total_count: 2,
      sample_values: JSON.stringify([{ key: { date: '2025-01-09', model: 'a' }, count: 2 }]),
      details: JSON.stringify({ duplicate_keys: 1 }),
      checked_at: checkedAt,
    });
    assert.equal(rows[2]!['column_name'], null);

    const spec = METADATA_TABLES.find((t) => t.name === T.dqResults)!;
    await wh.createDataset('tenants');
    await wh.createTable('tenants', spec);
    await wh.insert('tenants', T.dqResults, rows);
    const back = await wh.select('tenants', T.dqResults, { orderBy: [['rule_name', 'asc']] });
    assert.deepEqual(
      back.map((r) => [r['rule_name'], r['severity'], r['passed'], r['failing_count'], JSON.parse(String(r['details']))]),
      [
        [
          'freshness_loaded_at',
          'warn',
          false,
          1,
          { max_value: '2025-01-09T05:00:00.000Z', threshold: '2025-01-09T06:00:00.000Z', max_age: '1d' },
        ],
        ['row_count', 'error', true, 0, { row_count: 2, min: 1, max: null }],
        ['unique_date_model', 'error', false, 2, { duplicate_keys: 1 }],
      ],
    );
    assert.deepEqual((back[2]!['checked_at'] as Date).toISOString(), checkedAt.toISOString());
  });
});
