import { bootstrap } from '../../bootstrap.ts';
import { METADATA_DATASET, METADATA_TABLES } from '../../metadata/tables.ts';
import { appliedSchemaVersion, LATEST_SCHEMA_VERSION } from '../../metadata/migrations.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

/** What bootstrap would do to the `tenants` metadata dataset, read without writing. */
async function planDataset(setup: SetupContext): Promise<PlannedChange[]> {
  const warehouse = await setup.ctx.backends.warehouse();
  const resource = `projects/${setup.project}/datasets/${METADATA_DATASET}`;
  if (!(await warehouse.datasetExists(METADATA_DATASET))) {
    return [
      {
        action: 'create',
        resource,
        detail: `dataset ${METADATA_DATASET}, its ${METADATA_TABLES.length} tables, schema v${LATEST_SCHEMA_VERSION}`,
      },
    ];
  }
  const missing: string[] = [];
  for (const spec of METADATA_TABLES) if (!(await warehouse.tableExists(METADATA_DATASET, spec.name))) missing.push(spec.name);
  const changes: PlannedChange[] = missing.map((table) => ({
    action: 'create',
    resource: `${resource}/tables/${table}`,
    detail: `table ${table}`,
  }));
  const version = await appliedSchemaVersion(warehouse);
  if (version < LATEST_SCHEMA_VERSION) {
    changes.push({ action: 'update', resource, detail: `schema v${version} → v${LATEST_SCHEMA_VERSION} (migrations)` });
  }
  return changes;
}

/** The BigQuery `tenants` dataset every command reads, created and migrated as `bootstrap` does. */
export const datasetStep: SetupStep = {
  id: 'dataset',
  title: 'Bootstrap the tenants dataset',
  plan: planDataset,
  async apply(setup) {
    await bootstrap(setup.ctx);
  },
};
