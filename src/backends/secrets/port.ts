/**
 * SecretStore port: named secrets. `tenant` scopes a secret to one tenant; null means a system
 * secret such as `admin-api-key-<env>`. Values are never logged.
 */
export interface SecretStore {
  readonly describe: string;
  get(tenant: string | null, name: string): Promise<string | undefined>;
  put(tenant: string | null, name: string, value: string): Promise<void>;
  delete(tenant: string | null, name: string): Promise<boolean>;
  list(tenant: string | null): Promise<string[]>;
}
