/**
 * What the tenant SQL attack suites (local DuckDB and BigQuery) set up before acme_corp attacks:
 * both tenants, globex_inc's API key, a stored credential and a payroll row holding canary text
 * that must never leak, and acme_corp's own events table, which its ordinary SQL may read.
 */
import { createKey } from '../../src/services/keys.ts';
import type { ServiceContext } from '../../src/services/context.ts';
import { setTenantCredential } from '../../src/services/credentials.ts';
import { createTenant } from '../../src/services/tenants.ts';

export const ATTACKER = 'acme_corp';
export const VICTIM = 'globex_inc';
/** Text that stands only in globex_inc's payroll row and its stored credential. */
export const CANARY = { payroll: 'GLOBEX_PAYROLL_4e1d77', credential: 'GLOBEX_CREDENTIAL_93ab0c' };

/** Seeds the attacker, the victim and their tables on a bootstrapped workspace; returns globex_inc's API key. */
export async function seedAttackTargets(ctx: ServiceContext): Promise<string> {
  for (const tenantId of [ATTACKER, VICTIM]) await createTenant(ctx, { tenantId, name: tenantId, plan: 'scale' });
  const victimApiKey = (await createKey(ctx, { tenantId: VICTIM })).apiKey;
  await setTenantCredential(ctx, VICTIM, 'warehouse_token', CANARY.credential);
  const wh = await ctx.backends.warehouse();
  await wh.createTable(VICTIM, {
    name: 'payroll',
    fields: [
      { name: 'id', type: 'INT64' },
      { name: 'salary', type: 'STRING' },
    ],
  });
  await wh.insert(VICTIM, 'payroll', [{ id: 1, salary: CANARY.payroll }]);
  await wh.createTable(ATTACKER, {
    name: 'events',
    fields: [
      { name: 'id', type: 'INT64' },
      { name: 'amount', type: 'FLOAT64' },
      { name: 'status', type: 'STRING' },
    ],
  });
  await wh.insert(ATTACKER, 'events', [
    { id: 1, amount: 2.5, status: 'ok' },
    { id: 2, amount: 4, status: 'ok' },
  ]);
  return victimApiKey;
}

/** A pipeline with one transform step that writes the query in `sqlFile` to the table `id`. */
export const transformPipeline = (id: string, sqlFile: string) =>
  `pipeline_id: ${id}\nsteps:\n  - { name: build, type: transform, sql: ${sqlFile}, destination: { table: ${id}, write_mode: replace } }\n`;

/** A pipeline with one DQ step whose expression rule on acme_corp's events is `expr`. */
export const dqPipeline = (id: string, expr: string) =>
  `pipeline_id: ${id}\nsteps:\n  - name: check\n    type: dq\n    table: events\n    rules:\n      - { check: expression, name: attack, expr: ${JSON.stringify(expr)} }\n`;
