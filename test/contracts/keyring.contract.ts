/** Behaviour every KeyRing adapter promises (local AES file here, Cloud KMS over a fake later). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { KeyRing } from '../../src/backends/keyring/port.ts';

export interface KeyRingFixture {
  subject: KeyRing;
  cleanup(): Promise<void>;
}

export function keyringContract(name: string, make: () => Promise<KeyRingFixture>): void {
  describe(`KeyRing contract: ${name}`, () => {
    let fixture: KeyRingFixture;
    let ring: KeyRing;

    beforeEach(async () => {
      fixture = await make();
      ring = fixture.subject;
    });
    afterEach(() => fixture.cleanup());

    it('round-trips random buffers, including an empty one', async () => {
      for (const size of [0, 1, 16, 31, 32, 33, 1000, 4096]) {
        const plaintext = randomBytes(size);
        const ciphertext = await ring.encrypt(plaintext);
        assert.ok(Buffer.isBuffer(ciphertext));
        // Short plaintexts can occur in random bytes by chance; 16+ bytes cannot.
        if (size >= 16) assert.ok(!ciphertext.includes(plaintext), 'ciphertext must not contain the plaintext');
        assert.deepEqual(await ring.decrypt(ciphertext), plaintext, `size ${size}`);
      }
    });

    it('round-trips text the way callers store secrets', async () => {
      const secret = 'acme_corp_api_3kLx9QzR7vB2 ünïcödé 🦆';
      const out = await ring.decrypt(await ring.encrypt(Buffer.from(secret, 'utf8')));
      assert.equal(out.toString('utf8'), secret);
    });

    it('gives different ciphertexts for the same plaintext', async () => {
      const plaintext = Buffer.from('same every time');
      const seen = new Set<string>();
      for (let i = 0; i < 5; i++) seen.add((await ring.encrypt(plaintext)).toString('base64'));
      assert.equal(seen.size, 5);
    });

    it('detects tampering and garbage', async () => {
      const ciphertext = await ring.encrypt(Buffer.from('do not touch'));
      for (const index of [0, Math.floor(ciphertext.length / 2), ciphertext.length - 1]) {
        const tampered = Buffer.from(ciphertext);
        tampered[index] = tampered[index]! ^ 0x01;
        await assert.rejects(ring.decrypt(tampered), `flipped byte ${index}`);
      }
      await assert.rejects(ring.decrypt(ciphertext.subarray(0, ciphertext.length - 1)), 'truncated');
      await assert.rejects(ring.decrypt(Buffer.alloc(0)), 'empty');
      await assert.rejects(ring.decrypt(randomBytes(64)), 'random bytes');
    });

    it('passes check() once in use, without changing what it decrypts', async () => {
      const ciphertext = await ring.encrypt(Buffer.from('before check'));
      await ring.check();
      assert.equal((await ring.decrypt(ciphertext)).toString(), 'before check');
      assert.ok(ring.describe.length > 0);
    });
  });
}
