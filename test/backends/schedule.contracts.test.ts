/**
 * The Schedule contract against LocalSchedule (no stored jobs: runs in process) and against
 * GcpSchedule wired as the backend factory wires it (its own client factory, closed by close())
 * with the official @google-cloud/scheduler client over a real socket to the Cloud Scheduler fake.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { GcpSchedule } from '../../src/backends/schedule/gcp.ts';
import { LocalSchedule } from '../../src/backends/schedule/local.ts';
import { RUNNABLE_JOB, scheduleContract } from '../contracts/schedule.contract.ts';
import { SchedulerFake } from '../fakes/grpc/scheduler.ts';
import { startGrpcFake } from '../fakes/grpc/server.ts';

scheduleContract('in process (local)', { storesJobs: false }, async () => {
  let runs = 0;
  const subject = new LocalSchedule({
    envName: 'contract',
    runners: new Map([[RUNNABLE_JOB, async () => ({ reset: ++runs })]]),
  });
  return {
    subject,
    jobName: (jobId) => jobId,
    runsOf: (name) => (name === RUNNABLE_JOB ? runs : 0),
    cleanup: async () => {},
  };
});

describe('LocalSchedule beyond the contract', () => {
  it('keeps what the last in-process run returned, for `scheduler run` to report', async () => {
    let runs = 0;
    const schedule = new LocalSchedule({ envName: 'contract', runners: new Map([[RUNNABLE_JOB, async () => ({ reset: ++runs })]]) });
    assert.equal(schedule.lastResult, undefined);
    await schedule.run(RUNNABLE_JOB);
    assert.deepEqual(schedule.lastResult, { reset: 1 });
    await schedule.run(RUNNABLE_JOB);
    assert.deepEqual(schedule.lastResult, { reset: 2 });
  });
});

scheduleContract('Cloud Scheduler (gRPC fake)', { storesJobs: true }, async () => {
  const scheduler = new SchedulerFake();
  const grpc = await startGrpcFake({ scheduler });
  const clients = createGcpClients(
    { project: 'contract-project', location: 'US', region: 'us-central1' },
    { [ENDPOINT_VARS.grpc]: grpc.address },
  );
  const subject = new GcpSchedule({
    client: await clients.scheduler(),
    project: clients.target.project,
    region: clients.target.region,
    timeoutMs: 10_000,
    onClose: () => clients.close(),
  });
  return {
    subject,
    jobName: (jobId) => `${subject.parent}/jobs/${jobId}`,
    runsOf: (name) => scheduler.dispatches().filter((dispatch) => dispatch.job === name).length,
    targetAnswers: (answer) => scheduler.onRun(answer ? () => answer : undefined),
    cleanup: () => grpc.stop(),
  };
});
