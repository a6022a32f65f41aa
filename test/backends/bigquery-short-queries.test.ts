/**
 * Short metadata queries on BigQuery are one jobs.query request each (jobCreationMode
 * JOB_CREATION_OPTIONAL): answered without a job, labelled and parameterised like a job; and when
 * BigQuery makes a job of one anyway (a script, a large result, a long run) the adapter polls and
 * pages that job as before. Proven through @google-cloud/bigquery against the REST fake, whose
 * jobs.query follows the same rules.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { BigQueryWarehouse } from '../../src/backends/warehouse/bigquery/index.ts';
import { bootstrap } from '../../src/services/bootstrap.ts';
import { installExample } from '../../src/services/example.ts';
import { createTenant, showTenant } from '../../src/services/tenants.ts';
import { FakeBigQuery, fakeClient, type FakeBigQueryOptions } from '../fakes/bigquery/index.ts';
import { startCloudFakes, type CloudFakes } from '../fakes/cloud.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newWorkspace, withContext } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

const DS = 'acme_corp';
const JOB_ROUTES = ['jobs.insert', 'jobs.get', 'jobs.getQueryResults'];

async function setup(fakeOptions: FakeBigQueryOptions = {}) {
  const fake = await FakeBigQuery.start({ projectId: 'proj-1', ...fakeOptions });
  const wh = new BigQueryWarehouse({
    client: await fakeClient(fake),
    project: fake.projectId,
    location: 'EU',
    labels: { tenant_id: 'acme_corp' },
    retry: { attempts: 4, baseDelayMs: 2, maxDelayMs: 10 },
  });
  await wh.createDataset(DS);
  await wh.createTable(DS, {
    name: 'people',
    fields: [
      { name: 'id', type: 'INT64', mode: 'REQUIRED' },
      { name: 'name', type: 'STRING' },
    ],
  });
  return { fake, wh };
}

/** The requests `work` sends, by route. */
async function routesOf(fake: FakeBigQuery, work: () => Promise<unknown>): Promise<string[]> {
  const first = fake.requests.length;
  await work();
  return fake.requests.slice(first).map((r) => r.route);
}

describe('BigQuery short queries: one jobs.query request each', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  afterEach(() => s.fake.stop());

  it('inserts, selects, counts, updates and deletes in one request each, with no job left behind', async () => {
    s = await setup();
    const jobsBefore = s.fake.jobs.size;
    assert.deepEqual(
      await routesOf(s.fake, () =>
        s.wh.insert(DS, 'people', [
          { id: 1, name: 'ada' },
          { id: 2, name: 'bob' },
        ]),
      ),
      // The table's schema first (tables.get, cached from then on), to type the parameters.
      ['tables.get', 'jobs.query'],
    );
    // The schema is cached: a select is the query alone.
    let rows: unknown;
    assert.deepEqual(await routesOf(s.fake, async () => (rows = await s.wh.select(DS, 'people', { orderBy: [['id', 'asc']] }))), [
      'jobs.query',
    ]);
    assert.deepEqual(rows, [
      { id: 1, name: 'ada' },
      { id: 2, name: 'bob' },
    ]);
    let counted: unknown;
    assert.deepEqual(await routesOf(s.fake, async () => (counted = await s.wh.count(DS, 'people'))), ['jobs.query']);
    assert.equal(counted, 2);
    let updated: unknown;
    assert.deepEqual(await routesOf(s.fake, async () => (updated = await s.wh.update(DS, 'people', { name: 'cy' }, { id: 2 }))), [
      'jobs.query',
    ]);
    assert.equal(updated, 1, 'numDmlAffectedRows of the answer');
    let deleted: unknown;
    assert.deepEqual(await routesOf(s.fake, async () => (deleted = await s.wh.delete(DS, 'people', { id: 1 }))), ['jobs.query']);
    assert.equal(deleted, 1);
    assert.equal(s.fake.jobs.size, jobsBefore, 'BigQuery kept no job for them');
  });

  it('sends labels, typed parameters, the location and JOB_CREATION_OPTIONAL with every short query', async () => {
    s = await setup();
    await s.wh.query('SELECT @name AS name, @n AS n', { name: 'ada', n: 3 });
    const [sent] = s.fake.queriesSent().slice(-1);
    assert.ok(sent);
    assert.equal(sent.request.route, 'jobs.query');
    assert.equal(sent.jobCreationMode, 'JOB_CREATION_OPTIONAL');
    assert.equal((sent.request.body as { location?: string }).location, 'EU');
    assert.deepEqual(sent.labels, { app: 'convergence', tenant_id: 'acme_corp' });
    assert.deepEqual(
      sent.queryParameters?.map((p) => [p.name, p.parameterType.type, p.parameterValue.value]),
      [
        ['name', 'STRING', 'ada'],
        ['n', 'INT64', '3'],
      ],
    );
    assert.match(sent.requestId ?? '', /^[0-9a-f-]{36}$/);
  });

  it('does not apply a write twice when its answer was lost: the retry carries the same requestId', async () => {
    s = await setup();
    s.fake.inject({ route: 'jobs.query', when: (r) => /^INSERT/.test(String((r.body as { query?: string }).query)), after: true });
    await s.wh.insert(DS, 'people', [{ id: 7, name: 'ada' }]);
    const inserts = s.fake.queriesSent().filter((q) => /^INSERT/.test(q.query));
    assert.deepEqual(
      inserts.map((q) => q.request.status),
      [500, 200],
    );
    assert.equal(inserts[0]!.requestId, inserts[1]!.requestId);
    assert.equal(await s.wh.count(DS, 'people'), 1, 'the row was written once');
  });

  it('polls and reads the job BigQuery creates for a script', async () => {
    s = await setup();
    const jobsBefore = s.fake.jobs.size;
    const routes = await routesOf(s.fake, () =>
      s.wh.atomic([
        { kind: 'insert', dataset: DS, table: 'people', rows: [{ id: 1, name: 'ada' }] },
        { kind: 'update', dataset: DS, table: 'people', set: { name: 'bo' }, where: { id: 1 } },
      ]),
    );
    assert.deepEqual(routes, ['tables.get', 'jobs.query']);
    assert.equal(s.fake.jobs.size, jobsBefore + 1, 'the script ran as a job, listed like any other');
    const [listed] = (await (await fakeClient(s.fake)).getJobs({ maxResults: 1 }))[0];
    assert.match(String(listed?.metadata?.configuration?.query?.query), /BEGIN TRANSACTION/);
    assert.deepEqual(await s.wh.select(DS, 'people'), [{ id: 1, name: 'bo' }]);
  });

  it('pages through the job BigQuery creates for a result larger than one answer', async () => {
    s = await setup({ pageSize: 3 });
    await s.wh.insert(
      DS,
      'people',
      Array.from({ length: 8 }, (_, i) => ({ id: i + 1, name: `p${i + 1}` })),
    );
    let rows: Array<Record<string, unknown>> = [];
    const routes = await routesOf(s.fake, async () => (rows = await s.wh.select(DS, 'people', { orderBy: [['id', 'asc']] })));
    assert.deepEqual(routes, ['jobs.query', 'jobs.getQueryResults', 'jobs.getQueryResults']);
    assert.deepEqual(
      rows.map((r) => r['id']),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  });

  it('waits for the job BigQuery creates for a query that outlasts the request, then reads it', async () => {
    s = await setup({ pendingPolls: 2 });
    await s.wh.insert(DS, 'people', [{ id: 1, name: 'ada' }]);
    let rows: unknown;
    const routes = await routesOf(s.fake, async () => (rows = await s.wh.select(DS, 'people')));
    assert.deepEqual(routes, ['jobs.query', 'jobs.get', 'jobs.get', 'jobs.getQueryResults']);
    assert.deepEqual(rows, [{ id: 1, name: 'ada' }]);
    assert.equal(await s.wh.update(DS, 'people', { name: 'bo' }, { id: 1 }), 1, 'the job statistics give the DML count');
  });

  it('the fake refuses an unknown jobCreationMode and a requestId longer than 36 characters, as BigQuery does', async () => {
    s = await setup();
    const client = await fakeClient(s.fake, { retryOptions: { maxRetries: 0 } });
    const send = (json: Record<string, unknown>) =>
      new Promise((resolve, reject) =>
        client.request({ method: 'POST', uri: '/queries', json: { query: 'SELECT 1', useLegacySql: false, ...json } }, (err, body) =>
          err ? reject(err) : resolve(body),
        ),
      );
    await assert.rejects(send({ jobCreationMode: 'JOB_CREATION_SOMETIMES' }), /job_creation_mode/);
    await assert.rejects(send({ requestId: 'x'.repeat(37) }), /requestId/);
    const answer = (await send({ jobCreationMode: 'JOB_CREATION_OPTIONAL' })) as Record<string, unknown>;
    assert.equal(answer['jobReference'], undefined);
    assert.equal(answer['jobComplete'], true);
    assert.match(String(answer['queryId']), /\S/);
    const required = (await send({ jobCreationMode: 'JOB_CREATION_REQUIRED' })) as Record<string, unknown>;
    assert.deepEqual(required['jobCreationReason'], { code: 'REQUESTED' });
  });
});

describe('BigQuery short queries: an answer with rows left over but no job', () => {
  let server: http.Server;
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is an error rather than a silently short result', async () => {
    // A BigQuery that breaks the documented contract, which no fake of the real service would do.
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'bigquery#queryResponse',
          queryId: 'q1',
          jobComplete: true,
          schema: { fields: [{ name: 'n', type: 'INTEGER' }] },
          rows: [{ f: [{ v: '1' }] }],
          pageToken: '1',
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { BigQuery } = await import('@google-cloud/bigquery');
    const { PassThroughClient } = await import('google-auth-library');
    const wh = new BigQueryWarehouse({
      client: new BigQuery({
        projectId: 'proj-1',
        apiEndpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        authClient: new PassThroughClient(),
      }),
      project: 'proj-1',
      location: 'EU',
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    await rejectsWith(wh.query('SELECT 1 AS n'), 1, /neither all its results nor a job/);
  });
});

describe('BigQuery short queries: a command on a cloud environment', () => {
  let fakes: CloudFakes;
  let root: string;
  before(async () => {
    fakes = await startCloudFakes({ pointProcess: true });
    root = await newWorkspace('short-queries');
    await appendFile(path.join(root, 'convergence.yaml'), fakes.yaml('cloud'));
    await installExample(root);
    await withContext(
      root,
      async (ctx) => {
        await bootstrap(ctx);
        await createTenant(ctx, { tenantId: DS, name: 'ACME', plan: 'scale' });
      },
      { env: 'cloud' },
    );
  });
  after(async () => {
    await fakes?.stop();
    await cleanupAll();
  });

  it('tenant show reads its metadata with one request per query and creates no job', async () => {
    const jobsBefore = fakes.bigquery.jobs.size;
    const routes = await routesOf(fakes.bigquery, () => withContext(root, (ctx) => showTenant(ctx, DS), { env: 'cloud' }));
    const queries = routes.filter((r) => r === 'jobs.query').length;
    assert.ok(queries >= 3, `tenant show reads the tenant, its quota and its keys: ${routes.join(', ')}`);
    assert.deepEqual(
      routes.filter((r) => JOB_ROUTES.includes(r)),
      [],
      'no jobs.insert, jobs.get or getQueryResults',
    );
    assert.equal(fakes.bigquery.jobs.size, jobsBefore);
  });
});
