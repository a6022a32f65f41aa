/** Behaviour every SecretStore adapter promises (files here, Secret Manager over a fake later). */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { SecretStore } from '../../src/backends/secrets/port.ts';

export interface SecretStoreFixture {
  subject: SecretStore;
  cleanup(): Promise<void>;
}

const usageExit = (err: unknown) => (err as { exitCode?: number }).exitCode === 2;

export function secretsContract(name: string, make: () => Promise<SecretStoreFixture>): void {
  describe(`SecretStore contract: ${name}`, () => {
    let fixture: SecretStoreFixture;
    let store: SecretStore;

    beforeEach(async () => {
      fixture = await make();
      store = fixture.subject;
    });
    afterEach(() => fixture.cleanup());

    it('puts, gets, overwrites, lists and deletes', async () => {
      assert.equal(await store.get('acme_corp', 'usage_api_token'), undefined);
      assert.deepEqual(await store.list('acme_corp'), []);
      await store.put('acme_corp', 'usage_api_token', 'tok-1');
      assert.equal(await store.get('acme_corp', 'usage_api_token'), 'tok-1');
      await store.put('acme_corp', 'usage_api_token', 'tok-2');
      assert.equal(await store.get('acme_corp', 'usage_api_token'), 'tok-2');
      await store.put('acme_corp', 'b-second', 'x');
      await store.put('acme_corp', 'a_first', 'y');
      assert.deepEqual(await store.list('acme_corp'), ['a_first', 'b-second', 'usage_api_token']);
      assert.equal(await store.delete('acme_corp', 'usage_api_token'), true);
      assert.equal(await store.delete('acme_corp', 'usage_api_token'), false);
      assert.equal(await store.get('acme_corp', 'usage_api_token'), undefined);
      assert.deepEqual(await store.list('acme_corp'), ['a_first', 'b-second']);
    });

    it('keeps values verbatim', async () => {
      const values = [
        '{"type":"service_account","private_key":"-----BEGIN\\nKEY\\n-----"}',
        'multi\nline',
        'quote\'s "and" $HOME `x`',
        'ünïcödé 🦆',
        ' spaced ',
      ];
      for (const [i, value] of values.entries()) {
        await store.put(null, `v${i}`, value);
        assert.equal(await store.get(null, `v${i}`), value);
      }
    });

    it('isolates tenants from each other and from system secrets', async () => {
      await store.put('acme_corp', 'token', 'acme');
      await store.put('globex_inc', 'token', 'globex');
      await store.put(null, 'admin-api-key-local', 'admin');
      assert.equal(await store.get('acme_corp', 'token'), 'acme');
      assert.equal(await store.get('globex_inc', 'token'), 'globex');
      assert.equal(await store.get(null, 'token'), undefined);
      assert.equal(await store.get('acme_corp', 'admin-api-key-local'), undefined);
      assert.deepEqual(await store.list(null), ['admin-api-key-local']);
      assert.deepEqual(await store.list('globex_inc'), ['token']);
      assert.equal(await store.delete('acme_corp', 'token'), true);
      assert.equal(await store.get('globex_inc', 'token'), 'globex');
    });

    it('rejects invalid secret names and tenant ids with exit code 2', async () => {
      for (const bad of ['../escape', 'a/b', '', '.hidden', 'with space', 'semi;colon', 'x'.repeat(200), 'a\\b']) {
        await assert.rejects(store.put('acme_corp', bad, 'v'), usageExit, `name ${JSON.stringify(bad)}`);
        await assert.rejects(store.get('acme_corp', bad), usageExit);
        await assert.rejects(store.delete(null, bad), usageExit);
      }
      for (const bad of ['../acme', 'Acme', 'ab', 'acme/corp', '', 'tenants']) {
        await assert.rejects(store.put(bad, 'token', 'v'), usageExit, `tenant ${JSON.stringify(bad)}`);
        await assert.rejects(store.get(bad, 'token'), usageExit);
        await assert.rejects(store.list(bad), usageExit);
      }
      assert.deepEqual(await store.list('acme_corp'), []);
      assert.deepEqual(await store.list(null), []);
    });
  });
}
