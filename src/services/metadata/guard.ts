import type { Warehouse } from '../../backends/warehouse/port.ts';
import { ConvergenceError, ExitCode } from '../../lib/errors.ts';
import { envFlag } from '../context.ts';
import { METADATA_DATASET, T } from './tables.ts';

/** Fails with a clear next step when the metadata dataset has not been bootstrapped. */
export async function requireBootstrapped(warehouse: Warehouse, envName: string): Promise<void> {
  if (await warehouse.tableExists(METADATA_DATASET, T.profiles)) return;
  throw new ConvergenceError(
    'NOT_BOOTSTRAPPED',
    ExitCode.usage,
    `the metadata dataset "${METADATA_DATASET}" of environment "${envName}" is not bootstrapped`,
    {
      suggestion: `run \`convergence bootstrap${envFlag(envName)}\` first`,
    },
  );
}
