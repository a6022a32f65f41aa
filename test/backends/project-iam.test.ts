/**
 * The project IAM policy adapter (Resource Manager v3) and the service account adapter (IAM v1
 * REST) against their fakes, through the official clients.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createGcpClients, ENDPOINT_VARS } from '../../src/backends/gcp/clients.ts';
import { GcpIamAdmin } from '../../src/backends/iam-admin/gcp.ts';
import { GcpProjectIam } from '../../src/backends/project-iam/gcp.ts';
import { PolicyConflict, UnknownMember } from '../../src/backends/project-iam/port.ts';
import { ExitCode, isConvergenceError, type ConvergenceError } from '../../src/lib/errors.ts';
import { IamAdminFake, IAM_ADMIN_PERMISSIONS } from '../fakes/iam-admin-api.ts';
import { RESOURCE_MANAGER_PERMISSIONS, ResourceManagerFake } from '../fakes/grpc/resource-manager.ts';
import { startGrpcFake, type GrpcFake } from '../fakes/grpc/server.ts';

const PROJECT = 'iam-project';
const ACCOUNT = `convergence-job-test@${PROJECT}.iam.gserviceaccount.com`;
const TARGET = { project: PROJECT, location: 'US', region: 'us-central1' };

let grpc: GrpcFake;
let iamAdmin: IamAdminFake;
let resourceManager: ResourceManagerFake;

const projectIam = () => new GcpProjectIam(createGcpClients(TARGET, { [ENDPOINT_VARS.grpc]: grpc.address }));
const serviceAccounts = () => new GcpIamAdmin(createGcpClients(TARGET, { [ENDPOINT_VARS.iam]: iamAdmin.url }));

async function using<A extends { close(): Promise<void> }, T>(adapter: A, work: (adapter: A) => Promise<T>): Promise<T> {
  try {
    return await work(adapter);
  } finally {
    await adapter.close();
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

async function convergenceError(promise: Promise<unknown>, exitCode: number): Promise<ConvergenceError> {
  const err = await rejection(promise);
  assert.ok(isConvergenceError(err), `expected a ConvergenceError, got ${String(err)}`);
  assert.equal(err.exitCode, exitCode, err.message);
  return err;
}

before(async () => {
  iamAdmin = await IamAdminFake.start({ projects: [PROJECT] });
  resourceManager = new ResourceManagerFake({
    projects: [PROJECT],
    accountExists: (email) => (email.endsWith(`@${PROJECT}.iam.gserviceaccount.com`) ? iamAdmin.has(email) : undefined),
  });
  grpc = await startGrpcFake({ resourceManager });
});

after(async () => {
  await grpc.stop();
  await iamAdmin.close();
});

beforeEach(() => {
  resourceManager.granted = new Set(RESOURCE_MANAGER_PERMISSIONS);
  iamAdmin.granted = new Set(IAM_ADMIN_PERMISSIONS);
  resourceManager.seedPolicy(PROJECT, { version: 1, bindings: [], auditConfigs: [] });
});

describe('service accounts (IAM v1 REST)', () => {
  it('reads a missing account as undefined, creates it, and reads it back', async () => {
    await using(serviceAccounts(), async (iam) => {
      assert.equal(await iam.getServiceAccount(ACCOUNT), undefined);
      const { account, created } = await iam.createServiceAccount({
        accountId: 'convergence-job-test',
        displayName: 'Convergence pipeline job (test)',
        description: 'test',
      });
      assert.equal(created, true);
      assert.deepEqual(account, { email: ACCOUNT, project: PROJECT, displayName: 'Convergence pipeline job (test)', disabled: false });
      assert.deepEqual(await iam.getServiceAccount(ACCOUNT), account);
    });
  });

  it('takes ALREADY_EXISTS from a concurrent create as done', async () => {
    await using(serviceAccounts(), async (iam) => {
      iamAdmin.beforeNextCreate(() => iamAdmin.addAccount(PROJECT, 'convergence-api-race', 'made elsewhere'));
      const { account, created } = await iam.createServiceAccount({ accountId: 'convergence-api-race', displayName: 'x', description: '' });
      assert.equal(created, false);
      assert.equal(account.email, `convergence-api-race@${PROJECT}.iam.gserviceaccount.com`);
      assert.equal(account.displayName, 'made elsewhere');
    });
  });

  it('a caller without iam.serviceAccounts.create: exit 7 naming the permission and roles/iam.serviceAccountAdmin', async () => {
    iamAdmin.granted.delete('iam.serviceAccounts.create');
    await using(serviceAccounts(), async (iam) => {
      const err = await convergenceError(
        iam.createServiceAccount({ accountId: 'convergence-denied', displayName: '', description: '' }),
        ExitCode.auth,
      );
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.match(err.message, /iam\.serviceAccounts\.create/);
      assert.match(err.suggestion ?? '', /roles\/iam\.serviceAccountAdmin/);
      assert.equal(iamAdmin.has(`convergence-denied@${PROJECT}.iam.gserviceaccount.com`), false);
    });
  });

  it('a caller who may not read accounts gets Google\'s 403, not a "missing" answer', async () => {
    iamAdmin.granted.delete('iam.serviceAccounts.get');
    await using(serviceAccounts(), async (iam) => {
      const err = await convergenceError(iam.getServiceAccount(ACCOUNT), ExitCode.auth);
      assert.match(err.message, /iam\.serviceAccounts\.get/);
      assert.match(err.suggestion ?? '', /roles\/iam\.serviceAccountViewer/);
    });
  });

  it('refuses an account id Google would refuse (exit 2)', async () => {
    await using(serviceAccounts(), async (iam) => {
      const err = await convergenceError(
        iam.createServiceAccount({ accountId: 'Bad_Id', displayName: '', description: '' }),
        ExitCode.usage,
      );
      assert.match(err.message, /Invalid account ID "Bad_Id"/);
    });
  });
});

describe('project IAM policy (Resource Manager v3)', () => {
  it('reads at version 3 and writes bindings under the etag read', async () => {
    await using(projectIam(), async (iam) => {
      const policy = await iam.getPolicy();
      assert.equal((grpc.calls('GetIamPolicy').at(-1)!.request.options as { requestedPolicyVersion: number }).requestedPolicyVersion, 3);
      assert.deepEqual(policy.bindings, []);
      assert.ok(policy.etag);
      const written = await iam.setPolicy({ ...policy, bindings: [{ role: 'roles/viewer', members: ['user:alice@example.com'] }] });
      assert.notEqual(written.etag, policy.etag);
      assert.deepEqual((await iam.getPolicy()).bindings, [{ role: 'roles/viewer', members: ['user:alice@example.com'] }]);
    });
  });

  it('a write under a stale etag is a PolicyConflict and changes nothing', async () => {
    await using(projectIam(), async (iam) => {
      const policy = await iam.getPolicy();
      resourceManager.interleave((current) => current.bindings.push({ role: 'roles/viewer', members: ['user:bob@example.com'] }));
      const err = await rejection(iam.setPolicy({ ...policy, bindings: [{ role: 'roles/editor', members: ['user:carol@example.com'] }] }));
      assert.ok(err instanceof PolicyConflict, String(err));
      assert.match(err.message, /There were concurrent policy changes/);
      assert.deepEqual(resourceManager.policy(PROJECT).bindings, [{ role: 'roles/viewer', members: ['user:bob@example.com'] }]);
    });
  });

  it('keeps conditional bindings and audit configs through a read and a write', async () => {
    const condition = {
      expression: 'request.time < timestamp("2031-01-01T00:00:00Z")',
      title: 'until 2031',
      description: '',
      location: '',
    };
    const auditConfigs = [{ service: 'allServices', auditLogConfigs: [{ logType: 'DATA_READ', exemptedMembers: [] }] }];
    resourceManager.seedPolicy(PROJECT, {
      version: 3,
      bindings: [{ role: 'roles/viewer', members: ['user:dan@example.com'], condition }],
      auditConfigs,
    });
    await using(projectIam(), async (iam) => {
      const policy = await iam.getPolicy();
      assert.deepEqual(policy.bindings[0]!.condition, condition);
      await iam.setPolicy({ ...policy, bindings: [...policy.bindings, { role: 'roles/viewer', members: ['user:erin@example.com'] }] });
    });
    const stored = resourceManager.policy(PROJECT);
    assert.equal(stored.version, 3);
    assert.deepEqual(stored.bindings, [
      { role: 'roles/viewer', members: ['user:dan@example.com'], condition },
      { role: 'roles/viewer', members: ['user:erin@example.com'] },
    ]);
    assert.deepEqual(stored.auditConfigs, auditConfigs);
  });

  it('the fake mangles conditional roles for a version-1 reader and refuses them back (what version 3 avoids)', async () => {
    const condition = { expression: 'true', title: 't', description: '', location: '' };
    resourceManager.seedPolicy(PROJECT, { version: 3, bindings: [{ role: 'roles/viewer', members: ['user:dan@example.com'], condition }] });
    const { ProjectsClient } = await import('@google-cloud/resource-manager');
    const { fakeClientOptions } = await import('../fakes/grpc/client-options.ts');
    const client = new ProjectsClient(fakeClientOptions(grpc.port) as never);
    try {
      const [old] = await client.getIamPolicy({ resource: `projects/${PROJECT}` });
      assert.match(old.bindings![0]!.role!, /^roles\/viewer_withcond_/);
      await assert.rejects(client.setIamPolicy({ resource: `projects/${PROJECT}`, policy: old }), /INVALID_ARGUMENT|_withcond_/);
    } finally {
      await client.close();
    }
  });

  it('a member that is a missing service account of the project is an UnknownMember naming it', async () => {
    const nobody = `nobody-here@${PROJECT}.iam.gserviceaccount.com`;
    await using(projectIam(), async (iam) => {
      const policy = await iam.getPolicy();
      const err = await rejection(
        iam.setPolicy({ ...policy, bindings: [{ role: 'roles/viewer', members: [`serviceAccount:${nobody}`] }] }),
      );
      assert.ok(err instanceof UnknownMember, String(err));
      assert.equal(err.account, nobody);
      assert.match(err.message, /does not exist/);
    });
  });

  it('a caller without setIamPolicy: exit 7 naming the permission and roles/resourcemanager.projectIamAdmin', async () => {
    resourceManager.granted.delete('resourcemanager.projects.setIamPolicy');
    await using(projectIam(), async (iam) => {
      const policy = await iam.getPolicy();
      const err = await convergenceError(
        iam.setPolicy({ ...policy, bindings: [{ role: 'roles/viewer', members: ['user:a@example.com'] }] }),
        ExitCode.auth,
      );
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.match(err.message, /resourcemanager\.projects\.setIamPolicy/);
      assert.match(err.suggestion ?? '', /roles\/resourcemanager\.projectIamAdmin/);
    });
  });

  it('a caller without getIamPolicy: exit 7 naming that permission', async () => {
    resourceManager.granted.delete('resourcemanager.projects.getIamPolicy');
    await using(projectIam(), async (iam) => {
      const err = await convergenceError(iam.getPolicy(), ExitCode.auth);
      assert.match(err.message, /resourcemanager\.projects\.getIamPolicy/);
      assert.match(err.suggestion ?? '', /roles\/iam\.securityReviewer/);
    });
  });
});
