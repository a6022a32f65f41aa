/**
 * The Cloud Run fake's services and revisions, driven through the official @google-cloud/run
 * clients over a real socket the way deploy and rollback drive them: every rule the fake
 * enforces, reconciliation, etags, and the hooks tests steer it with.
 */
import type { protos } from '@google-cloud/run';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fails, fake, nextId, PARENT, revisions, run, services, shortName, useRunFake } from './run-harness.ts';
import { status } from './status.ts';

type IService = protos.google.cloud.run.v2.IService;
type ITrafficTarget = protos.google.cloud.run.v2.ITrafficTarget;

const LATEST = 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST';
const BY_REVISION = 'TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION';

useRunFake();

const serviceName = (id: string) => `${PARENT}/services/${id}`;

async function deploy(id: string, image = 'registry/app:1', extra: IService = {}): Promise<IService> {
  const [operation] = await services.createService({
    parent: PARENT,
    serviceId: id,
    service: { ...extra, template: { containers: [{ image }], ...extra.template } },
  });
  await operation.promise();
  return get(id);
}

async function get(id: string): Promise<IService> {
  const [service] = await services.getService({ name: serviceName(id) });
  return service;
}

/** Read-modify-write from a fresh GET, as the deploy code does. */
async function change(id: string, edit: (service: IService) => void): Promise<IService> {
  const service = await get(id);
  edit(service);
  const [operation] = await services.updateService({ service });
  await operation.promise();
  return get(id);
}

const withImage = (image: string) => (service: IService) => {
  service.template!.containers![0]!.image = image;
};

const withTraffic = (traffic: ITrafficTarget[]) => (service: IService) => {
  service.traffic = traffic;
};

const readyRevision = (service: IService) => shortName(service.latestReadyRevision);

describe('Cloud Run services', () => {
  it('creates the first revision <service>-00001-<3 chars> on the first deploy and routes all traffic to it', async () => {
    const id = nextId();
    const service = await deploy(id);
    assert.match(readyRevision(service), new RegExp(`^${id}-00001-[a-z0-9]{3}$`));
    assert.equal(service.latestCreatedRevision, service.latestReadyRevision);
    assert.equal(service.latestReadyRevision, `${serviceName(id)}/revisions/${readyRevision(service)}`);
    assert.equal(service.generation, '1');
    assert.equal(service.observedGeneration, '1');
    assert.equal(service.reconciling, false);
    assert.equal(service.terminalCondition?.state, 'CONDITION_SUCCEEDED');
    assert.deepEqual(
      service.traffic?.map((target) => [target.type, target.percent]),
      [[LATEST, 100]],
    );
    assert.deepEqual(
      service.trafficStatuses?.map((target) => [target.type, target.revision, target.percent]),
      [[LATEST, readyRevision(service), 100]],
    );
    assert.match(String(service.uri), new RegExp(`^https://${id}-[a-z0-9]{10}\\.a\\.run\\.app$`));
    assert.ok(Number(service.createTime?.seconds) > 0 && Number(service.updateTime?.seconds) > 0);
    assert.match(String(service.etag), /^".+"$/);
  });

  it('refuses a second service of the same name and ids Run would refuse', async () => {
    const id = nextId();
    await deploy(id);
    await assert.rejects(deploy(id), fails(status.ALREADY_EXISTS, new RegExp(`'${id}' already exists`)));
    await assert.rejects(deploy('Bad_Name'), fails(status.INVALID_ARGUMENT, /Invalid service id/));
    await assert.rejects(deploy(`s${'x'.repeat(49)}`), fails(status.INVALID_ARGUMENT, /at most 49/));
    await assert.rejects(
      services.createService({ parent: PARENT, serviceId: nextId(), service: { template: { containers: [] } } }),
      fails(status.INVALID_ARGUMENT, /at least one container/),
    );
  });

  it('answers NOT_FOUND in Run wording and lists services page by page', async () => {
    await assert.rejects(
      get('no-such-service'),
      fails(
        status.NOT_FOUND,
        /Resource 'no-such-service' of kind 'SERVICE' in region 'us-central1' in project 'demo-project' does not exist/,
      ),
    );
    const location = 'projects/demo-project/locations/europe-west1';
    for (const id of ['list-a', 'list-b', 'list-c']) {
      const [operation] = await services.createService({
        parent: location,
        serviceId: id,
        service: { template: { containers: [{ image: 'i' }] } },
      });
      await operation.promise();
    }
    const names: string[] = [];
    for await (const service of services.listServicesAsync({ parent: location, pageSize: 2 })) names.push(shortName(service.name));
    assert.deepEqual(names, ['list-a', 'list-b', 'list-c']);
    assert.equal(fake.calls('ListServices').length, 2);
  });

  it('cuts a new revision only when the template changes, numbered by the service generation', async () => {
    const id = nextId();
    const first = await deploy(id);
    const second = await change(id, withImage('registry/app:2'));
    assert.match(readyRevision(second), new RegExp(`^${id}-00002-[a-z0-9]{3}$`));
    assert.equal(second.generation, '2');

    const pinned = await change(id, withTraffic([{ type: BY_REVISION, revision: readyRevision(first), percent: 100 }]));
    assert.equal(pinned.generation, '3');
    assert.equal(readyRevision(pinned), readyRevision(second), 'a traffic-only change creates no revision');
    assert.equal(run.revisions(serviceName(id)).length, 2);

    const unchanged = await change(id, () => undefined);
    assert.equal(unchanged.generation, '3', 'sending the service back unchanged is not a new generation');

    const third = await change(id, withImage('registry/app:3'));
    assert.match(shortName(third.latestCreatedRevision), new RegExp(`^${id}-00004-[a-z0-9]{3}$`));
    assert.deepEqual(
      third.trafficStatuses?.map((target) => [target.revision, target.percent]),
      [[readyRevision(first), 100]],
      'traffic pinned by name stays on the pinned revision',
    );
  });

  it('runs a canary: tagged revision at 0%, then a weight, then promotion, with tag URIs in trafficStatuses', async () => {
    const id = nextId('shop');
    const stable = readyRevision(await deploy(id));
    const canary = `${id}-canary-1`;
    const staged = await change(id, (service) => {
      service.template!.revision = canary;
      service.template!.containers![0]!.image = 'registry/app:2';
      service.traffic = [
        { type: BY_REVISION, revision: stable, percent: 100 },
        { type: BY_REVISION, revision: canary, percent: 0, tag: 'canary' },
      ];
    });
    assert.equal(shortName(staged.latestCreatedRevision), canary);
    const tagged = staged.trafficStatuses?.find((target) => target.tag === 'canary');
    assert.equal(tagged?.revision, canary);
    assert.equal(tagged?.percent, 0);
    assert.match(String(tagged?.uri), new RegExp(`^https://canary---${id}-[a-z0-9]{10}\\.a\\.run\\.app$`));
    assert.equal(staged.trafficStatuses?.find((target) => target.revision === stable)?.uri, '');

    const weighted = await change(
      id,
      withTraffic([
        { type: BY_REVISION, revision: stable, percent: 90 },
        { type: BY_REVISION, revision: canary, percent: 10, tag: 'canary' },
      ]),
    );
    assert.deepEqual(
      weighted.trafficStatuses?.map((target) => [target.revision, target.percent]),
      [
        [stable, 90],
        [canary, 10],
      ],
    );
    const promoted = await change(id, withTraffic([{ type: BY_REVISION, revision: canary, percent: 100 }]));
    assert.deepEqual(
      promoted.trafficStatuses?.map((target) => [target.type, target.revision, target.percent]),
      [[BY_REVISION, canary, 100]],
    );
  });

  it('refuses traffic that does not add up to 100 or whose targets are not LATEST or an existing revision', async () => {
    const id = nextId();
    const revision = readyRevision(await deploy(id));
    const attempt = (traffic: ITrafficTarget[]) => change(id, withTraffic(traffic));
    await assert.rejects(
      attempt([
        { type: BY_REVISION, revision, percent: 50 },
        { type: LATEST, percent: 30 },
      ]),
      fails(status.INVALID_ARGUMENT, /must add up to 100, got 80/),
    );
    await assert.rejects(
      attempt([{ type: LATEST, revision, percent: 100 }]),
      fails(status.INVALID_ARGUMENT, /LATEST must not name a revision/),
    );
    await assert.rejects(attempt([{ type: BY_REVISION, percent: 100 }]), fails(status.INVALID_ARGUMENT, /revision: required/));
    await assert.rejects(attempt([{ revision, percent: 100 }]), fails(status.INVALID_ARGUMENT, /type: must be/));
    await assert.rejects(
      attempt([{ type: BY_REVISION, revision: `${id}-00009-zzz`, percent: 100 }]),
      fails(status.INVALID_ARGUMENT, new RegExp(`Revision '${id}-00009-zzz' does not exist or is deleted`)),
    );
    await assert.rejects(
      attempt([{ type: BY_REVISION, revision: `${serviceName(id)}/revisions/${revision}`, percent: 100 }]),
      fails(status.INVALID_ARGUMENT, /must be a revision name, not a resource path/),
    );
    await assert.rejects(attempt([{ type: BY_REVISION, revision, percent: 101 }]), fails(status.INVALID_ARGUMENT, /between 0 and 100/));
    const service = await get(id);
    assert.equal(service.generation, '1', 'refused updates leave the service as it was');
  });

  it('keeps tags unique and tag + service name within 46 characters', async () => {
    const id = nextId('tags').padEnd(30, 'x');
    const revision = readyRevision(await deploy(id));
    const tagged = (tag: string, other = 'other') =>
      change(
        id,
        withTraffic([
          { type: BY_REVISION, revision, percent: 100, tag },
          { type: LATEST, percent: 0, tag: other },
        ]),
      );
    await assert.rejects(tagged('same', 'same'), fails(status.INVALID_ARGUMENT, /tag 'same' is used by more than one traffic target/));
    const longest = `c${'a'.repeat(46 - id.length - 1)}`;
    assert.equal(longest.length + id.length, 46);
    const ok = await tagged(longest);
    assert.ok(ok.trafficStatuses?.some((target) => target.tag === longest));
    await assert.rejects(
      tagged(`${longest}b`),
      fails(status.INVALID_ARGUMENT, new RegExp(`tag '${longest}b' is too long for service '${id}'.*at most 46 characters, got 47`)),
    );
    await assert.rejects(tagged('Canary'), fails(status.INVALID_ARGUMENT, /must be lowercase letters/));
  });

  it('requires template.revision to start with "<service>-", stay under 64 characters and not reuse a name', async () => {
    const id = nextId();
    await deploy(id);
    const named = (revision: string, image = 'registry/app:2') =>
      change(id, (service) => {
        service.template!.revision = revision;
        service.template!.containers![0]!.image = image;
      });
    await assert.rejects(
      named('other-v2'),
      fails(status.INVALID_ARGUMENT, new RegExp(`must start with the service name followed by a hyphen \\('${id}-'\\)`)),
    );
    await assert.rejects(named(`${id}-${'v'.repeat(64 - id.length)}`), fails(status.INVALID_ARGUMENT, /at most 63 characters/));
    const atLimit = `${id}-${'v'.repeat(62 - id.length)}`;
    assert.equal(atLimit.length, 63);
    const created = await named(atLimit);
    assert.equal(shortName(created.latestReadyRevision), atLimit);
    // A GET-modify-PUT that keeps the old template.revision but changes the image collides with it.
    await assert.rejects(
      named(atLimit, 'registry/app:3'),
      fails(status.ALREADY_EXISTS, /Revision named '.*' with different configuration already exists/),
    );
  });

  it('refuses an update with a stale etag (ABORTED) and lets an update without an etag through', async () => {
    const id = nextId();
    await deploy(id);
    const stale = await get(id);
    await change(id, withImage('registry/app:2'));
    stale.template!.containers![0]!.image = 'registry/app:3';
    await assert.rejects(services.updateService({ service: stale }), fails(status.ABORTED, /does not match the current etag/));
    const [operation] = await services.updateService({ service: { ...stale, etag: '' } });
    await operation.promise();
    assert.equal((await get(id)).template?.containers?.[0]?.image, 'registry/app:3');
  });

  it('setEtagConflict makes the next updates meet a concurrent writer, so only a retry from a fresh GET succeeds', async () => {
    const id = nextId();
    await deploy(id);
    const seenBefore = run.requests().length;
    run.setEtagConflict(1);
    const first = await get(id);
    first.template!.containers![0]!.image = 'registry/app:2';
    await assert.rejects(services.updateService({ service: first }), fails(status.ABORTED));
    await assert.rejects(services.updateService({ service: first }), fails(status.ABORTED), 'the old etag stays stale');
    const updated = await change(id, withImage('registry/app:2'));
    assert.equal(updated.template?.containers?.[0]?.image, 'registry/app:2');
    const methods = run
      .requests()
      .slice(seenBefore)
      .filter((entry) => entry.method !== 'GetOperation')
      .map((entry) => entry.method);
    assert.deepEqual(methods, ['GetService', 'UpdateService', 'UpdateService', 'GetService', 'UpdateService', 'GetService']);
  });

  it('applies only the fields an update_mask names', async () => {
    const id = nextId();
    const revision = readyRevision(await deploy(id, 'registry/app:1', { description: 'before' }));
    const service = await get(id);
    service.description = 'after';
    service.template!.containers![0]!.image = 'registry/app:ignored';
    service.traffic = [
      { type: BY_REVISION, revision, percent: 100 },
      { type: LATEST, percent: 0, tag: 'head' },
    ];
    const [operation] = await services.updateService({ service, updateMask: { paths: ['traffic'] } });
    await operation.promise();
    const updated = await get(id);
    assert.equal(updated.description, 'before');
    assert.equal(updated.template?.containers?.[0]?.image, 'registry/app:1');
    assert.deepEqual(
      updated.traffic?.map((target) => target.tag),
      ['', 'head'],
    );
    const [minimal] = await services.updateService({
      service: { name: serviceName(id), traffic: [{ type: LATEST, percent: 100 }] },
      updateMask: { paths: ['traffic'] },
    });
    await minimal.promise();
    const latest = await get(id);
    assert.deepEqual(
      latest.traffic?.map((target) => [target.type, target.percent]),
      [[LATEST, 100]],
    );
    assert.equal(latest.template?.containers?.[0]?.image, 'registry/app:1', 'a body with only the masked field keeps the rest');
    await assert.rejects(
      services.updateService({ service: latest, updateMask: { paths: ['uri'] } }),
      fails(status.INVALID_ARGUMENT, /Invalid field mask path/),
    );
  });

  it('keeps reconciling, with the last serving state, until the operation has been polled to the end', async () => {
    const id = nextId();
    const first = readyRevision(await deploy(id));
    run.operations.setPolls(3);
    const service = await get(id);
    service.template!.containers![0]!.image = 'registry/app:2';
    const [operation] = await services.updateService({ service });
    assert.equal(operation.done, false);

    const during = await get(id);
    assert.equal(during.reconciling, true);
    assert.equal(during.generation, '2');
    assert.equal(during.observedGeneration, '1');
    assert.equal(during.terminalCondition?.state, 'CONDITION_RECONCILING');
    assert.equal(readyRevision(during), first);
    assert.match(shortName(during.latestCreatedRevision), new RegExp(`^${id}-00002-`));
    const [pending] = await revisions.getRevision({ name: String(during.latestCreatedRevision) });
    assert.equal(pending.reconciling, true);

    const [result] = await operation.promise();
    assert.equal(run.operations.pollCount(String(operation.name)), 3);
    assert.equal((result as IService).reconciling, false);
    const afterwards = await get(id);
    assert.equal(afterwards.observedGeneration, '2');
    assert.equal(afterwards.latestReadyRevision, afterwards.latestCreatedRevision);
    assert.equal(afterwards.trafficStatuses?.[0]?.revision, readyRevision(afterwards));

    const checked = await services.checkUpdateServiceProgress(String(operation.name));
    assert.equal(checked.done, true);
  });

  it('failNextRevision: the deploy operation fails FAILED_PRECONDITION and the service keeps serving the old revision', async () => {
    const id = nextId();
    const good = readyRevision(await deploy(id));
    run.failNextRevision();
    const service = await get(id);
    service.template!.containers![0]!.image = 'registry/app:broken';
    const [operation] = await services.updateService({ service });
    await assert.rejects(
      operation.promise(),
      fails(status.FAILED_PRECONDITION, /Revision '.*-00002-.*' is not ready and cannot serve traffic/),
    );

    const failed = await get(id);
    assert.equal(failed.reconciling, false);
    assert.equal(failed.terminalCondition?.state, 'CONDITION_FAILED');
    assert.equal(readyRevision(failed), good);
    assert.equal(failed.observedGeneration, '1');
    assert.deepEqual(
      failed.trafficStatuses?.map((target) => target.revision),
      [good],
    );
    const [broken] = await revisions.getRevision({ name: String(failed.latestCreatedRevision) });
    assert.equal(broken.conditions?.find((item) => item.type === 'Ready')?.state, 'CONDITION_FAILED');

    const restored = await change(id, withTraffic([{ type: BY_REVISION, revision: good, percent: 100 }]));
    assert.equal(restored.terminalCondition?.state, 'CONDITION_SUCCEEDED');
    assert.equal(restored.observedGeneration, restored.generation);
  });

  it('failNextRevision on a first deploy leaves a service with no ready revision', async () => {
    const id = nextId();
    run.failNextRevision('container crashed');
    await assert.rejects(deploy(id), fails(status.FAILED_PRECONDITION, /container crashed/));
    const service = await get(id);
    assert.equal(service.latestReadyRevision, '');
    assert.deepEqual(service.trafficStatuses, []);
    assert.match(shortName(service.latestCreatedRevision), new RegExp(`^${id}-00001-`));
  });

  it('refuses to route traffic to a revision that never became ready', async () => {
    const id = nextId();
    const good = readyRevision(await deploy(id));
    run.failNextRevision();
    const canary = `${id}-bad`;
    await assert.rejects(
      change(id, (service) => {
        service.template!.revision = canary;
        service.template!.containers![0]!.image = 'registry/app:broken';
        service.traffic = [
          { type: BY_REVISION, revision: good, percent: 100 },
          { type: BY_REVISION, revision: canary, percent: 0, tag: 'canary' },
        ];
      }),
      fails(status.FAILED_PRECONDITION),
    );
    await assert.rejects(
      change(
        id,
        withTraffic([
          { type: BY_REVISION, revision: good, percent: 50 },
          { type: BY_REVISION, revision: canary, percent: 50 },
        ]),
      ),
      fails(status.FAILED_PRECONDITION, new RegExp(`Revision '${canary}' is not ready`)),
    );
  });

  it('deletes a service (etag checked) and answers the deleted service from the operation', async () => {
    const id = nextId();
    const service = await deploy(id);
    await assert.rejects(services.deleteService({ name: serviceName(id), etag: '"stale"' }), fails(status.ABORTED));
    const [operation] = await services.deleteService({ name: serviceName(id), etag: String(service.etag) });
    const [deleted] = await operation.promise();
    assert.equal((deleted as IService).name, serviceName(id));
    await assert.rejects(get(id), fails(status.NOT_FOUND));
    assert.deepEqual(run.revisions(serviceName(id)), []);
  });

  it('answers TestIamPermissions from the granted set and PERMISSION_DENIED without a permission', async () => {
    const id = nextId();
    await deploy(id);
    run.granted.delete('run.services.delete');
    const [answer] = await services.testIamPermissions({
      resource: serviceName(id),
      permissions: ['run.services.get', 'run.services.delete', 'run.services.update'],
    });
    assert.deepEqual(answer.permissions, ['run.services.get', 'run.services.update']);
    run.granted.delete('run.services.get');
    await assert.rejects(get(id), fails(status.PERMISSION_DENIED, /Permission 'run.services.get' denied on resource/));
  });

  it('lets tests inject faults per method through the shared server', async () => {
    const id = nextId();
    await deploy(id);
    fake.inject({ method: 'UpdateService', code: status.UNAVAILABLE, message: 'try again' });
    await assert.rejects(change(id, withImage('registry/app:2')), fails(status.UNAVAILABLE, /try again/));
    const updated = await change(id, withImage('registry/app:2'));
    assert.equal(updated.generation, '2');
    assert.equal(run.requests('UpdateService').filter((entry) => (entry.request.service as IService).name === serviceName(id)).length, 1);
  });
});

describe('Cloud Run revisions', () => {
  it('lists a service’s revisions newest first with create times, and gets one', async () => {
    const id = nextId();
    await deploy(id);
    await change(id, withImage('registry/app:2'));
    await change(id, withImage('registry/app:3'));
    const [listed] = await revisions.listRevisions({ parent: serviceName(id) });
    assert.deepEqual(
      listed.map((revision) => shortName(revision.name).split('-')[2]),
      ['00003', '00002', '00001'],
    );
    const times = listed.map((revision) => Number(revision.createTime?.seconds) * 1e9 + Number(revision.createTime?.nanos));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
    assert.ok(new Set(times).size === times.length, 'create times never tie');
    assert.equal(listed[1]?.containers?.[0]?.image, 'registry/app:2');
    assert.equal(listed[1]?.service, serviceName(id));
    const [one] = await revisions.getRevision({ name: String(listed[2]?.name) });
    assert.equal(one.conditions?.find((item) => item.type === 'Ready')?.state, 'CONDITION_SUCCEEDED');
    await assert.rejects(
      revisions.getRevision({ name: `${serviceName(id)}/revisions/${id}-00042-abc` }),
      fails(status.NOT_FOUND, /of kind 'REVISION'/),
    );
    await assert.rejects(revisions.listRevisions({ parent: serviceName('absent') }), fails(status.NOT_FOUND));
  });

  it('refuses to delete a revision that serves traffic or is the latest, and deletes a retired one', async () => {
    const id = nextId();
    const first = readyRevision(await deploy(id));
    const second = readyRevision(await change(id, withImage('registry/app:2')));
    await change(
      id,
      withTraffic([
        { type: BY_REVISION, revision: first, percent: 100 },
        { type: LATEST, percent: 0 },
      ]),
    );
    const third = readyRevision(await change(id, withImage('registry/app:3')));
    await assert.rejects(
      revisions.deleteRevision({ name: `${serviceName(id)}/revisions/${first}` }),
      fails(status.FAILED_PRECONDITION, /receiving traffic/),
    );
    await assert.rejects(
      revisions.deleteRevision({ name: `${serviceName(id)}/revisions/${third}` }),
      fails(status.FAILED_PRECONDITION, /latest revision/),
    );
    const [operation] = await revisions.deleteRevision({ name: `${serviceName(id)}/revisions/${second}` });
    await operation.promise();
    await assert.rejects(revisions.getRevision({ name: `${serviceName(id)}/revisions/${second}` }), fails(status.NOT_FOUND));
  });
});
