import { protos } from '@google-cloud/artifact-registry';
import type { GcpClients } from '../gcp/clients.ts';
import { GrpcCode, googleErrorFacts, toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import { usageError } from '../../lib/errors.ts';
import type { ArtifactRegistry, Repository } from './port.ts';

type IRepository = protos.google.devtools.artifactregistry.v1.IRepository;

const ARTIFACT_REGISTRY_API = 'artifactregistry.googleapis.com';
const REPOSITORY_NAME = /^(projects\/([^/]+)\/locations\/[^/]+)\/repositories\/([^/]+)$/;

function parts(name: string): { parent: string; project: string; repositoryId: string } {
  const match = REPOSITORY_NAME.exec(name);
  if (!match) throw usageError(`${name} is not an Artifact Registry repository name (projects/P/locations/L/repositories/R)`);
  return { parent: match[1]!, project: match[2]!, repositoryId: match[3]! };
}

const FORMATS = protos.google.devtools.artifactregistry.v1.Repository.Format;

/** The format's name: gax decodes a call's enums as names but an operation's result as numbers. */
const formatName = (format: IRepository['format']): string =>
  typeof format === 'number' ? (FORMATS[format] ?? String(format)) : (format ?? 'FORMAT_UNSPECIFIED');

const fromApi = (repository: IRepository): Repository => ({
  name: String(repository.name ?? ''),
  format: formatName(repository.format),
  description: repository.description ?? '',
});

export class GcpArtifactRegistry implements ArtifactRegistry {
  readonly #clients: GcpClients;
  readonly #timeoutMs: number;

  constructor(clients: GcpClients, options: { timeoutMs?: number } = {}) {
    this.#clients = clients;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  async getRepository(name: string): Promise<Repository | undefined> {
    const { project } = parts(name);
    const client = await this.#clients.artifactRegistry();
    try {
      const [repository] = await retryTransient(() => client.getRepository({ name }, this.#call()));
      return fromApi(repository);
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND) return undefined;
      throw this.#error(
        err,
        `Artifact Registry repository ${name}`,
        project,
        'artifactregistry.repositories.get',
        'roles/artifactregistry.reader',
      );
    }
  }

  async createDockerRepository(name: string, description: string): Promise<Repository> {
    const { parent, project, repositoryId } = parts(name);
    const client = await this.#clients.artifactRegistry();
    try {
      // Not retried: a create that reached Google before the connection dropped would answer the
      // retry with ALREADY_EXISTS, which the catch below turns into the repository anyway.
      const [operation] = await client.createRepository(
        { parent, repositoryId, repository: { format: 'DOCKER', description } },
        this.#call(),
      );
      const [repository] = await operation.promise();
      return fromApi(repository);
    } catch (err) {
      if (googleErrorFacts(err).grpcCode === GrpcCode.ALREADY_EXISTS) {
        const existing = await this.getRepository(name);
        if (existing) return existing;
      }
      throw this.#error(
        err,
        `creating Artifact Registry repository ${name}`,
        project,
        'artifactregistry.repositories.create',
        'roles/artifactregistry.admin',
      );
    }
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  #call() {
    return { retry: null, timeout: this.#timeoutMs };
  }

  #error(err: unknown, what: string, project: string, permission: string, role: string) {
    return toConvergenceError(err, {
      what,
      permission,
      role,
      resource: `project ${project}`,
      grantCommand: `gcloud projects add-iam-policy-binding ${project} --member=user:YOU@example.com --role=${role}`,
      api: ARTIFACT_REGISTRY_API,
      project,
    });
  }
}
