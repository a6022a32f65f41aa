/**
 * google.cloud.secretmanager.v1.SecretManagerService as the adapter meets it: secrets with
 * versions and the `latest` alias, pagination, payload CRC32C, permissions, and the service's
 * status codes and messages. Like the real service it answers with the project NUMBER in every
 * resource name, whatever form the request used.
 */
import { crc32c } from '@aws-crypto/crc32c';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const SECRET_MANAGER_PERMISSIONS = [
  'secretmanager.secrets.create',
  'secretmanager.secrets.get',
  'secretmanager.secrets.list',
  'secretmanager.secrets.delete',
  'secretmanager.versions.add',
  'secretmanager.versions.access',
  'secretmanager.versions.get',
  'secretmanager.versions.list',
  'secretmanager.versions.enable',
  'secretmanager.versions.disable',
  'secretmanager.versions.destroy',
] as const;

type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED';

interface Version {
  number: number;
  state: VersionState;
  data: Buffer | undefined;
  createTime: Date;
  destroyTime: Date | undefined;
  clientChecksum: boolean;
}

interface Secret {
  id: string;
  projectNumber: string;
  labels: Record<string, string>;
  replication: unknown;
  createTime: Date;
  etag: number;
  versions: Version[];
}

const SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;
const MAX_PAYLOAD = 64 * 1024;
const MAX_PAGE = 25_000;

const timestamp = (date: Date | undefined) =>
  date ? { seconds: String(Math.floor(date.getTime() / 1000)), nanos: (date.getTime() % 1000) * 1_000_000 } : null;

export class SecretManagerFake implements FakeService {
  /** Permissions the caller holds, project-wide. Tests remove some to see PERMISSION_DENIED. */
  granted = new Set<string>(SECRET_MANAGER_PERMISSIONS);
  readonly #numbers = new Map<string, string>();
  readonly #secrets = new Map<string, Secret>();
  readonly #maxPageSize: number;

  /**
   * `projects` maps project ids to numbers (others get a stable made-up number); `maxPageSize`
   * caps pages below what the client asks for, as the real service may, to exercise paging.
   */
  constructor(options: { projects?: Record<string, string>; maxPageSize?: number } = {}) {
    for (const [id, number] of Object.entries(options.projects ?? {})) this.#numbers.set(id, number);
    this.#maxPageSize = options.maxPageSize ?? MAX_PAGE;
  }

  /** The value of a version as stored, for tests that look behind the client (undefined once destroyed). */
  peek(project: string, secretId: string, version: number | 'latest' = 'latest'): string | undefined {
    const secret = this.#secrets.get(`${this.#number(project)}/${secretId}`);
    const found = version === 'latest' ? secret?.versions.at(-1) : secret?.versions.find((v) => v.number === version);
    return found?.data?.toString('utf8');
  }

  secretIds(project: string): string[] {
    const number = this.#number(project);
    return [...this.#secrets.values()].filter((secret) => secret.projectNumber === number).map((secret) => secret.id);
  }

  /** Metadata of a secret as stored, for assertions (never the values). */
  inspect(
    project: string,
    secretId: string,
  ): { labels: Record<string, string>; replication: unknown; versions: VersionState[] } | undefined {
    const secret = this.#secrets.get(`${this.#number(project)}/${secretId}`);
    return secret && { labels: secret.labels, replication: secret.replication, versions: secret.versions.map((version) => version.state) };
  }

  iamPermissions(resource: string): ReadonlySet<string> | undefined {
    const match = /^projects\/([^/]+)\/secrets\/([^/]+)$/.exec(resource);
    if (!match) return undefined;
    this.#secret(resource);
    return this.granted;
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: protosJsonOf('@google-cloud/secret-manager'),
        service: 'google.cloud.secretmanager.v1.SecretManagerService',
        handlers: {
          CreateSecret: (request) => this.#create(request),
          GetSecret: (request) => {
            this.#require('secretmanager.secrets.get', String(request.name));
            return this.#describe(this.#secret(String(request.name)));
          },
          DeleteSecret: (request) => {
            const name = String(request.name);
            this.#require('secretmanager.secrets.delete', name);
            const secret = this.#secret(name);
            if (request.etag && request.etag !== `"${secret.etag}"`) {
              throw new FakeStatus(
                status.ABORTED,
                `The etag provided in the request does not match the current etag of Secret [${this.#name(secret)}].`,
              );
            }
            this.#secrets.delete(`${secret.projectNumber}/${secret.id}`);
            return {};
          },
          ListSecrets: (request) => {
            const parent = String(request.parent);
            this.#require('secretmanager.secrets.list', parent);
            if (request.filter) throw new FakeStatus(status.UNIMPLEMENTED, 'the fake does not evaluate list filters');
            const number = this.#project(parent);
            const all = [...this.#secrets.values()]
              .filter((secret) => secret.projectNumber === number)
              .sort((a, b) => a.id.localeCompare(b.id));
            const { items, nextPageToken } = this.#page(all, request);
            return { secrets: items.map((secret) => this.#describe(secret)), nextPageToken, totalSize: all.length };
          },
          AddSecretVersion: (request) => this.#addVersion(request),
          AccessSecretVersion: (request) => {
            const name = String(request.name);
            this.#require('secretmanager.versions.access', name);
            const { secret, version } = this.#version(name, 'access');
            if (version.state !== 'ENABLED') {
              throw new FakeStatus(
                status.FAILED_PRECONDITION,
                `Secret Version [${this.#name(secret)}/versions/${version.number}] is in ${version.state} state.`,
              );
            }
            return {
              name: `${this.#name(secret)}/versions/${version.number}`,
              payload: { data: version.data, dataCrc32c: String(crc32c(version.data!)) },
            };
          },
          GetSecretVersion: (request) => {
            this.#require('secretmanager.versions.get', String(request.name));
            const { secret, version } = this.#version(String(request.name), 'get');
            return this.#describeVersion(secret, version);
          },
          ListSecretVersions: (request) => {
            const parent = String(request.parent);
            this.#require('secretmanager.versions.list', parent);
            if (request.filter) throw new FakeStatus(status.UNIMPLEMENTED, 'the fake does not evaluate list filters');
            const secret = this.#secret(parent);
            const newestFirst = [...secret.versions].reverse();
            const { items, nextPageToken } = this.#page(newestFirst, request);
            return {
              versions: items.map((version) => this.#describeVersion(secret, version)),
              nextPageToken,
              totalSize: newestFirst.length,
            };
          },
          DisableSecretVersion: (request) => this.#transition(request, 'secretmanager.versions.disable', 'DISABLED'),
          EnableSecretVersion: (request) => this.#transition(request, 'secretmanager.versions.enable', 'ENABLED'),
          DestroySecretVersion: (request) => this.#transition(request, 'secretmanager.versions.destroy', 'DESTROYED'),
        },
      },
    ];
  }

  #create(request: Record<string, unknown>) {
    const parent = String(request.parent);
    const secretId = String(request.secretId);
    this.#require('secretmanager.secrets.create', parent);
    const number = this.#project(parent);
    if (!SECRET_ID.test(secretId)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        'Secret id contains invalid characters or is too long. The secret id must match the pattern [a-zA-Z0-9_-]{1,255}.',
      );
    }
    const body = (request.secret ?? {}) as Record<string, unknown>;
    const replication = body.replication as Record<string, unknown> | null;
    if (!replication || (!replication.automatic && !replication.userManaged)) {
      throw new FakeStatus(status.INVALID_ARGUMENT, 'Secret.replication must be set.');
    }
    const key = `${number}/${secretId}`;
    if (this.#secrets.has(key))
      throw new FakeStatus(status.ALREADY_EXISTS, `Secret [projects/${number}/secrets/${secretId}] already exists.`);
    const secret: Secret = {
      id: secretId,
      projectNumber: number,
      labels: { ...((body.labels as Record<string, string>) ?? {}) },
      replication,
      createTime: new Date(),
      etag: 1,
      versions: [],
    };
    this.#secrets.set(key, secret);
    return this.#describe(secret);
  }

  #addVersion(request: Record<string, unknown>) {
    const parent = String(request.parent);
    this.#require('secretmanager.versions.add', parent);
    const secret = this.#secret(parent);
    const payload = (request.payload ?? {}) as { data?: Buffer; dataCrc32c?: string | null };
    const data = payload.data ?? Buffer.alloc(0);
    if (data.length > MAX_PAYLOAD) throw new FakeStatus(status.INVALID_ARGUMENT, 'Secret Payload cannot be larger than 64KiB.');
    const sent = payload.dataCrc32c !== undefined && payload.dataCrc32c !== null;
    if (sent && Number(payload.dataCrc32c) !== crc32c(data)) {
      throw new FakeStatus(status.INVALID_ARGUMENT, 'Checksum mismatch: the data_crc32c in the request does not match the payload data.');
    }
    const version: Version = {
      number: (secret.versions.at(-1)?.number ?? 0) + 1,
      state: 'ENABLED',
      data: Buffer.from(data),
      createTime: new Date(),
      destroyTime: undefined,
      clientChecksum: sent,
    };
    secret.versions.push(version);
    secret.etag += 1;
    return this.#describeVersion(secret, version);
  }

  #transition(request: Record<string, unknown>, permission: string, to: VersionState) {
    const name = String(request.name);
    this.#require(permission, name);
    const { secret, version } = this.#version(name, 'get');
    if (version.state === 'DESTROYED') {
      throw new FakeStatus(
        status.FAILED_PRECONDITION,
        `Secret Version [${this.#name(secret)}/versions/${version.number}] is in DESTROYED state.`,
      );
    }
    version.state = to;
    if (to === 'DESTROYED') {
      version.data = undefined;
      version.destroyTime = new Date();
    }
    return this.#describeVersion(secret, version);
  }

  #page<T>(all: T[], request: Record<string, unknown>): { items: T[]; nextPageToken: string } {
    const requested = Number(request.pageSize) || MAX_PAGE;
    if (requested < 0 || requested > MAX_PAGE)
      throw new FakeStatus(status.INVALID_ARGUMENT, `page_size must be between 1 and ${MAX_PAGE}.`);
    const size = Math.min(requested, this.#maxPageSize);
    let offset = 0;
    if (request.pageToken) {
      offset = Number(
        Buffer.from(String(request.pageToken), 'base64url')
          .toString('utf8')
          .replace(/^offset:/, ''),
      );
      if (!Number.isInteger(offset) || offset < 0) throw new FakeStatus(status.INVALID_ARGUMENT, 'Invalid page token.');
    }
    const items = all.slice(offset, offset + size);
    const next = offset + size < all.length ? Buffer.from(`offset:${offset + size}`).toString('base64url') : '';
    return { items, nextPageToken: next };
  }

  #require(permission: string, resource: string): void {
    if (!this.granted.has(permission)) {
      throw new FakeStatus(status.PERMISSION_DENIED, `Permission '${permission}' denied for resource '${resource}' (or it may not exist).`);
    }
  }

  #number(project: string): string {
    if (/^\d+$/.test(project)) return project;
    let number = this.#numbers.get(project);
    if (!number) {
      number = String(100_000_000_000 + crc32c(Buffer.from(project)));
      this.#numbers.set(project, number);
    }
    return number;
  }

  #project(parent: string): string {
    const match = /^projects\/([^/]+)$/.exec(parent);
    if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${parent}`);
    return this.#number(match[1]!);
  }

  #secret(name: string): Secret {
    const match = /^projects\/([^/]+)\/secrets\/([^/]+)$/.exec(name);
    if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${name}`);
    const number = this.#number(match[1]!);
    const secret = this.#secrets.get(`${number}/${match[2]}`);
    if (!secret) throw new FakeStatus(status.NOT_FOUND, `Secret [projects/${number}/secrets/${match[2]}] not found.`);
    return secret;
  }

  #version(name: string, purpose: 'access' | 'get'): { secret: Secret; version: Version } {
    const match = /^(projects\/[^/]+\/secrets\/[^/]+)\/versions\/(latest|\d+)$/.exec(name);
    if (!match) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${name}`);
    let secret: Secret;
    try {
      secret = this.#secret(match[1]!);
    } catch (err) {
      if (purpose === 'access' && err instanceof FakeStatus && err.code === status.NOT_FOUND) {
        throw new FakeStatus(status.NOT_FOUND, `${err.message.replace(/ not found\.$/, '')} not found or has no versions.`);
      }
      throw err;
    }
    const version = match[2] === 'latest' ? secret.versions.at(-1) : secret.versions.find((v) => v.number === Number(match[2]));
    if (!version) {
      throw new FakeStatus(status.NOT_FOUND, `Secret Version [${this.#name(secret)}/versions/${match[2]}] not found.`);
    }
    return { secret, version };
  }

  #name(secret: Secret): string {
    return `projects/${secret.projectNumber}/secrets/${secret.id}`;
  }

  #describe(secret: Secret) {
    return {
      name: this.#name(secret),
      replication: secret.replication,
      createTime: timestamp(secret.createTime),
      labels: secret.labels,
      etag: `"${secret.etag}"`,
    };
  }

  #describeVersion(secret: Secret, version: Version) {
    return {
      name: `${this.#name(secret)}/versions/${version.number}`,
      createTime: timestamp(version.createTime),
      destroyTime: timestamp(version.destroyTime),
      state: version.state,
      etag: `"${secret.etag}"`,
      clientSpecifiedPayloadChecksum: version.clientChecksum,
    };
  }
}
