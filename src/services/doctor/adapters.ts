import type { Backends } from '../../backends/factory.ts';
import type { ResolvedEnv } from '../../config/workspace.ts';
import { isConvergenceError } from '../../lib/errors.ts';
import { envFlag } from '../context.ts';
import { appliedSchemaVersion, LATEST_SCHEMA_VERSION } from '../metadata/migrations.ts';
import { METADATA_DATASET, T } from '../metadata/tables.ts';
import { fixOf, message, type Check } from './check.ts';

/** Checks of the adapters every environment has: the warehouse and its metadata schema, the keyring. */

export async function warehouseChecks(backends: Backends, env: ResolvedEnv, add: (c: Check) => void) {
  try {
    const started = performance.now();
    const warehouse = await backends.warehouse();
    await warehouse.datasetExists('tenants');
    add({ name: 'warehouse', status: 'pass', detail: `${warehouse.describe} reachable in ${Math.round(performance.now() - started)} ms` });
    const version = await appliedSchemaVersion(warehouse);
    const bootstrapCmd = `convergence bootstrap${envFlag(env.name)}`;
    if (version === LATEST_SCHEMA_VERSION) add({ name: 'schema', status: 'pass', detail: `metadata schema version ${version} (current)` });
    else if (version === 0)
      add({ name: 'schema', status: 'fail', detail: 'metadata dataset not bootstrapped', fix: `run \`${bootstrapCmd}\`` });
    else if (version < LATEST_SCHEMA_VERSION)
      add({
        name: 'schema',
        status: 'fail',
        detail: `metadata schema version ${version}, this CLI expects ${LATEST_SCHEMA_VERSION}`,
        fix: `run \`${bootstrapCmd}\` to apply the migrations`,
      });
    else
      add({
        name: 'schema',
        status: 'fail',
        detail: `metadata schema version ${version} is newer than this CLI (${LATEST_SCHEMA_VERSION})`,
        fix: 'upgrade convergence',
      });
  } catch (err) {
    add({
      name: 'warehouse',
      status: 'fail',
      detail: message(err),
      fix: fixOf(err, 'check the warehouse settings of this environment'),
    });
    add({ name: 'schema', status: 'skip', detail: 'needs the warehouse' });
  }
}

export async function keyringCheck(backends: Backends, add: (c: Check) => void) {
  try {
    const keyring = await backends.keyring();
    await keyring.check();
    add({ name: 'keyring', status: 'pass', detail: `${keyring.describe}: encrypt/decrypt round trip ok` });
  } catch (err) {
    // A keyring not created yet is only a problem once something was encrypted with it.
    if (isConvergenceError(err) && err.data?.missing === true && !(await hasEncryptedValues(backends))) {
      add({ name: 'keyring', status: 'pass', detail: 'not created yet; it is created on first use (nothing is encrypted yet)' });
      return;
    }
    add({
      name: 'keyring',
      status: 'fail',
      detail: message(err),
      fix: fixOf(err, 'restore the keyring from backup'),
    });
  }
}

/** Whether any API key or credential was stored encrypted; true when that cannot be told. */
async function hasEncryptedValues(backends: Backends): Promise<boolean> {
  try {
    const warehouse = await backends.warehouse();
    for (const table of [T.apiKeys, T.credentials]) {
      if ((await warehouse.tableExists(METADATA_DATASET, table)) && (await warehouse.count(METADATA_DATASET, table)) > 0) return true;
    }
    return false;
  } catch {
    return true;
  }
}
