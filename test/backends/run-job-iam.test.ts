/**
 * A Cloud Run job's IAM policy through GcpRunPlatform and the official client against the Run
 * fake: the grant is a read-modify-write under the policy's etag that keeps every binding it did
 * not add, reads again when another writer got in between, and a refusal names the permission.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createGcpClients, ENDPOINT_VARS, type GcpClients } from '../../src/backends/gcp/clients.ts';
import { GcpRunPlatform } from '../../src/backends/run-platform/gcp.ts';
import { ExitCode, isConvergenceError } from '../../src/lib/errors.ts';
import { RunFake } from '../fakes/grpc/run.ts';
import { startGrpcFake, type GrpcFake } from '../fakes/grpc/server.ts';

const PROJECT = 'iam-project';
const REGION = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${REGION}`;
const JOB = 'pipeline-job';
const ROLE = 'roles/run.jobsExecutorWithOverrides';
const SCHEDULER = 'serviceAccount:scheduler@iam-project.iam.gserviceaccount.com';

let run: RunFake;
let grpc: GrpcFake;
let clients: GcpClients;
let platform: GcpRunPlatform;

before(async () => {
  run = new RunFake();
  grpc = await startGrpcFake({ run });
  clients = createGcpClients({ project: PROJECT, location: 'US', region: REGION }, { [ENDPOINT_VARS.grpc]: grpc.address });
  platform = new GcpRunPlatform(clients);
  const jobs = await clients.runJobs();
  const [operation] = await jobs.createJob({
    parent: PARENT,
    jobId: JOB,
    job: { template: { template: { containers: [{ image: 'us-docker.pkg.dev/iam-project/convergence/convergence:1' }] } } },
  });
  await operation.promise();
});

after(async () => {
  await platform.close();
  await grpc.stop();
});

describe('job IAM (GcpRunPlatform)', () => {
  it('grants a role once, keeping a binding someone else made', async () => {
    run.policies.set(`${PARENT}/jobs/${JOB}`, { bindings: [{ role: 'roles/run.viewer', members: ['user:ops@example.com'] }] });
    assert.deepEqual(await platform.jobRoleMembers(JOB, ROLE), []);
    await platform.grantJobRole(JOB, ROLE, SCHEDULER);
    await platform.grantJobRole(JOB, ROLE, SCHEDULER);
    const policy = run.policies.describe(`${PARENT}/jobs/${JOB}`);
    assert.deepEqual(policy.bindings, [
      { role: 'roles/run.viewer', members: ['user:ops@example.com'] },
      { role: ROLE, members: [SCHEDULER] },
    ]);
    assert.deepEqual(await platform.jobRoleMembers(JOB, ROLE), [SCHEDULER]);
  });

  it('a write carrying a stale etag is refused by the fake (ABORTED), and the grant reads again', async () => {
    const resource = `${PARENT}/jobs/${JOB}`;
    const stale = run.policies.describe(resource).etag;
    run.policies.set(resource, { bindings: run.policies.describe(resource).bindings });
    assert.throws(() => run.policies.set(resource, { bindings: [], etag: stale }), /concurrent policy changes/);

    // Another writer adds a binding between the adapter's read and its write, once.
    const original = run.policies.describe.bind(run.policies);
    let raced = false;
    run.policies.describe = (name: string) => {
      const read = original(name);
      if (!raced) {
        raced = true;
        run.policies.set(name, { bindings: [...read.bindings, { role: 'roles/run.invoker', members: ['user:other@example.com'] }] });
      }
      return read;
    };
    try {
      await platform.grantJobRole(JOB, 'roles/run.jobsExecutor', SCHEDULER);
    } finally {
      run.policies.describe = original;
    }
    const roles = run.policies.describe(resource).bindings.map((b) => b.role);
    assert.deepEqual(roles, ['roles/run.viewer', ROLE, 'roles/run.invoker', 'roles/run.jobsExecutor']);
  });

  it('a caller without run.jobs.setIamPolicy gets exit 7 naming it and a role that has it', async () => {
    run.granted.delete('run.jobs.setIamPolicy');
    try {
      await assert.rejects(platform.grantJobRole(JOB, ROLE, 'serviceAccount:new@iam-project.iam.gserviceaccount.com'), (err) => {
        assert.ok(isConvergenceError(err), String(err));
        assert.equal(err.exitCode, ExitCode.auth, err.message);
        assert.match(`${err.message} ${err.suggestion}`, /run\.jobs\.setIamPolicy/);
        assert.match(`${err.message} ${err.suggestion}`, /roles\/run\.admin/);
        return true;
      });
    } finally {
      run.granted.add('run.jobs.setIamPolicy');
    }
  });

  it('a service account holds on the job what its roles there grant, and nothing else', async () => {
    const jobs = await clients.runJobs();
    const resource = `${PARENT}/jobs/${JOB}`;
    assert.equal(run.policies.grants('scheduler@iam-project.iam.gserviceaccount.com', resource, 'run.jobs.runWithOverrides'), true);
    assert.equal(run.policies.grants('scheduler@iam-project.iam.gserviceaccount.com', resource, 'run.jobs.delete'), false);
    assert.equal(run.policies.grants('someone@iam-project.iam.gserviceaccount.com', resource, 'run.jobs.run'), false);
    const [answer] = await jobs.testIamPermissions({ resource, permissions: ['run.jobs.run'] });
    assert.deepEqual(answer.permissions, ['run.jobs.run'], 'the operator holds it from its own grants');
  });
});
