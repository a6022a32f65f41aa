import { createHash } from 'node:crypto';
import type { Warehouse } from '../../backends/warehouse/port.ts';
import { DEPLOYMENT_HISTORY, METADATA_DATASET, METADATA_TABLES, NOTIFICATION_DELIVERIES, T } from './tables.ts';

/**
 * Versioned upgrades of the metadata schema. A migration is applied once, in order, and recorded
 * in schema_migrations with a checksum of what it does, so `doctor` can tell a current schema
 * from an old or a tampered one. Version 1 is the table set itself.
 */
export interface Migration {
  version: number;
  name: string;
  checksum: string;
  apply(warehouse: Warehouse): Promise<void>;
}

const checksum = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'metadata tables',
    checksum: checksum(METADATA_TABLES),
    async apply(warehouse) {
      for (const spec of METADATA_TABLES) await warehouse.createTable(METADATA_DATASET, spec);
    },
  },
  {
    version: 2,
    name: 'deployment history',
    checksum: checksum(DEPLOYMENT_HISTORY),
    async apply(warehouse) {
      await warehouse.createTable(METADATA_DATASET, DEPLOYMENT_HISTORY);
    },
  },
  {
    version: 3,
    name: 'notification deliveries',
    checksum: checksum(NOTIFICATION_DELIVERIES),
    async apply(warehouse) {
      await warehouse.createTable(METADATA_DATASET, NOTIFICATION_DELIVERIES);
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Highest applied version, 0 when the schema was never bootstrapped. */
export async function appliedSchemaVersion(warehouse: Warehouse): Promise<number> {
  if (!(await warehouse.tableExists(METADATA_DATASET, T.migrations))) return 0;
  const rows = await warehouse.select(METADATA_DATASET, T.migrations, {
    columns: ['version'],
    orderBy: [['version', 'desc']],
    limit: 1,
  });
  return rows.length ? Number(rows[0]!.version) : 0;
}
