import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { crc32c } from '@aws-crypto/crc32c';
import { assertName, assertTenantId, NAME_PATTERN } from '../../domain/ids.ts';
import { ConvergenceError, ExitCode, conflictError, validationError } from '../../lib/errors.ts';
import type { RetryPolicy } from '../../lib/retry.ts';
import { GrpcCode, googleErrorFacts, toConvergenceError } from '../gcp/errors.ts';
import { IntegrityError, retryTransient } from '../gcp/retry.ts';
import type { SecretStore } from './port.ts';

/**
 * Separates tenant and name in a Secret Manager id: `<tenant_id>--<name>`. Tenant ids cannot
 * contain '-', so the first '--' always ends the tenant; system names may not contain it.
 */
const TENANT_SEPARATOR = '--';
const PAGE_SIZE = 1000;
const ACCESS = { permission: 'secretmanager.versions.access', role: 'roles/secretmanager.secretAccessor' };
const ADD_VERSION = { permission: 'secretmanager.versions.add', role: 'roles/secretmanager.secretVersionAdder' };
const CREATE = { permission: 'secretmanager.secrets.create', role: 'roles/secretmanager.admin' };
const DELETE = { permission: 'secretmanager.secrets.delete', role: 'roles/secretmanager.admin' };
const LIST = { permission: 'secretmanager.secrets.list', role: 'roles/secretmanager.viewer' };

interface Needs {
  permission: string;
  role: string;
}

export interface SecretManagerStoreOptions {
  client: SecretManagerServiceClient;
  project: string;
  /** Operator-managed files, read first (the FileSecretStore of the workspace). */
  files: SecretStore;
  /** Service account or user that calls Secret Manager, for grant remedies. */
  principal?: string;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
}

/**
 * Secrets as the seeds resolve them: a file an operator put in the workspace wins, then Secret
 * Manager. Writes go to Secret Manager only, and are refused while a file with the same name
 * would hide the new value. Values never appear in messages or logs.
 */
export class SecretManagerStore implements SecretStore {
  readonly describe: string;
  readonly #client: SecretManagerServiceClient;
  readonly #project: string;
  readonly #files: SecretStore;
  readonly #principal: string | undefined;
  readonly #retry: Partial<RetryPolicy>;
  readonly #timeoutMs: number;

  constructor(options: SecretManagerStoreOptions) {
    this.#client = options.client;
    this.#project = options.project;
    this.#files = options.files;
    this.#principal = options.principal;
    this.#retry = options.retry ?? {};
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.describe = `${options.files.describe}, then Secret Manager in project ${options.project}`;
  }

  async get(tenant: string | null, name: string): Promise<string | undefined> {
    const id = this.#secretId(tenant, name);
    const fromFile = await this.#files.get(tenant, name);
    if (fromFile !== undefined) return fromFile;
    const version = `${this.#secretName(id)}/versions/latest`;
    try {
      return await this.#call(async () => {
        const [response] = await this.#client.accessSecretVersion({ name: version }, this.#options());
        const data = Buffer.from(response.payload?.data ?? []);
        const sent = response.payload?.dataCrc32c;
        if (sent !== undefined && sent !== null && Number(String(sent)) !== crc32c(data)) {
          throw new IntegrityError(`the payload of ${response.name} does not match its checksum`);
        }
        return data.toString('utf8');
      });
    } catch (err) {
      const facts = googleErrorFacts(err);
      if (facts.grpcCode === GrpcCode.NOT_FOUND) return undefined;
      const state = /versions\/(\d+)\] is in (\w+) state/.exec(facts.detail);
      if (facts.grpcCode === GrpcCode.FAILED_PRECONDITION && state) {
        throw new ConvergenceError(
          'SECRET_VERSION_UNUSABLE',
          ExitCode.usage,
          `the latest version (${state[1]}) of secret ${id} is ${state[2]}`,
          {
            cause: err,
            suggestion:
              state[2] === 'DISABLED'
                ? `enable it (gcloud secrets versions enable ${state[1]} --secret ${id} --project ${this.#project}) or write a new value`
                : 'write a new value; a destroyed version cannot be read again',
            data: { secret: id, version: state[1], state: state[2] },
          },
        );
      }
      throw this.#mapError(err, id, ACCESS);
    }
  }

  async put(tenant: string | null, name: string, value: string): Promise<void> {
    const id = this.#secretId(tenant, name);
    await this.#refuseShadowed(tenant, name, 'write');
    const payload = Buffer.from(value, 'utf8');
    // Adding a version first needs only versions.add, so a rotation works for an account that
    // may not create secrets; a missing secret costs one NOT_FOUND round trip.
    try {
      await this.#addVersion(id, payload);
      return;
    } catch (err) {
      if (googleErrorFacts(err).grpcCode !== GrpcCode.NOT_FOUND) throw this.#mapError(err, id, ADD_VERSION);
    }
    try {
      await this.#call(() =>
        this.#client.createSecret(
          {
            parent: `projects/${this.#project}`,
            secretId: id,
            secret: {
              replication: { automatic: {} },
              labels: { 'managed-by': 'convergence', ...(tenant === null ? {} : { 'convergence-tenant': tenant }) },
            },
          },
          this.#options(),
        ),
      );
    } catch (err) {
      // Another writer created it between our two calls: its secret is as good as ours.
      if (googleErrorFacts(err).grpcCode !== GrpcCode.ALREADY_EXISTS) {
        throw this.#mapError(err, id, CREATE);
      }
    }
    try {
      await this.#addVersion(id, payload);
    } catch (err) {
      throw this.#mapError(err, id, ADD_VERSION);
    }
  }

  async delete(tenant: string | null, name: string): Promise<boolean> {
    const id = this.#secretId(tenant, name);
    await this.#refuseShadowed(tenant, name, 'delete');
    // All versions go with the secret. If a retried attempt follows one that did land, it sees
    // NOT_FOUND and reports false: the secret is gone either way.
    try {
      await this.#call(() => this.#client.deleteSecret({ name: this.#secretName(id) }, this.#options()));
      return true;
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return false;
      throw this.#mapError(err, id, DELETE);
    }
  }

  /** Files and Secret Manager together. For null: every id in the project without the tenant separator. */
  async list(tenant: string | null): Promise<string[]> {
    if (tenant !== null) assertTenantId(tenant);
    const names = new Set(await this.#files.list(tenant));
    const prefix = tenant === null ? undefined : `${tenant}${TENANT_SEPARATOR}`;
    for (const id of await this.#allSecretIds()) {
      let name: string | undefined;
      if (prefix === undefined) name = id.includes(TENANT_SEPARATOR) ? undefined : id;
      else if (id.startsWith(prefix)) name = id.slice(prefix.length);
      if (name !== undefined && NAME_PATTERN.test(name)) names.add(name);
    }
    return [...names].sort();
  }

  async #allSecretIds(): Promise<string[]> {
    const ids: string[] = [];
    let pageToken = '';
    try {
      do {
        const [secrets, , response] = await this.#call(() =>
          this.#client.listSecrets(
            { parent: `projects/${this.#project}`, pageSize: PAGE_SIZE, pageToken },
            { ...this.#options(), autoPaginate: false },
          ),
        );
        // Names come back with the project number, whatever form the request used.
        for (const secret of secrets) ids.push(String(secret.name).split('/').at(-1)!);
        pageToken = response?.nextPageToken ?? '';
      } while (pageToken);
    } catch (err) {
      throw this.#mapError(err, undefined, LIST);
    }
    return ids;
  }

  async #addVersion(id: string, payload: Buffer): Promise<void> {
    await this.#call(() =>
      this.#client.addSecretVersion(
        { parent: this.#secretName(id), payload: { data: payload, dataCrc32c: crc32c(payload) } },
        this.#options(),
      ),
    );
  }

  /** A file wins on read, so writing or deleting only the Secret Manager copy would change nothing a reader sees. */
  async #refuseShadowed(tenant: string | null, name: string, verb: 'write' | 'delete'): Promise<void> {
    if ((await this.#files.get(tenant, name)) === undefined) return;
    const label = tenant === null ? `system secret ${name}` : `secret ${name} of tenant ${tenant}`;
    throw conflictError(`${label} is a file in ${this.#files.describe}, which takes precedence over Secret Manager`, {
      suggestion:
        verb === 'write'
          ? 'edit the file instead, or remove it to keep the secret in Secret Manager only'
          : 'remove the file (and run this again to delete the Secret Manager copy too)',
      data: { tenant, name, shadowedBy: 'file' },
    });
  }

  #secretId(tenant: string | null, name: string): string {
    assertName('secret name', name);
    if (tenant === null) {
      if (name.includes(TENANT_SEPARATOR)) {
        throw validationError(`system secret name ${JSON.stringify(name)} contains "${TENANT_SEPARATOR}"`, {
          suggestion: `"${TENANT_SEPARATOR}" separates tenant and name in Secret Manager ids; choose a name without it`,
        });
      }
      return name;
    }
    return `${assertTenantId(tenant)}${TENANT_SEPARATOR}${name}`;
  }

  #secretName(id: string): string {
    return `projects/${this.#project}/secrets/${id}`;
  }

  #options() {
    return { retry: null, timeout: this.#timeoutMs };
  }

  #call<T>(call: () => Promise<T>): Promise<T> {
    return retryTransient(call, this.#retry);
  }

  /** `id` undefined means the call was about the project's secrets as a whole (list). */
  #mapError(err: unknown, id: string | undefined, needs: Needs): ConvergenceError {
    const what = id === undefined ? `the secrets of project ${this.#project}` : `secret ${id} in Secret Manager (project ${this.#project})`;
    if (err instanceof IntegrityError) {
      return new ConvergenceError('SECRET_INTEGRITY', ExitCode.unexpected, `${what} failed an integrity check: ${err.message}`, {
        cause: err,
        suggestion: 'retry; repeated failures point at a network device altering traffic',
      });
    }
    return toConvergenceError(err, {
      what,
      ...needs,
      resource: id === undefined ? `projects/${this.#project}` : this.#secretName(id),
      ...(this.#principal ? { principal: this.#principal } : {}),
      api: 'secretmanager.googleapis.com',
      project: this.#project,
    });
  }
}
