import type { ResolvedEnv, Workspace } from '../config/workspace.ts';
import { ConvergenceError, ExitCode } from '../lib/errors.ts';
import type { KeyRing } from './keyring/port.ts';
import type { Lock } from './lock/port.ts';
import type { SecretStore } from './secrets/port.ts';
import type { Warehouse } from './warehouse/port.ts';

/**
 * Picks the adapters of an environment. Each adapter module is imported only when first asked
 * for, so a command that never touches the warehouse never loads DuckDB or a Google client.
 */
export interface Backends {
  readonly env: ResolvedEnv;
  warehouse(): Promise<Warehouse>;
  keyring(): Promise<KeyRing>;
  secrets(): Promise<SecretStore>;
  lock(): Promise<Lock>;
  close(): Promise<void>;
}

export function createBackends(workspace: Workspace, env: ResolvedEnv): Backends {
  const cache = new Map<string, Promise<unknown>>();
  const once = <T>(name: string, make: () => Promise<T>): Promise<T> => {
    let value = cache.get(name) as Promise<T> | undefined;
    if (!value) {
      value = make();
      cache.set(name, value);
    }
    return value;
  };
  const local = env.backend === 'local';
  const unavailable = (port: string) =>
    Promise.reject(
      new ConvergenceError(
        'BACKEND_UNAVAILABLE',
        ExitCode.usage,
        `the ${port} backend of environment "${env.name}" (gcp) is not available in this build`,
        {
          suggestion: 'use the embedded default (--env local) for now',
        },
      ),
    );

  return {
    env,
    warehouse: () =>
      once('warehouse', async () => {
        if (!local) return unavailable('warehouse');
        const { DuckDbWarehouse } = await import('./warehouse/duckdb.ts');
        return new DuckDbWarehouse({ file: `${env.stateDir}/warehouse.duckdb` });
      }),
    keyring: () =>
      once('keyring', async () => {
        if (!local) return unavailable('keyring');
        const { LocalKeyRing } = await import('./keyring/local-aes.ts');
        return new LocalKeyRing({ keyFile: `${env.stateDir}/keyring.key` });
      }),
    secrets: () =>
      once('secrets', async () => {
        if (!local) return unavailable('secrets');
        const { FileSecretStore } = await import('./secrets/files.ts');
        return new FileSecretStore({ workspaceRoot: workspace.root, systemDir: `${env.stateDir}/secrets` });
      }),
    lock: () =>
      once('lock', async () => {
        if (!local) return unavailable('lock');
        const { FileLock } = await import('./lock/files.ts');
        return new FileLock({ dir: `${env.stateDir}/locks` });
      }),
    close: async () => {
      const warehouse = cache.get('warehouse') as Promise<Warehouse> | undefined;
      if (warehouse) await (await warehouse.catch(() => undefined))?.close();
    },
  };
}
