/** The Artifact Registry adapter against the Artifact Registry fake, through the official client. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GcpArtifactRegistry } from '../../src/backends/artifact-registry/gcp.ts';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { isConvergenceError } from '../../src/lib/errors.ts';
import { ARTIFACT_REGISTRY_PERMISSIONS, ArtifactRegistryFake } from '../fakes/grpc/artifact-registry.ts';
import { OperationsFake } from '../fakes/grpc/operations.ts';
import { startGrpcFake, type GrpcFake } from '../fakes/grpc/server.ts';

const PROJECT = 'registry-project';
const LOCATION = `projects/${PROJECT}/locations/us-central1`;
const TARGET = { project: PROJECT, location: 'US', region: 'us-central1' };

let grpc: GrpcFake;
let operations: OperationsFake;
let fake: ArtifactRegistryFake;
let registry: GcpArtifactRegistry;
let counter = 0;

const freshName = () => `${LOCATION}/repositories/images-${++counter}`;

async function expectError(
  promise: Promise<unknown>,
): Promise<Error & { exitCode: number; suggestion?: string; data?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
    return err as never;
  }
  assert.fail('expected a failure, it succeeded');
}

before(async () => {
  operations = new OperationsFake();
  fake = new ArtifactRegistryFake({ operations });
  grpc = await startGrpcFake({ artifactRegistry: fake, operations });
  registry = new GcpArtifactRegistry(createGcpClients(TARGET, { [ENDPOINT_VARS.grpc]: grpc.address }), { timeoutMs: 10_000 });
});

after(async () => {
  await registry.close();
  await grpc.stop();
});

beforeEach(() => {
  grpc.clearFaults();
  fake.grant(undefined, Object.values(ARTIFACT_REGISTRY_PERMISSIONS));
  operations.setPolls(0);
});

describe('GcpArtifactRegistry', () => {
  it('a missing repository is undefined; created, it is a Docker repository with its description', async () => {
    const name = freshName();
    assert.equal(await registry.getRepository(name), undefined);
    const created = await registry.createDockerRepository(name, 'images of convergence');
    assert.deepEqual(created, { name, format: 'DOCKER', description: 'images of convergence' });
    assert.deepEqual(await registry.getRepository(name), created);
    assert.deepEqual(fake.repository(name), { format: 'DOCKER', description: 'images of convergence' });
  });

  it('waits for the create operation, polling it until it is done', async () => {
    operations.setPolls(2);
    const name = freshName();
    await registry.createDockerRepository(name, 'polled');
    const operation = operations.names().at(-1)!;
    assert.match(operation, new RegExp(`^${LOCATION}/operations/`));
    assert.ok(operations.pollCount(operation) >= 2);
    assert.equal((await registry.getRepository(name))?.format, 'DOCKER');
  });

  it('creating one that exists (ALREADY_EXISTS) returns it as it is, of whatever format', async () => {
    const name = freshName();
    fake.addRepository(name, 'MAVEN', 'java things');
    const found = await registry.createDockerRepository(name, 'images');
    assert.deepEqual(found, { name, format: 'MAVEN', description: 'java things' });
  });

  it('a caller who may not create repositories gets exit 7 naming artifactregistry.repositories.create and roles/artifactregistry.admin', async () => {
    fake.grant(undefined, [ARTIFACT_REGISTRY_PERMISSIONS.get]);
    const name = freshName();
    const err = await expectError(registry.createDockerRepository(name, 'images'));
    assert.equal(err.exitCode, 7);
    assert.match(err.message, /artifactregistry\.repositories\.create/);
    assert.match(err.suggestion ?? '', /roles\/artifactregistry\.admin/);
    assert.equal(err.data?.permission, 'artifactregistry.repositories.create');
    assert.equal(fake.repository(name), undefined);
  });

  it('a caller who may not read repositories gets exit 7 naming artifactregistry.repositories.get', async () => {
    fake.grant(undefined, []);
    const err = await expectError(registry.getRepository(freshName()));
    assert.equal(err.exitCode, 7);
    assert.match(err.suggestion ?? '', /artifactregistry\.repositories\.get/);
  });

  it('a name that is not a repository name is a usage error before any call', async () => {
    const calls = grpc.calls().length;
    const err = await expectError(registry.getRepository('projects/p/repositories/r'));
    assert.equal(err.exitCode, 2);
    assert.equal(grpc.calls().length, calls);
  });

  it('an invalid repository id is refused by Google with exit 2', async () => {
    const err = await expectError(registry.createDockerRepository(`${LOCATION}/repositories/Bad_Name`, 'images'));
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /Invalid repository id/);
  });

  it('retries a transient read failure', async () => {
    const name = freshName();
    grpc.inject({ method: 'GetRepository', code: 14, message: 'unavailable' });
    assert.equal(await registry.getRepository(name), undefined);
  });
});
