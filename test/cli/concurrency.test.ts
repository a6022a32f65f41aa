/**
 * Several CLI processes on one workspace at once: the local DuckDB file is single-writer, so the
 * CLI must wait its turn and never surface a lock conflict to the user.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { createKey } from '../../src/services/keys.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { parseEnvelope, runCli, show, type CliResult } from '../helpers/cli.ts';
import { listDatasets, newBootstrappedWorkspace, withContext, withWarehouse } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const LOCK_NOISE = /lock|Conflicting|IO Error/i;
let ws: string;

before(async () => {
  ws = await newBootstrappedWorkspace('concurrency');
});
after(cleanupAll);

describe('concurrent CLI processes on one workspace', () => {
  it('4 tenant creates alongside a loop of tenant list --json: all succeed, no lock error reaches the user', async () => {
    const ids = [1, 2, 3, 4].map((n) => `t_concurrent_${n}`);
    let creating = true;
    const creates = Promise.all(
      ids.map((id) => runCli(['tenant', 'create', id, '--name', `Concurrent ${id.slice(-1)}`], { cwd: ws })),
    ).finally(() => {
      creating = false;
    });
    const lists = (async () => {
      const results: CliResult[] = [];
      // Keep listing while the creates run (and at least three times).
      while (creating || results.length < 3) results.push(await runCli(['tenant', 'list', '--json'], { cwd: ws }));
      return results;
    })();
    const [created, listed] = await Promise.all([creates, lists]);

    for (const r of [...created, ...listed]) {
      assert.equal(r.exitCode, 0, show(r));
      assert.doesNotMatch(r.stderr, LOCK_NOISE, show(r));
    }
    created.forEach((r, i) => assert.match(r.stdout, new RegExp(`Tenant ${ids[i]} created`)));

    // Lists ran one after another and creates commit atomically: each list sees a superset of
    // the one before, and only tenants that are being created.
    let previous: string[] = [];
    for (const r of listed) {
      const seen = (parseEnvelope<Array<{ tenantId: string }>>(r).result ?? []).map((t) => t.tenantId);
      assert.ok(
        seen.every((id) => ids.includes(id)),
        `unexpected tenants ${seen}`,
      );
      assert.ok(
        previous.every((id) => seen.includes(id)),
        `a later list lost tenants: ${previous} → ${seen}`,
      );
      previous = seen;
    }

    const final = await runCli(['tenant', 'list', '--all', '--json'], { cwd: ws });
    assert.equal(final.exitCode, 0, show(final));
    assert.deepEqual(
      parseEnvelope<Array<{ tenantId: string; status: string }>>(final).result!.map((t) => [t.tenantId, t.status]),
      ids.map((id) => [id, 'ACTIVE']),
    );
    await withWarehouse(ws, async (w) => {
      assert.deepEqual(await listDatasets(w), [...ids, METADATA_DATASET].sort());
      for (const id of ids) {
        assert.equal(await w.count(METADATA_DATASET, T.subscriptions, { tenant_id: id }), 1, `${id}: one subscription`);
        assert.equal(await w.count(METADATA_DATASET, T.quotas, { tenant_id: id }), 1, `${id}: one quota row`);
      }
    });
  });

  it('3 concurrent creates of the same id: exactly one wins, the others are refused cleanly', async () => {
    const results = await Promise.all(
      [1, 2, 3].map(() => runCli(['tenant', 'create', 'same_co', '--name', 'Same', '--json'], { cwd: ws })),
    );
    const winners = results.filter((r) => r.exitCode === 0);
    assert.equal(winners.length, 1, results.map(show).join('\n'));
    for (const r of results.filter((x) => x.exitCode !== 0)) {
      const env = parseEnvelope(r);
      assert.ok([2, 5].includes(r.exitCode), show(r));
      assert.equal(env.status, r.exitCode);
      assert.match(env.error?.message ?? '', /tenant "same_co" (already exists|is being changed)/);
    }
    await withWarehouse(ws, async (w) => {
      assert.equal(await w.count(METADATA_DATASET, T.profiles, { tenant_id: 'same_co' }), 1);
      assert.equal(await w.count(METADATA_DATASET, T.subscriptions, { tenant_id: 'same_co' }), 1);
      assert.equal(await w.count(METADATA_DATASET, T.quotas, { tenant_id: 'same_co' }), 1);
    });
  });

  it('concurrent keys create cannot exceed the plan limit', async () => {
    await withContext(ws, async (ctx) => {
      await createTenant(ctx, { tenantId: 'race_co', name: 'Race', plan: 'starter' });
      for (let i = 0; i < 4; i++) await createKey(ctx, { tenantId: 'race_co' });
    });
    const results = await Promise.all(
      Array.from({ length: 6 }, () => runCli(['keys', 'create', '--tenant', 'race_co', '--json'], { cwd: ws })),
    );
    const codes = results.map((r) => r.exitCode).sort();
    assert.deepEqual(codes, [0, 6, 6, 6, 6, 6], results.map(show).join('\n'));
    for (const r of results) {
      assert.doesNotMatch(r.stderr, LOCK_NOISE, show(r));
      assert.equal(parseEnvelope(r).status, r.exitCode);
    }
    const active = await withWarehouse(ws, (w) => w.count(METADATA_DATASET, T.apiKeys, { tenant_id: 'race_co', status: 'ACTIVE' }));
    assert.equal(active, 5);
  });
});
