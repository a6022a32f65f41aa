/**
 * The Cloud Run fake on a gRPC server with the official @google-cloud/run clients pointed at it,
 * shared by run-services.test.ts, run-jobs.test.ts and run-operations.test.ts. useRunFake()
 * starts them for a test file and puts the fake's hooks back after each test.
 */
import '../env-guard.ts';
import { ExecutionsClient, JobsClient, RevisionsClient, ServicesClient } from '@google-cloud/run';
import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';
import { RUN_PERMISSIONS, RunFake } from './run.ts';
import { startGrpcFake, type GrpcFake } from './server.ts';
import { fakeClientOptions } from './client-options.ts';

export const PARENT = 'projects/demo-project/locations/us-central1';

export const run = new RunFake();
// Set by useRunFake() before the file's tests run; live bindings, so importers see them.
export let fake: GrpcFake;
export let services: ServicesClient;
export let revisions: RevisionsClient;
export let jobs: JobsClient;
export let executions: ExecutionsClient;
let serial = 0;

export function useRunFake(): void {
  before(async () => {
    fake = await startGrpcFake({ run });
    const options = fakeClientOptions(fake.port);
    services = new ServicesClient(options);
    revisions = new RevisionsClient(options);
    jobs = new JobsClient(options);
    executions = new ExecutionsClient(options);
  });

  after(async () => {
    await Promise.all([services.close(), revisions.close(), jobs.close(), executions.close()]);
    await fake.stop();
  });

  afterEach(() => {
    run.operations.setPolls(0);
    run.setExecutionPolls(0);
    run.onRunJob(undefined);
    run.setEtagConflict(0);
    run.granted = new Set(RUN_PERMISSIONS);
    fake.clearFaults();
  });
}

export const nextId = (prefix = 'svc') => `${prefix}-${++serial}`;
export const shortName = (name: string | null | undefined) => String(name).split('/').pop()!;

/** Asserts a gRPC failure: its code and, optionally, its message. */
export const fails = (code: number, pattern?: RegExp) => (err: unknown) => {
  const failure = err as { code?: number; message?: string };
  assert.equal(failure.code, code, `expected code ${code}, got ${failure.code}: ${failure.message}`);
  if (pattern) assert.match(String(failure.message), pattern);
  return true;
};
