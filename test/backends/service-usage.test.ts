/** The Service Usage adapter against the Service Usage fake, through the official client. */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { GcpServiceUsage } from '../../src/backends/service-usage/gcp.ts';
import { isConvergenceError } from '../../src/lib/errors.ts';
import { OperationsFake } from '../fakes/grpc/operations.ts';
import { startGrpcFake, type GrpcFake } from '../fakes/grpc/server.ts';
import { SERVICE_USAGE_PERMISSIONS, ServiceUsageFake } from '../fakes/grpc/service-usage.ts';

const PROJECT = 'usage-project';
const TARGET = { project: PROJECT, location: 'US', region: 'us-central1' };
const APIS = ['run.googleapis.com', 'bigquery.googleapis.com', 'cloudkms.googleapis.com'];

let grpc: GrpcFake;
let operations: OperationsFake;
let fake: ServiceUsageFake;
let projectCounter = 0;

/** A fresh project per test on the one server, so enabled services never leak between tests. */
function adapter(project = PROJECT): GcpServiceUsage {
  return new GcpServiceUsage(createGcpClients({ ...TARGET, project }, { [ENDPOINT_VARS.grpc]: grpc.address }), { timeoutMs: 10_000 });
}

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
  const projects: Record<string, string> = { [PROJECT]: '555000111222' };
  for (let n = 1; n <= 20; n += 1) projects[`${PROJECT}-${n}`] = String(555000111222 + n);
  fake = new ServiceUsageFake({ projects, operations });
  grpc = await startGrpcFake({ serviceUsage: fake, operations });
});

after(async () => {
  await grpc.stop();
});

beforeEach(() => {
  grpc.clearFaults();
  fake.grant(undefined, Object.values(SERVICE_USAGE_PERMISSIONS));
  operations.setPolls(0);
});

const freshProject = () => `${PROJECT}-${++projectCounter}`;

describe('GcpServiceUsage', () => {
  it('lists the disabled services of a new project, and none once they are enabled', async () => {
    const project = freshProject();
    const usage = adapter(project);
    try {
      assert.deepEqual(await usage.disabled(APIS), APIS);
      fake.enableNow(project, ['bigquery.googleapis.com']);
      assert.deepEqual(await usage.disabled(APIS), ['run.googleapis.com', 'cloudkms.googleapis.com']);
      await usage.enable(['run.googleapis.com', 'cloudkms.googleapis.com']);
      assert.deepEqual(await usage.disabled(APIS), []);
      assert.ok(APIS.every((api) => fake.isEnabled(project, api)));
    } finally {
      await usage.close();
    }
  });

  it('waits for the enable operation, polling it until Google reports it done', async () => {
    const project = freshProject();
    operations.setPolls(2);
    const usage = adapter(project);
    try {
      await usage.enable(['run.googleapis.com']);
      assert.ok(fake.isEnabled(project, 'run.googleapis.com'));
      const name = operations.names().at(-1)!;
      assert.match(name, /^operations\/[^/]+$/);
      assert.ok(operations.pollCount(name) >= 2, `polled ${operations.pollCount(name)} times`);
    } finally {
      await usage.close();
    }
  });

  it('enables more than 20 services in batches of at most 20, and asks about them in batches of at most 30', async () => {
    const project = freshProject();
    const many = [
      ...APIS,
      ...['cloudbuild', 'artifactregistry', 'secretmanager', 'cloudscheduler', 'storage', 'logging', 'monitoring', 'pubsub'],
      ...['iam', 'iamcredentials', 'cloudresourcemanager', 'serviceusage', 'compute'],
    ].map((api) => (api.endsWith('.googleapis.com') ? api : `${api}.googleapis.com`));
    const repeated = [...many, ...many];
    const usage = adapter(project);
    const before = grpc.calls('BatchEnableServices').length;
    try {
      await usage.enable(repeated);
      const batches = grpc.calls('BatchEnableServices').slice(before);
      assert.deepEqual(
        batches.map((call) => (call.request.serviceIds as string[]).length),
        [20, repeated.length - 20],
      );
      assert.deepEqual(await usage.disabled(repeated), []);
      assert.ok(grpc.calls('BatchGetServices').every((call) => (call.request.names as string[]).length <= 30));
    } finally {
      await usage.close();
    }
  });

  it('is idempotent: enabling enabled services changes nothing and succeeds', async () => {
    const project = freshProject();
    fake.enableNow(project, APIS);
    const usage = adapter(project);
    try {
      await usage.enable(APIS);
      assert.deepEqual(await usage.disabled(APIS), []);
    } finally {
      await usage.close();
    }
  });

  it('a caller who may not enable services gets exit 7 naming serviceusage.services.enable and a role that has it', async () => {
    const project = freshProject();
    fake.grant(undefined, [SERVICE_USAGE_PERMISSIONS.get, SERVICE_USAGE_PERMISSIONS.list]);
    const usage = adapter(project);
    try {
      const err = await expectError(usage.enable(['run.googleapis.com']));
      assert.equal(err.exitCode, 7);
      assert.match(err.message, /Permission denied to enable service \[run\.googleapis\.com\]/);
      assert.match(err.suggestion ?? '', /roles\/serviceusage\.serviceUsageAdmin/);
      assert.match(err.suggestion ?? '', /serviceusage\.services\.enable/);
      assert.equal(err.data?.permission, 'serviceusage.services.enable');
      assert.equal(fake.isEnabled(project, 'run.googleapis.com'), false);
    } finally {
      await usage.close();
    }
  });

  it('a caller who may not read services gets exit 7 naming serviceusage.services.get', async () => {
    fake.grant(undefined, []);
    const usage = adapter(freshProject());
    try {
      const err = await expectError(usage.disabled(APIS));
      assert.equal(err.exitCode, 7);
      assert.match(err.suggestion ?? '', /roles\/serviceusage\.serviceUsageViewer.*serviceusage\.services\.get/);
    } finally {
      await usage.close();
    }
  });

  it('a service name Google does not know is refused as "Not found or permission denied", exit 7', async () => {
    const usage = adapter(freshProject());
    try {
      const err = await expectError(usage.enable(['nosuchapi.googleapis.com']));
      assert.equal(err.exitCode, 7);
      assert.match(err.message, /Not found or permission denied for service\(s\): nosuchapi\.googleapis\.com/);
      assert.equal(err.data?.reason, 'SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED');
    } finally {
      await usage.close();
    }
  });

  it('a project that does not exist (or is hidden) is a permission error, not a crash', async () => {
    const usage = adapter('no-such-project');
    try {
      const err = await expectError(usage.disabled(APIS));
      assert.equal(err.exitCode, 7);
    } finally {
      await usage.close();
    }
  });

  it('retries a transient failure of the read, and reports a refused operation poll with the message Google gave', async () => {
    const project = freshProject();
    const usage = adapter(project);
    try {
      grpc.inject({ method: 'BatchGetServices', code: 14, message: 'try again' });
      assert.deepEqual(await usage.disabled(APIS), APIS);
      grpc.inject({ method: 'GetOperation', code: 9, message: 'Billing must be enabled for activation of service(s)' });
      operations.setPolls(1);
      const err = await expectError(usage.enable(['run.googleapis.com']));
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /Billing must be enabled/);
    } finally {
      await usage.close();
    }
  });
});
