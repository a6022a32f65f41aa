/**
 * google.devtools.artifactregistry.v1.ArtifactRegistry repositories. CreateRepository answers with
 * an operation (served by the shared OperationsFake) that creates the repository when it completes;
 * the rules the adapter has to cope with: ALREADY_EXISTS for a taken name, NOT_FOUND for a missing
 * one, the caller's artifactregistry.repositories.* permissions in Google's wording, and the
 * repository id rules.
 */
import { currentCaller } from './caller.ts';
import { packAny, timestamp, type OperationsFake } from './operations.ts';
import { protosJsonOf } from './protos.ts';
import type { FakeService, ServiceBinding } from './server.ts';
import { FakeStatus, status } from './status.ts';

export const ARTIFACT_REGISTRY_PERMISSIONS = {
  get: 'artifactregistry.repositories.get',
  create: 'artifactregistry.repositories.create',
} as const;

const V1 = 'google.devtools.artifactregistry.v1';
const LOCATION = /^projects\/[^/]+\/locations\/[^/]+$/;
const REPOSITORY_NAME = /^(projects\/[^/]+\/locations\/[^/]+)\/repositories\/([^/]+)$/;
/** Repository ids: lowercase letters, digits and hyphens, starting with a letter, at most 63 characters. */
const REPOSITORY_ID = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface StoredRepository {
  name: string;
  format: string;
  description: string;
  created: Date;
}

export class ArtifactRegistryFake implements FakeService {
  readonly #repositories = new Map<string, StoredRepository>();
  readonly #operations: OperationsFake;
  readonly #protos = protosJsonOf('@google-cloud/artifact-registry');
  /** Permissions per caller (undefined: the operator); a caller not listed holds every one. */
  readonly #granted = new Map<string | undefined, Set<string>>();

  constructor(options: { operations: OperationsFake }) {
    this.#operations = options.operations;
  }

  /** A repository that exists before the test, e.g. one of another format under the wanted name. */
  addRepository(name: string, format = 'DOCKER', description = ''): void {
    if (!REPOSITORY_NAME.test(name)) throw new Error(`not a repository name: ${name}`);
    this.#repositories.set(name, { name, format, description, created: new Date() });
  }

  repository(name: string): { format: string; description: string } | undefined {
    const found = this.#repositories.get(name);
    return found && { format: found.format, description: found.description };
  }

  /** Replaces the permissions a caller (undefined: the operator) holds in every project. */
  grant(caller: string | undefined, permissions: readonly string[]): void {
    this.#granted.set(caller, new Set(permissions));
  }

  bindings(): ServiceBinding[] {
    return [
      {
        protos: this.#protos,
        service: `${V1}.ArtifactRegistry`,
        handlers: {
          GetRepository: (request) => {
            const name = String(request.name);
            if (!REPOSITORY_NAME.test(name)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource name: ${name}`);
            this.#require(ARTIFACT_REGISTRY_PERMISSIONS.get, name);
            const found = this.#repositories.get(name);
            if (!found) throw new FakeStatus(status.NOT_FOUND, `Requested entity was not found.`);
            return this.#describe(found);
          },
          CreateRepository: (request) => this.#create(request),
        },
      },
    ];
  }

  #create(request: Record<string, unknown>) {
    const parent = String(request.parent);
    if (!LOCATION.test(parent)) throw new FakeStatus(status.INVALID_ARGUMENT, `Invalid resource field value in the request: ${parent}`);
    this.#require(ARTIFACT_REGISTRY_PERMISSIONS.create, parent);
    const id = String(request.repositoryId ?? '');
    if (!REPOSITORY_ID.test(id)) {
      throw new FakeStatus(
        status.INVALID_ARGUMENT,
        `Invalid repository id "${id}": it must start with a lowercase letter, contain only lowercase letters, numbers and hyphens, and be at most 63 characters.`,
      );
    }
    const repository = (request.repository ?? {}) as Record<string, unknown>;
    const format = String(repository.format ?? 'FORMAT_UNSPECIFIED');
    if (format === 'FORMAT_UNSPECIFIED') throw new FakeStatus(status.INVALID_ARGUMENT, 'Repository format must be specified.');
    const name = `${parent}/repositories/${id}`;
    if (this.#repositories.has(name)) throw new FakeStatus(status.ALREADY_EXISTS, 'the repository already exists');
    const wanted: StoredRepository = { name, format, description: String(repository.description ?? ''), created: new Date() };
    return this.#operations.start(parent, {
      metadata: () => packAny(this.#protos, `${V1}.OperationMetadata`, {}),
      complete: () => {
        // Two creates racing: the one whose operation lands second fails as Google's would.
        if (this.#repositories.has(name)) throw new FakeStatus(status.ALREADY_EXISTS, 'the repository already exists');
        this.#repositories.set(name, wanted);
        return packAny(this.#protos, `${V1}.Repository`, this.#describe(wanted));
      },
    });
  }

  #require(permission: string, resource: string): void {
    const granted = this.#granted.get(currentCaller());
    if (granted && !granted.has(permission)) {
      throw new FakeStatus(
        status.PERMISSION_DENIED,
        `Permission '${permission}' denied on resource '//artifactregistry.googleapis.com/${resource}' (or it may not exist).`,
        { reason: 'IAM_PERMISSION_DENIED', domain: 'artifactregistry.googleapis.com', metadata: { permission, resource } },
      );
    }
  }

  #describe(repository: StoredRepository) {
    return {
      name: repository.name,
      format: repository.format,
      description: repository.description,
      mode: 'STANDARD_REPOSITORY',
      createTime: timestamp(repository.created),
      updateTime: timestamp(repository.created),
    };
  }
}
