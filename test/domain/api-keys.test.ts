import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  ADMIN_KEY_PATTERN,
  base62,
  digestsEqual,
  hashKey,
  KEY_BODY_LENGTH,
  newAdminKey,
  newTenantKey,
  randomKeyBody,
  tenantOfKey,
} from '../../src/domain/api-keys.ts';

const BASE62_ALPHABET = /^[0-9A-Za-z]+$/;

/** Decodes base62 back to a number, independently of the implementation under test. */
function decode62(text: string): bigint {
  const digits = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let n = 0n;
  for (const ch of text) {
    const d = digits.indexOf(ch);
    assert.ok(d >= 0, `not a base62 digit: ${ch}`);
    n = n * 62n + BigInt(d);
  }
  return n;
}

describe('base62 key bodies', () => {
  it('43 digits are enough for 256 bits and no fewer would be', () => {
    assert.equal(KEY_BODY_LENGTH, 43);
    assert.ok(62n ** 43n > 2n ** 256n);
    assert.ok(62n ** 42n < 2n ** 256n);
  });

  it('encodes 32 random bytes to exactly 43 base62 characters that decode back to the bytes', () => {
    for (let i = 0; i < 200; i++) {
      const bytes = randomBytes(32);
      const body = base62(bytes);
      assert.equal(body.length, KEY_BODY_LENGTH);
      assert.match(body, BASE62_ALPHABET);
      assert.equal(decode62(body), BigInt(`0x${bytes.toString('hex')}`));
    }
  });

  it('pads small values and encodes the extremes', () => {
    assert.equal(base62(Buffer.alloc(32)), '0'.repeat(43));
    assert.equal(base62(Buffer.from([1])), `${'0'.repeat(42)}1`);
    assert.equal(base62(Buffer.from([61])), `${'0'.repeat(42)}z`);
    assert.equal(base62(Buffer.from([62])), `${'0'.repeat(41)}10`);
    const max = base62(Buffer.alloc(32, 0xff));
    assert.equal(max.length, 43);
    assert.equal(decode62(max), 2n ** 256n - 1n);
  });

  it('random bodies use the whole alphabet and do not repeat', () => {
    const seen = new Set<string>();
    const chars = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const body = randomKeyBody();
      assert.equal(body.length, 43);
      assert.match(body, BASE62_ALPHABET);
      seen.add(body);
      for (const ch of body.slice(1)) chars.add(ch);
    }
    assert.equal(seen.size, 500);
    assert.equal(chars.size, 62, 'all 62 digits appear across 500 keys');
  });
});

describe('key formats', () => {
  it('tenant keys are <tenant_id>_api_<43 base62> and name their tenant', () => {
    const key = newTenantKey('acme_corp');
    assert.match(key, /^acme_corp_api_[0-9A-Za-z]{43}$/);
    assert.equal(tenantOfKey(key), 'acme_corp');
  });

  it('a tenant id that itself contains _api_ still round-trips', () => {
    const key = newTenantKey('my_api_co');
    assert.equal(tenantOfKey(key), 'my_api_co');
  });

  it('admin keys are admin_<43 base62>', () => {
    const key = newAdminKey();
    assert.match(key, /^admin_[0-9A-Za-z]{43}$/);
    assert.ok(ADMIN_KEY_PATTERN.test(key));
    assert.equal(tenantOfKey(key), undefined);
  });

  it('malformed keys claim no tenant', () => {
    const body = randomKeyBody();
    for (const bad of [
      '',
      body,
      `acme_corp_api_${body.slice(1)}`, // 42 digits
      `acme_corp_api_${body}x`, // 44 digits
      `acme_corp_api_${body.slice(1)}-`, // not base62
      `ACME_api_${body}`,
      `ab_api_${body}`,
      `acme_corp_key_${body}`,
      ` acme_corp_api_${body}`,
      `acme_corp_api_${body}\n`,
    ]) {
      assert.equal(tenantOfKey(bad), undefined, JSON.stringify(bad));
    }
  });

  it('hashKey is the SHA-256 hex digest of the key', () => {
    const key = newTenantKey('acme_corp');
    assert.equal(hashKey(key), createHash('sha256').update(key).digest('hex'));
    assert.match(hashKey(key), /^[0-9a-f]{64}$/);
  });
});

describe('digestsEqual', () => {
  const a = hashKey('one');
  const b = hashKey('two');

  it('is true for equal digests only', () => {
    assert.equal(digestsEqual(a, a), true);
    assert.equal(digestsEqual(a, `${a}`), true);
    assert.equal(digestsEqual(a, b), false);
  });

  it('detects a difference in the last digit', () => {
    const last = a.at(-1) === '0' ? '1' : '0';
    assert.equal(digestsEqual(a, `${a.slice(0, -1)}${last}`), false);
  });

  it('is false for different lengths and empty input, without throwing', () => {
    assert.equal(digestsEqual(a, a.slice(0, 62)), false);
    assert.equal(digestsEqual(a.slice(0, 62), a), false);
    assert.equal(digestsEqual('', ''), false);
    assert.equal(digestsEqual(a, ''), false);
  });

  it('does not treat non-hex text as equal to a digest', () => {
    assert.equal(digestsEqual('zz', 'zz'), false, 'non-hex decodes to nothing');
    assert.equal(digestsEqual(a, 'not-a-digest'), false);
  });
});
