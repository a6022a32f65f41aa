import { METADATA_DATASET, METADATA_TABLES, T } from './metadata/tables.ts';
import { MIGRATIONS, appliedSchemaVersion, LATEST_SCHEMA_VERSION } from './metadata/migrations.ts';
import type { ServiceContext } from './context.ts';

export interface BootstrapOptions {
  forceRecreateDataset?: boolean;
  forceRecreateTables?: boolean;
  onProgress?: (message: string) => void;
}

export interface BootstrapResult {
  dataset: string;
  warehouse: string;
  datasetCreated: boolean;
  tablesCreated: string[];
  tablesPresent: string[];
  tablesRecreated: string[];
  migrationsApplied: number[];
  schemaVersion: number;
  tables: Array<{ name: string; state: 'created' | 'present' | 'recreated'; columns: number }>;
}

/**
 * Creates the central `tenants` dataset, its 11 tables and schema_migrations, and applies pending
 * migrations. Running it again changes nothing. The force options drop and recreate — the command
 * asks for confirmation before calling with them.
 */
export async function bootstrap(ctx: ServiceContext, options: BootstrapOptions = {}): Promise<BootstrapResult> {
  const warehouse = await ctx.backends.warehouse();
  const progress = options.onProgress ?? (() => {});

  if (options.forceRecreateDataset) {
    progress(`dropping dataset ${METADATA_DATASET}`);
    await warehouse.dropDataset(METADATA_DATASET);
  }
  const datasetCreated = await warehouse.createDataset(METADATA_DATASET);

  const recreated = new Set<string>();
  if (options.forceRecreateTables && !datasetCreated) {
    for (const spec of METADATA_TABLES) {
      if (await warehouse.tableExists(METADATA_DATASET, spec.name)) {
        await warehouse.dropTable(METADATA_DATASET, spec.name);
        recreated.add(spec.name);
      }
    }
  }

  const tables: BootstrapResult['tables'] = [];
  for (const spec of METADATA_TABLES) {
    const created = await warehouse.createTable(METADATA_DATASET, spec);
    const state = recreated.has(spec.name) ? 'recreated' : created ? 'created' : 'present';
    progress(`${spec.name}: ${state}`);
    tables.push({ name: spec.name, state, columns: spec.fields.length });
  }

  const current = await appliedSchemaVersion(warehouse);
  const applied: number[] = [];
  for (const migration of MIGRATIONS.filter((m) => m.version > current)) {
    await migration.apply(warehouse);
    await warehouse.insert(METADATA_DATASET, T.migrations, [
      { version: migration.version, name: migration.name, checksum: migration.checksum, applied_at: ctx.now(), applied_by: ctx.actor },
    ]);
    applied.push(migration.version);
  }

  return {
    dataset: METADATA_DATASET,
    warehouse: warehouse.describe,
    datasetCreated,
    tablesCreated: tables.filter((t) => t.state === 'created').map((t) => t.name),
    tablesPresent: tables.filter((t) => t.state === 'present').map((t) => t.name),
    tablesRecreated: tables.filter((t) => t.state === 'recreated').map((t) => t.name),
    migrationsApplied: applied,
    schemaVersion: Math.max(current, ...applied, 0) || LATEST_SCHEMA_VERSION,
    tables,
  };
}
