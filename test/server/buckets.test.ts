import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, KeyedBuckets } from '../../src/server/buckets.ts';

describe('clientKey', () => {
  it('keeps IPv4 addresses whole, unwraps IPv4-mapped IPv6, and groups IPv6 by /64', () => {
    assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(clientKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(clientKey('2001:0db8:0000:0001:ffff:1:2:3'), '2001:db8:0:1::/64');
    assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
    assert.equal(clientKey(undefined), 'unknown');
  });
});

describe('KeyedBuckets', () => {
  it('allows a burst per name, then one more per refill period, on the given clock', () => {
    let now = 0;
    const buckets = new KeyedBuckets({ burst: 3, refillEveryMs: 1_000 }, () => now);
    for (let i = 0; i < 3; i++) assert.equal(buckets.take('a'), true);
    assert.equal(buckets.take('a'), false);
    assert.equal(buckets.waitFor('a'), 1_000);
    assert.equal(buckets.take('b'), true, 'names are independent');
    now += 400;
    assert.equal(buckets.waitFor('a'), 600);
    now += 600;
    assert.equal(buckets.take('a'), true);
    assert.equal(buckets.take('a'), false);
  });

  it('spend empties a bucket down to none, and burst 0 turns the limit off', () => {
    const buckets = new KeyedBuckets({ burst: 2, refillEveryMs: 1_000 }, () => 0);
    for (let i = 0; i < 5; i++) buckets.spend('x');
    assert.equal(buckets.waitFor('x'), 1_000);
    const off = new KeyedBuckets({ burst: 0, refillEveryMs: 1_000 });
    for (let i = 0; i < 100; i++) off.spend('x');
    assert.equal(off.take('x'), true);
  });

  it('forgets the least recently spending names beyond its size', () => {
    const buckets = new KeyedBuckets({ burst: 1, refillEveryMs: 60_000, maxNames: 2 }, () => 0);
    buckets.spend('a');
    buckets.spend('b');
    buckets.spend('c');
    assert.equal(buckets.waitFor('a'), 0, 'a was forgotten');
    assert.ok(buckets.waitFor('c') > 0);
  });
});
