/**
 * A tenant's gs:// file sources reach only the gs:// prefixes the operator lists for it in
 * file_roots (here gs://<exports>/{tenant}/), on the embedded default and on BigQuery alike:
 * acme_corp's sources naming globex_inc's prefix, the whole bucket, a prefix that merely starts
 * like its own, another bucket or the environment's state bucket are refused (exit 2) by
 * `pipeline validate` and by `pipeline run` before anything is listed, and no request for
 * globex_inc's objects reaches Cloud Storage or BigQuery. With tenant_service_account set, the
 * objects are listed as the tenant's own account, so bucket IAM bounds them too.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { runPipeline } from '../../src/services/pipelines/run.ts';
import { validateConfigs } from '../../src/services/pipelines/validate.ts';
import { createTenant } from '../../src/services/tenants.ts';
import { CLOUD_BUCKET, CLOUD_DATA_BUCKET, CLOUD_PROJECT, startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { listFileRoots } from '../helpers/file-roots.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const ATTACKER = 'acme_corp';
const VICTIM = 'globex_inc';
const PAYROLL = 'GLOBEX_PAYROLL_4f9a1c';
const ACME_SA = `tenant-acme-corp@${CLOUD_PROJECT}.iam.gserviceaccount.com`;
const ENVS = ['local', 'cloud'] as const;

let fakes: CloudFakes;
let root: string;

before(async () => {
  fakes = await startCloudFakes({ pointProcess: true });
  root = await newWorkspace('gcs-paths');
  await appendFile(
    path.join(root, 'convergence.yaml'),
    `${fakes.yaml('cloud')}${fakes.yaml('tenant_sa')}    tenant_service_account: "tenant-{tenant}@${CLOUD_PROJECT}.iam.gserviceaccount.com"\n`,
  );
  await listFileRoots(root, [`gs://${CLOUD_DATA_BUCKET}/{tenant}/`], 'local');
  for (const env of ['local', 'cloud']) {
    await withContext(
      root,
      async (ctx) => {
        await bootstrap(ctx);
        for (const tenantId of [ATTACKER, VICTIM]) await createTenant(ctx, { tenantId, name: tenantId, plan: 'scale' });
      },
      { env },
    );
  }
  fakes.gcs.putObject(CLOUD_DATA_BUCKET, `${VICTIM}/payroll/payroll_1.csv`, `id,amount\n1,${PAYROLL}\n`);
  fakes.gcs.putObject(CLOUD_DATA_BUCKET, `${ATTACKER}/orders/day_1.csv`, 'id,amount\n1,2.5\n2,4\n');
  const dir = path.join(root, 'configs', ATTACKER);
  await mkdir(path.join(dir, 'schemas'), { recursive: true });
  await writeFile(
    path.join(dir, 'schemas', 'orders.json'),
    JSON.stringify([
      { name: 'id', type: 'INT64' },
      { name: 'amount', type: 'STRING' },
    ]),
  );
});
after(async () => {
  await fakes.stop();
  await cleanupAll();
});

/** acme_corp's pipeline `id`, ingesting `sourcePath` into a table of the same name; returns the source file. */
async function pipeline(id: string, sourcePath: string): Promise<string> {
  const dir = path.join(root, 'configs', ATTACKER);
  const source = path.join(dir, 'sources', `${id}.yml`);
  await writeFile(source, `source_id: ${id}\ntype: file\npath: ${JSON.stringify(sourcePath)}\nformat: csv\nschema: schemas/orders.json\n`);
  await writeFile(
    path.join(dir, 'pipelines', `${id}.yml`),
    `pipeline_id: ${id}\nsteps:\n  - { name: ingest, type: ingest, source_config: sources/${id}.yml, destination: { table: ${id} } }\n`,
  );
  return source;
}

const run = (id: string, env: string) =>
  withContext(root, (ctx) => runPipeline(ctx, { tenantId: ATTACKER, pipelineId: id, runDate: '2025-01-31' }), { env });
const tables = (env: string) => withContext(root, async (ctx) => (await ctx.backends.warehouse()).listTables(ATTACKER), { env });
const victimRequests = () =>
  fakes.gcs.requests.filter((r) => r.path.includes(`/o/${VICTIM}`) || (r.query['prefix'] ?? '').startsWith(VICTIM.slice(0, 3)));
/** BigQuery jobs that read Cloud Storage objects: queries over a temporary external table of their URIs. */
const objectLoads = () =>
  [...fakes.bigquery.jobs.values()].filter((j) =>
    Object.values(
      (j as { configuration?: { query?: { tableDefinitions?: Record<string, { sourceUris?: unknown }> } } }).configuration?.query
        ?.tableDefinitions ?? {},
    ).some((table) => table.sourceUris),
  );

const ALLOWED = new RegExp(`allowed prefixes: gs://${CLOUD_DATA_BUCKET}/${ATTACKER}/`);
const ATTACKS = [
  {
    id: 'victim_prefix',
    path: `gs://${CLOUD_DATA_BUCKET}/${VICTIM}/payroll/payroll_*.csv`,
    refusal: /is not under a gs:\/\/ prefix listed in file_roots/,
  },
  { id: 'whole_bucket', path: `gs://${CLOUD_DATA_BUCKET}/*`, refusal: /is not under a gs:\/\/ prefix listed in file_roots/ },
  { id: 'like_own', path: `gs://${CLOUD_DATA_BUCKET}/${ATTACKER}*`, refusal: /is not under a gs:\/\/ prefix listed in file_roots/ },
  { id: 'upper_scheme', path: `GS://${CLOUD_DATA_BUCKET}/${VICTIM}/payroll/payroll_1.csv`, refusal: /is not under a gs:\/\/ prefix/ },
  { id: 'other_bucket', path: 'gs://globex-private-exports/payroll_1.csv', refusal: /is not under a gs:\/\/ prefix listed in file_roots/ },
  {
    id: 'dot_dot',
    path: `gs://${CLOUD_DATA_BUCKET}/${ATTACKER}/../${VICTIM}/payroll/payroll_1.csv`,
    refusal: /contains "\." or "\.\." as a path segment/,
  },
] as const;

describe("gs:// sources outside the tenant's prefixes are refused on both warehouses", () => {
  for (const attack of ATTACKS) {
    for (const env of ENVS) {
      it(`${attack.id} (${attack.path}) on ${env}: validate names file and line, run exits 2 before listing`, async () => {
        const source = await pipeline(attack.id, attack.path);
        const gcsMark = fakes.gcs.requests.length;
        const { files } = await withContext(root, (ctx) => validateConfigs(ctx, { file: source }), { env });
        assert.equal(files[0]!.errors.length, 1, String(files[0]!.errors));
        assert.match(files[0]!.errors[0]!, new RegExp(`^configs/${ATTACKER}/sources/${attack.id}\\.yml:3:7: path: `));
        assert.match(files[0]!.errors[0]!, attack.refusal);
        await assert.rejects(run(attack.id, env), (err: { exitCode?: number; message?: string }) => {
          assert.equal(err.exitCode, 2, err.message);
          assert.match(err.message ?? '', attack.refusal);
          return true;
        });
        assert.deepEqual(fakes.gcs.requests.slice(gcsMark), [], 'nothing was listed or read');
        assert.ok(!(await tables(env)).includes(attack.id), 'no destination table was made');
      });
    }
  }

  it('names the prefixes the tenant may read when it names another', async () => {
    const source = await pipeline('victim_hint', `gs://${CLOUD_DATA_BUCKET}/${VICTIM}/x.csv`);
    const { files } = await withContext(root, (ctx) => validateConfigs(ctx, { file: source }), { env: 'cloud' });
    assert.match(files[0]!.errors[0]!, ALLOWED);
  });

  it("refuses the environment's state bucket even when a root lists it", async () => {
    const own = await newWorkspace('gcs-state');
    await appendFile(path.join(own, 'convergence.yaml'), fakes.yaml('cloud'));
    await listFileRoots(own, [`gs://${CLOUD_BUCKET}/`], 'cloud');
    const dir = path.join(own, 'configs', ATTACKER, 'sources');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'locks.yml'), `source_id: locks\ntype: file\npath: gs://${CLOUD_BUCKET}/locks/*\nformat: ndjson\n`);
    const { files } = await withContext(own, (ctx) => validateConfigs(ctx, { file: path.join(dir, 'locks.yml') }), { env: 'cloud' });
    assert.match(files[0]!.errors[0] ?? '', /lies in the environment's state bucket, which no tenant's file source may read/);
  });

  it("never asked Cloud Storage or BigQuery for globex_inc's objects", () => {
    assert.deepEqual(victimRequests(), []);
    assert.deepEqual(
      objectLoads().filter((j) => JSON.stringify(j).includes(VICTIM)),
      [],
    );
  });
});

describe("the tenant's own prefix", () => {
  for (const env of ENVS) {
    it(`loads on ${env}`, async () => {
      await pipeline('own_orders', `gs://${CLOUD_DATA_BUCKET}/${ATTACKER}/orders/day_*.csv`);
      const summary = await run('own_orders', env);
      assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
      assert.equal(summary.steps[0]!.rowsOut, 2);
    });
  }

  it("is listed and loaded as the tenant's own service account where tenant_service_account is set", async () => {
    // Only acme_corp's account holds a role on the bucket: the environment's own credentials are refused.
    fakes.gcs.deny(CLOUD_DATA_BUCKET, { grantedTo: [ACME_SA] });
    try {
      await pipeline('sa_orders', `gs://${CLOUD_DATA_BUCKET}/${ATTACKER}/orders/day_*.csv`);
      await withContext(root, (ctx) => bootstrap(ctx), { env: 'tenant_sa' });
      const loads = objectLoads().length;
      const summary = await run('sa_orders', 'tenant_sa');
      assert.equal(summary.status, 'COMPLETE', JSON.stringify(summary.error));
      // BigQuery read the objects itself, as the job's principal (the BigQuery fake asks the GCS fake as that caller).
      assert.equal(objectLoads().length, loads + 1);
      assert.ok(fakes.iamCredentials.minted.includes(ACME_SA));
      const refused = await run('sa_orders', 'cloud');
      assert.equal(refused.status, 'FAILED');
      assert.equal(refused.error?.code, 'PERMISSION_DENIED');
      assert.match(refused.error?.message ?? '', /does not have storage\.objects\.list access/);
    } finally {
      fakes.gcs.allow(CLOUD_DATA_BUCKET);
    }
  });
});
