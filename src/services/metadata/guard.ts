import type { Warehouse } from '../../backends/warehouse/port.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { envFlag } from '../context.ts';
import { METADATA_DATASET, METADATA_TABLES } from './tables.ts';

/** Warehouses already seen bootstrapped: the check costs a listing (a file open or a request) otherwise. */
const bootstrapped = new WeakSet<Warehouse>();

/**
 * Fails with a clear next step (exit 2) when the metadata dataset is missing or incomplete — an
 * interrupted `bootstrap` leaves some tables behind, and without this check a command would fail
 * later with "not found" on whichever table it reached first.
 */
export async function requireBootstrapped(warehouse: Warehouse, envName: string): Promise<void> {
  if (bootstrapped.has(warehouse)) return;
  const present = new Set(await warehouse.listTables(METADATA_DATASET));
  const missing = METADATA_TABLES.map((t) => t.name).filter((name) => !present.has(name));
  if (missing.length === 0) {
    bootstrapped.add(warehouse);
    return;
  }
  const suggestion = `run \`convergence bootstrap${envFlag(envName)}\` first`;
  if (missing.length === METADATA_TABLES.length) {
    throw new ConvergenceError(
      'NOT_BOOTSTRAPPED',
      ExitCode.usage,
      `the metadata dataset "${METADATA_DATASET}" of environment "${envName}" is not bootstrapped`,
      {
        suggestion,
      },
    );
  }
  throw new ConvergenceError(
    'NOT_BOOTSTRAPPED',
    ExitCode.usage,
    `the metadata dataset "${METADATA_DATASET}" of environment "${envName}" is incompletely bootstrapped: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`,
    { suggestion: `${suggestion}; it creates only what is missing`, data: { missing } },
  );
}
