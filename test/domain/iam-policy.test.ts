/**
 * The one merge of role grants into an IAM policy and the read-modify-write under its etag that
 * every grant of setup goes through, against an in-memory policy store that can lose races.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grantsLacking, grantUnderEtag, withGrants, type IamPolicy, type RaceRetry, type RoleGrant } from '../../src/domain/iam-policy.ts';

const SA = 'serviceAccount:job@p.iam.gserviceaccount.com';
const API = 'serviceAccount:api@p.iam.gserviceaccount.com';
const condition = { expression: 'request.time < timestamp("2030-01-01T00:00:00Z")', title: 'until 2030' };

const policyRead = (): IamPolicy => ({
  version: 3,
  etag: 'BwY=',
  bindings: [
    { role: 'roles/storage.objectAdmin', members: [SA], condition },
    { role: 'roles/viewer', members: ['user:ops@example.com'] },
    { role: 'roles/storage.objectAdmin', members: ['group:admins@example.com'] },
  ],
});

describe('withGrants', () => {
  it('adds to the unconditional binding only, keeps conditional bindings and other roles as read, in order', () => {
    const read = policyRead();
    const { policy, added } = withGrants(read, [
      { role: 'roles/storage.objectAdmin', member: SA },
      { role: 'roles/logging.logWriter', member: SA },
    ]);
    assert.deepEqual(policy.bindings, [
      { role: 'roles/storage.objectAdmin', members: [SA], condition },
      { role: 'roles/viewer', members: ['user:ops@example.com'] },
      { role: 'roles/storage.objectAdmin', members: ['group:admins@example.com', SA] },
      { role: 'roles/logging.logWriter', members: [SA] },
    ]);
    assert.deepEqual(added, [
      { role: 'roles/storage.objectAdmin', member: SA },
      { role: 'roles/logging.logWriter', member: SA },
    ]);
    assert.equal(policy.etag, 'BwY=');
    assert.equal(policy.version, 3);
    assert.deepEqual(read, policyRead(), 'the policy read is not changed in place');
  });

  it('adds nothing twice: a grant held, or given twice, is added once and reported once', () => {
    const grants: RoleGrant[] = [
      { role: 'roles/viewer', member: 'user:ops@example.com' },
      { role: 'roles/run.invoker', member: API },
      { role: 'roles/run.invoker', member: API },
      { role: 'roles/run.invoker', member: SA },
    ];
    const { policy, added } = withGrants(policyRead(), grants);
    assert.deepEqual(added, [
      { role: 'roles/run.invoker', member: API },
      { role: 'roles/run.invoker', member: SA },
    ]);
    assert.deepEqual(policy.bindings.at(-1), { role: 'roles/run.invoker', members: [API, SA] });
    const again = withGrants(policy, grants);
    assert.deepEqual(again.added, []);
    assert.deepEqual(again.policy.bindings, policy.bindings);
  });

  it('keeps whatever else the policy and its bindings carry', () => {
    const raw = { etag: new Uint8Array([1, 2]), auditConfigs: ['kept'], bindings: [{ role: 'roles/viewer', members: [], extra: 1 }] };
    const { policy } = withGrants(raw, [{ role: 'roles/viewer', member: SA }]);
    assert.deepEqual(policy, {
      etag: new Uint8Array([1, 2]),
      auditConfigs: ['kept'],
      bindings: [{ role: 'roles/viewer', members: [SA], extra: 1 }],
    });
  });
});

describe('grantsLacking', () => {
  it('a conditional binding does not count as holding the role', () => {
    assert.deepEqual(
      grantsLacking(policyRead(), [
        { role: 'roles/storage.objectAdmin', member: SA },
        { role: 'roles/storage.objectAdmin', member: 'group:admins@example.com' },
        { role: 'roles/viewer', member: API },
      ]),
      [
        { role: 'roles/storage.objectAdmin', member: SA },
        { role: 'roles/viewer', member: API },
      ],
    );
  });
});

class StaleEtag extends Error {}

/** A policy store whose writes check the etag, with `races` other writers getting in before our writes. */
function storeWithRaces(races: number) {
  let current = policyRead();
  let revision = 0;
  const calls = { reads: 0, writes: 0 };
  const otherWriter = () => {
    revision += 1;
    current = { ...current, etag: `rev-${revision}`, bindings: [...current.bindings, { role: `roles/other${revision}`, members: [API] }] };
  };
  const store = {
    read: async () => {
      calls.reads += 1;
      return structuredClone(current);
    },
    write: async (policy: IamPolicy) => {
      calls.writes += 1;
      if (races > 0) {
        races -= 1;
        otherWriter();
      }
      if (policy.etag !== current.etag) throw new StaleEtag(`stale etag ${policy.etag}`);
      revision += 1;
      current = { ...structuredClone(policy), etag: `rev-${revision}` };
      return current;
    },
  };
  return { store, calls, current: () => current };
}

const RACE: RaceRetry = { policy: { attempts: 3, baseDelayMs: 0, maxDelayMs: 0 }, isConflict: (err) => err instanceof StaleEtag };
const GRANT = [{ role: 'roles/run.invoker', member: SA }];

describe('grantUnderEtag', () => {
  it('after a lost race, reads again and keeps the other writer’s binding', async () => {
    const { store, calls, current } = storeWithRaces(2);
    assert.deepEqual(await grantUnderEtag(store, GRANT, RACE), GRANT);
    assert.deepEqual(calls, { reads: 3, writes: 3 });
    assert.deepEqual(
      current()
        .bindings.slice(3)
        .map((binding) => binding.role),
      ['roles/other1', 'roles/other2', 'roles/run.invoker'],
    );
  });

  it('gives up after the attempts with the last conflict, as the store threw it', async () => {
    const { store, calls } = storeWithRaces(10);
    await assert.rejects(grantUnderEtag(store, GRANT, RACE), (err) => {
      assert.ok(err instanceof StaleEtag, String(err));
      assert.match(err.message, /stale etag rev-2$/);
      return true;
    });
    assert.deepEqual(calls, { reads: 3, writes: 3 });
  });

  it('writes nothing when every grant is held', async () => {
    const { store, calls } = storeWithRaces(0);
    assert.deepEqual(await grantUnderEtag(store, [{ role: 'roles/viewer', member: 'user:ops@example.com' }], RACE), []);
    assert.deepEqual(calls, { reads: 1, writes: 0 });
  });

  it('a failure other than a conflict, or a failed read, is thrown at once', async () => {
    const { store, calls } = storeWithRaces(0);
    const refused = new Error('permission denied');
    await assert.rejects(grantUnderEtag({ ...store, write: () => Promise.reject(refused) }, GRANT, RACE), (err) => err === refused);
    const stale = new StaleEtag('read refused');
    await assert.rejects(grantUnderEtag({ ...store, read: () => Promise.reject(stale) }, GRANT, RACE), (err) => err === stale);
    assert.deepEqual(calls, { reads: 1, writes: 0 });
  });
});
