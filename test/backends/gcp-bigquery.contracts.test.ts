/**
 * The Warehouse and load contracts, unchanged, against BigQueryWarehouse driving the official
 * @google-cloud/bigquery client over a real socket to the in-process BigQuery REST fake.
 */
import '../fakes/env-guard.ts';
import { BigQueryWarehouse } from '../../src/backends/warehouse/bigquery/index.ts';
import { loadContract } from '../contracts/load.contract.ts';
import { warehouseContract, type WarehouseFixture } from '../contracts/warehouse.contract.ts';
import { viewContract } from '../contracts/view.contract.ts';
import { FakeBigQuery, fakeClient } from '../fakes/bigquery/index.ts';

async function fixture(): Promise<WarehouseFixture> {
  const fake = await FakeBigQuery.start({ projectId: 'contract-project' });
  const client = await fakeClient(fake);
  const subject = new BigQueryWarehouse({
    client,
    project: fake.projectId,
    location: 'EU',
    labels: { tenant_id: 'contract' },
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
  });
  return { subject, cleanup: () => fake.stop() };
}

warehouseContract('BigQuery (REST fake)', fixture);
loadContract('BigQuery (REST fake)', fixture);
viewContract('BigQuery (REST fake)', fixture);
