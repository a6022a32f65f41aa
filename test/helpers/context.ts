import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Warehouse } from '../../src/backends/warehouse/port.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { openContext as openServiceContext } from '../../src/services/open-context.ts';
import { initWorkspace } from '../../src/services/init.ts';
import { METADATA_DATASET, METADATA_TABLES, T } from '../../src/services/metadata/tables.ts';
import { makeTempDir } from './tmp.ts';

/** A clock tests move by hand. */
export interface Clock {
  now(): Date;
  set(date: Date | string): void;
  advance(ms: number): void;
}

export function manualClock(start: Date | string = '2030-01-15T12:00:00.000Z'): Clock {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set: (date) => {
      current = new Date(date).getTime();
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

export interface TestContext extends ServiceContext {
  warnings: string[];
  close(): Promise<void>;
}

/** The ServiceContext BaseCommand.context() builds, for a workspace at `root`, with warnings collected. */
export async function openContext(root: string, options: { env?: string; clock?: Clock; actor?: string } = {}): Promise<TestContext> {
  const warnings: string[] = [];
  const ctx = await openServiceContext(root, {
    env: options.env,
    now: options.clock ? () => options.clock!.now() : undefined,
    actor: options.actor ?? 'test:runner',
    warn: (message: string) => warnings.push(message),
  });
  return { ...ctx, warnings };
}

/** `convergence init` into a fresh temp dir, in process. Returns the workspace root. */
export async function newWorkspace(label = 'ws'): Promise<string> {
  const root = await makeTempDir(label);
  await initWorkspace(root);
  return root;
}

/** A workspace whose metadata is bootstrapped (in process; faster than spawning the CLI). */
export async function newBootstrappedWorkspace(label = 'ws'): Promise<string> {
  const root = await newWorkspace(label);
  const ctx = await openContext(root);
  try {
    await bootstrap(ctx);
  } finally {
    await ctx.close();
  }
  return root;
}

/** Runs `work` with a fresh context on `root` and closes it again (so the CLI can use the file). */
export async function withContext<R>(
  root: string,
  work: (ctx: TestContext) => Promise<R>,
  options: Parameters<typeof openContext>[1] = {},
): Promise<R> {
  const ctx = await openContext(root, options);
  try {
    return await work(ctx);
  } finally {
    await ctx.close();
  }
}

export async function withWarehouse<R>(root: string, work: (warehouse: Warehouse) => Promise<R>): Promise<R> {
  return withContext(root, async (ctx) => work(await ctx.backends.warehouse()));
}

/** Schemas (datasets) in the local DuckDB file, system schemas excluded. */
export async function listDatasets(warehouse: Warehouse): Promise<string[]> {
  const rows = await warehouse.query(
    `SELECT schema_name FROM information_schema.schemata
     WHERE catalog_name = current_database() AND schema_name NOT IN ('main', 'information_schema', 'pg_catalog')
     ORDER BY schema_name`,
  );
  return rows.map((r) => String(r.schema_name));
}

export interface StateSnapshot {
  datasets: string[];
  /** Row count of every metadata table (missing tables are absent). */
  rows: Record<string, number>;
  /** Folders under configs/ (tenant config dirs). */
  configDirs: string[];
  /** Files under .convergence/secrets. */
  systemSecrets: string[];
  /** `tenant_id status` of every profile, and `api_key_id status expires_at` of every key. */
  profiles: string[];
  keys: string[];
}

/**
 * Everything a failed command could have left behind: datasets, metadata rows, config folders
 * and system secrets. Compare a snapshot before and after with deepEqual.
 */
export async function snapshotState(root: string): Promise<StateSnapshot> {
  return withWarehouse(root, async (warehouse) => {
    // A handful of queries rather than one call per table: every warehouse call opens the file.
    const datasets = await listDatasets(warehouse);
    const rows: Record<string, number> = {};
    let profiles: string[] = [];
    let keys: string[] = [];
    if (datasets.includes(METADATA_DATASET)) {
      const present = new Set(await warehouse.listTables(METADATA_DATASET));
      const tables = METADATA_TABLES.map((spec) => spec.name).filter((name) => present.has(name));
      if (tables.length) {
        const counts = await warehouse.query(
          tables
            .map((name) => `SELECT '${name}' AS name, count(*) AS n FROM ${warehouse.qualify(METADATA_DATASET, name)}`)
            .join(' UNION ALL '),
        );
        for (const r of counts) rows[String(r.name)] = Number(r.n);
      }
      if (present.has(T.profiles)) {
        profiles = (
          await warehouse.query(`SELECT tenant_id, status FROM ${warehouse.qualify(METADATA_DATASET, T.profiles)} ORDER BY tenant_id`)
        ).map((r) => `${r.tenant_id} ${r.status}`);
      }
      if (present.has(T.apiKeys)) {
        keys = (
          await warehouse.query(
            `SELECT api_key_id, status, expires_at FROM ${warehouse.qualify(METADATA_DATASET, T.apiKeys)} ORDER BY api_key_id`,
          )
        ).map((r) => `${r.api_key_id} ${r.status} ${r.expires_at instanceof Date ? r.expires_at.toISOString() : 'never'}`);
      }
    }
    const configDirs = (await readdir(path.join(root, 'configs'), { withFileTypes: true }).catch(() => []))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    const systemSecrets = (await readdir(path.join(root, '.convergence', 'secrets')).catch(() => [])).sort();
    return { datasets, rows, configDirs, systemSecrets, profiles, keys };
  });
}
