/**
 * The tenant SQL gate on a cloud environment: BigQuery's dry run (statementType,
 * referencedTables), through the official client, against the BigQuery fake. acme_corp's
 * transforms and DQ expressions that reach globex_inc or the metadata, or that are not one query,
 * are refused with exit 2 by `pipeline validate` and by `pipeline run` (before any run row); no
 * job but dry runs sees the attack's SQL, and globex_inc's rows, keys and credentials are
 * unchanged. With `tenant_service_account` set, the tenant's jobs carry a token minted for its own
 * service account (IAM Credentials generateAccessToken), the platform's jobs do not.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tenantServiceAccount } from '../../src/backends/gcp/clients.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { METADATA_DATASET, T } from '../../src/services/metadata/tables.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { ATTACKER, CANARY, dqPipeline, seedAttackTargets, transformPipeline, VICTIM } from '../helpers/sql-attack-targets.ts';
import { cleanupAll } from '../helpers/tmp.ts';
import { CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { accessTokenFor } from '../fakes/grpc/caller.ts';

const SA_TEMPLATE = `tenant-{tenant}@${CLOUD_PROJECT}.iam.gserviceaccount.com`;
const ACME_SA = `tenant-acme-corp@${CLOUD_PROJECT}.iam.gserviceaccount.com`;

let fakes: CloudFakes;
let root: string;
let apiKey: string;

before(async () => {
  // pointProcess points IAM Credentials too: tenant jobs mint their tokens from fakes.iamCredentials.
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('sql-sandbox-bq');
  await appendFile(
    path.join(root, 'convergence.yaml'),
    `${fakes.yaml('cloud')}${fakes.yaml('tenant_sa')}    tenant_service_account: ${JSON.stringify(SA_TEMPLATE)}\n`,
  );
  await withContext(
    root,
    async (ctx) => {
      await bootstrap(ctx);
      apiKey = await seedAttackTargets(ctx);
    },
    { env: 'cloud' },
  );
  await mkdir(acme('sql'), { recursive: true });
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

const acme = (...parts: string[]) => path.join(root, 'configs', ATTACKER, ...parts);

async function guarded(): Promise<unknown> {
  return withContext(
    root,
    async (ctx) => {
      const w = await ctx.backends.warehouse();
      return {
        victimTables: await w.listTables(VICTIM),
        payroll: await w.select(VICTIM, 'payroll'),
        keys: await w.select(METADATA_DATASET, T.apiKeys, { where: { tenant_id: VICTIM }, columns: ['api_key_hash', 'status'] }),
        credentials: await w.select(METADATA_DATASET, T.credentials, {
          where: { tenant_id: VICTIM },
          columns: ['credential_name', 'status', 'encrypted_value'],
        }),
        runs: await w.count(METADATA_DATASET, T.runs, { tenant_id: ATTACKER }),
      };
    },
    { env: 'cloud' },
  );
}

/** Queries that ran for real (not dry runs), as jobs or as short queries, and whose SQL holds `marker`. */
function executedWith(marker: string): string[] {
  return fakes.bigquery
    .queriesSent()
    .filter((q) => !q.dryRun && q.query.includes(marker))
    .map((q) => q.query);
}

const P = CLOUD_PROJECT;
/** Each attack carries a marker comment, so the jobs that saw its text can be found. */
const sqlAttacks: Array<{ name: string; sql: string; refusal: RegExp }> = [
  {
    name: "globex's payroll",
    sql: `SELECT * FROM ${VICTIM}.payroll`,
    refusal: new RegExp(`reads ${P}\\.globex_inc\\.payroll, outside the tenant's dataset acme_corp`),
  },
  {
    name: "globex's payroll, backquoted with the project",
    sql: `SELECT * FROM \`${P}.${VICTIM}.payroll\``,
    refusal: /reads demo-project\.globex_inc\.payroll/,
  },
  {
    name: 'the API keys',
    sql: 'SELECT api_key_hash FROM tenants.tenant_api_keys',
    refusal: /reads demo-project\.tenants\.tenant_api_keys/,
  },
  {
    name: 'the cloud credentials',
    sql: 'SELECT * FROM `tenants.tenant_cloud_credentials`',
    refusal: /reads demo-project\.tenants\.tenant_cloud_credentials/,
  },
  {
    name: "a CTE named like globex's table",
    sql: `WITH payroll AS (SELECT * FROM ${VICTIM}.payroll) SELECT * FROM payroll`,
    refusal: /reads demo-project\.globex_inc\.payroll/,
  },
  {
    name: "a CTE named like acme's own table",
    sql: `WITH events AS (SELECT * FROM ${VICTIM}.payroll) SELECT * FROM events`,
    refusal: /reads demo-project\.globex_inc\.payroll/,
  },
  {
    name: 'a subquery in WHERE',
    sql: `SELECT * FROM {{ ref('events') }} WHERE id IN (SELECT id FROM ${VICTIM}.payroll)`,
    refusal: /reads demo-project\.globex_inc\.payroll/,
  },
  {
    name: 'a UNION',
    sql: `SELECT id FROM {{ ref('events') }} UNION ALL SELECT id FROM ${VICTIM}.payroll`,
    refusal: /reads demo-project\.globex_inc\.payroll/,
  },
  {
    name: 'a join',
    sql: `SELECT e.id, p.salary FROM {{ ref('events') }} e JOIN ${VICTIM}.payroll p ON p.id = e.id`,
    refusal: /reads demo-project\.globex_inc\.payroll/,
  },
  {
    name: 'a script',
    sql: `SELECT 1 AS x;\nUPDATE tenants.tenant_api_keys SET status = 'REVOKED' WHERE tenant_id = '${VICTIM}'`,
    refusal: /holds several statements \(a script\)/,
  },
  {
    name: 'the wrapper-closing injection',
    sql: `SELECT * FROM {{ ref('events') }} WHERE id IN (1)); COMMIT TRANSACTION; DROP SCHEMA ${VICTIM} CASCADE; SELECT (1`,
    refusal: /holds several statements|BigQuery cannot run it/,
  },
  {
    name: 'an UPDATE of the keys',
    sql: `UPDATE tenants.tenant_api_keys SET status = 'REVOKED' WHERE tenant_id = '${VICTIM}'`,
    refusal: /found a UPDATE statement, not a query/,
  },
  { name: 'DROP SCHEMA', sql: `DROP SCHEMA ${VICTIM} CASCADE`, refusal: /found a DROP_SCHEMA statement, not a query/ },
  {
    name: 'CREATE TABLE AS SELECT',
    sql: `CREATE TABLE ${ATTACKER}.stolen AS SELECT * FROM ${VICTIM}.payroll`,
    refusal: /found a CREATE_TABLE_AS_SELECT statement/,
  },
  {
    name: 'a table function',
    sql: "SELECT * FROM read_csv('/etc/passwd')",
    refusal: /BigQuery cannot run it: Table-valued function not found: read_csv/,
  },
  {
    name: 'an unqualified table',
    sql: 'SELECT * FROM payroll',
    refusal: /BigQuery cannot run it: Table "payroll" must be qualified with a dataset/,
  },
];

const dqAttacks: Array<{ name: string; expr: string; refusal: RegExp }> = [
  {
    name: "a subquery reading globex's payroll",
    expr: `amount > (SELECT COUNT(*) FROM ${VICTIM}.payroll)`,
    refusal: /reads demo-project\.globex_inc\.payroll; an expression reads only its own row/,
  },
  { name: "the engine's parameters", expr: 'amount > @p0', refusal: /BigQuery cannot run it: Query parameter 'p0' not found/ },
  { name: 'a second statement', expr: `amount > 0; DROP SCHEMA ${VICTIM} CASCADE`, refusal: /not one expression/ },
  { name: 'text that closes its parentheses and goes on', expr: 'amount > 0) AS a, (amount', refusal: /not one expression/ },
];

async function refusedEverywhere(id: string, refusal: RegExp, where: RegExp, marker: string) {
  const before = await guarded();
  const report = await withContext(root, (ctx) => validateConfigs(ctx, { tenantId: ATTACKER }), { env: 'cloud' });
  assert.equal(report.ok, false);
  const problems = report.files.flatMap((f) => f.errors).join('\n');
  assert.match(problems, where);
  assert.match(problems, refusal);
  await withContext(
    root,
    async (ctx) => {
      const err = await rejectsWith(runPipeline(ctx, { tenantId: ATTACKER, pipelineId: id }), 2, refusal);
      assert.match(err.code, /^TENANT_SQL_(REFUSED|INVALID)$/);
      for (const text of [CANARY.payroll, CANARY.credential, apiKey]) assert.ok(!err.message.includes(text));
    },
    { env: 'cloud' },
  );
  assert.deepEqual(executedWith(marker), [], 'only dry runs saw the SQL');
  assert.deepEqual(await guarded(), before, "globex's data, keys and credentials are unchanged, and no run row was written");
}

describe("a tenant's SQL reads only its own dataset (BigQuery dry run)", () => {
  for (const [index, attack] of sqlAttacks.entries()) {
    it(`refuses ${attack.name} in a transform (exit 2)`, async () => {
      const id = `p_bq_${index}`;
      const marker = `attack_marker_${index}`;
      await writeFile(acme('sql', `attack_${index}.sql`), `-- ${marker}\n${attack.sql}\n`);
      await writeFile(acme('pipelines', `${id}.yml`), transformPipeline(id, `sql/attack_${index}.sql`));
      try {
        await refusedEverywhere(id, attack.refusal, new RegExp(`configs/acme_corp/sql/attack_${index}\\.sql: `), marker);
      } finally {
        await Promise.all([rm(acme('sql', `attack_${index}.sql`)), rm(acme('pipelines', `${id}.yml`))]);
      }
    });
  }

  for (const [index, attack] of dqAttacks.entries()) {
    it(`refuses ${attack.name} in a DQ expression (exit 2)`, async () => {
      const id = `p_bq_dq_${index}`;
      await writeFile(acme('pipelines', `${id}.yml`), dqPipeline(id, attack.expr));
      try {
        await refusedEverywhere(
          id,
          attack.refusal,
          new RegExp(`configs/acme_corp/pipelines/${id}\\.yml: steps\\.0 \\(check\\): dq rule`),
          attack.expr,
        );
      } finally {
        await rm(acme('pipelines', `${id}.yml`));
      }
    });
  }

  it("runs ordinary SQL over the tenant's own tables, with a CTE named like another tenant's table", async () => {
    await writeFile(
      acme('sql', 'ok.sql'),
      `-- own rows\nWITH payroll AS (SELECT id, amount FROM {{ ref('events') }})\nSELECT id, amount, 'DROP SCHEMA ${VICTIM}; --' AS note FROM payroll -- trailing\n`,
    );
    await writeFile(
      acme('pipelines', 'p_bq_ok.yml'),
      `${transformPipeline('p_bq_ok', 'sql/ok.sql')}  - name: check\n    type: dq\n    table: p_bq_ok\n    rules:\n      - { check: expression, expr: "amount > 0 AND note LIKE '%DROP%' # fine" }\n`,
    );
    const before = (await guarded()) as Record<string, unknown>;
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_bq_ok' }), { env: 'cloud' });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const rows = await withContext(
      root,
      async (ctx) => (await ctx.backends.warehouse()).select(ATTACKER, 'p_bq_ok', { orderBy: [['id', 'asc']] }),
      {
        env: 'cloud',
      },
    );
    assert.deepEqual(rows, [
      { id: 1, amount: 2.5, note: `DROP SCHEMA ${VICTIM}; --` },
      { id: 2, amount: 4, note: `DROP SCHEMA ${VICTIM}; --` },
    ]);
    const after = (await guarded()) as Record<string, unknown>;
    assert.deepEqual({ ...after, runs: before['runs'] }, before);
  });
});

describe('tenant jobs under their own service account (tenant_service_account)', () => {
  it('turns {tenant} into a valid account id, and refuses a template that cannot be one', async () => {
    assert.equal(tenantServiceAccount(SA_TEMPLATE, ATTACKER), ACME_SA);
    assert.throws(
      () => tenantServiceAccount(`t-{tenant}@${CLOUD_PROJECT}.iam.gserviceaccount.com`, 'a_tenant_id_far_too_long_for_an_account'),
      /is not a valid service account id/,
    );
  });

  it("runs a tenant's warehouse jobs with a token minted for its account, and the platform's without", async () => {
    const mark = fakes.bigquery.requests.length;
    await writeFile(acme('sql', 'sa.sql'), "SELECT id FROM {{ ref('events') }}\n");
    await writeFile(acme('pipelines', 'p_bq_sa.yml'), transformPipeline('p_bq_sa', 'sql/sa.sql'));
    const summary = await withContext(root, (ctx) => runPipeline(ctx, { tenantId: ATTACKER, pipelineId: 'p_bq_sa' }), { env: 'tenant_sa' });
    assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
    const { minted } = fakes.iamCredentials;
    assert.ok(minted.includes(ACME_SA), `a token was minted for ${ACME_SA}: ${minted.join(', ')}`);

    const requests = fakes.bigquery.requests.slice(mark);
    // Jobs, and short queries (jobs.query) that run without one.
    const jobs = requests.filter((r) => r.route === 'jobs.insert' || r.route === 'jobs.query');
    const tenantJobs = jobs.filter((r) => JSON.stringify(r.body).includes(`"tenant_id":"${ATTACKER}"`));
    assert.ok(tenantJobs.length >= 2, 'the check and the transform ran as jobs');
    for (const r of tenantJobs) assert.equal(r.authorization, `Bearer ${accessTokenFor(ACME_SA)}`, JSON.stringify(r.body));
    // Run rows, step logs and locks are the platform's: written with the environment's own credentials.
    const metadataWrites = jobs.filter((r) => JSON.stringify(r.body).includes('tenant_pipeline_runs'));
    assert.ok(metadataWrites.length > 0);
    for (const r of metadataWrites) assert.notEqual(r.authorization, `Bearer ${accessTokenFor(ACME_SA)}`);
  });
});
