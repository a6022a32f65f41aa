/**
 * google.longrunning.Operations as the Cloud Run fake serves it beside Run, through the official
 * clients and a raw gRPC client for WaitOperation.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceDefinition, protosJsonOf } from './protos.ts';
import { fails, fake, run, services, useRunFake } from './run-harness.ts';
import { status } from './status.ts';

useRunFake();

// The operations methods are typed with protobuf classes; gax sends a plain object just the same.
const operationRequest = <T>(fields: Record<string, unknown>) => fields as T;

describe('google.longrunning.Operations', () => {
  it('lists, gets and deletes operations; WaitOperation drives one to its end', async () => {
    const location = 'projects/ops-project/locations/us-east1';
    run.operations.setPolls(5);
    const [operation] = await services.createService({
      parent: location,
      serviceId: 'ops',
      service: { template: { containers: [{ image: 'i' }] } },
    });
    assert.equal(operation.done, false);

    const listed = [];
    for await (const item of services.listOperationsAsync(operationRequest({ name: location }))) listed.push(item.name);
    assert.deepEqual(listed, [operation.name]);

    const definition = serviceDefinition(protosJsonOf('google-gax', 'build/protos/operations.json'), 'google.longrunning.Operations');
    const Client = grpc.makeGenericClientConstructor(definition, 'Operations');
    const raw = new Client(fake.address, grpc.credentials.createInsecure()) as unknown as {
      waitOperation(
        request: object,
        callback: (err: Error | null, value?: { done: boolean; response?: { type_url: string } }) => void,
      ): void;
      close(): void;
    };
    const waited = await new Promise<{ done: boolean; response?: { type_url: string } }>((resolve, reject) =>
      raw.waitOperation({ name: operation.name }, (err, value) => (err ? reject(err) : resolve(value!))),
    );
    raw.close();
    assert.equal(waited.done, true);
    assert.equal(waited.response?.type_url, 'type.googleapis.com/google.cloud.run.v2.Service');

    const [fetched] = await services.getOperation(operationRequest({ name: String(operation.name) }));
    assert.equal(fetched.done, true);
    await services.deleteOperation(operationRequest({ name: String(operation.name) }));
    await assert.rejects(services.getOperation(operationRequest({ name: String(operation.name) })), fails(status.NOT_FOUND));
  });
});
