/**
 * What only the BigQuery warehouse has to get right, proven through @google-cloud/bigquery against
 * the REST fake: one load job per load, deterministic and adoptable job ids, retries of HTTP and
 * job failures, permission and not-found errors, job labels, partitioning and clustering, paging,
 * polling, and every type on the way in and out.
 */
import '../fakes/env-guard.ts';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import pl from 'nodejs-polars';
import { BigQueryWarehouse, type BigQueryWarehouseOptions } from '../../src/backends/warehouse/bigquery/index.ts';
import type { FieldSpec, LoadRequest } from '../../src/backends/warehouse/port.ts';
import { runDataQuality } from '../../src/engine/dq/index.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN } from '../../src/backends/warehouse/staged.ts';
import { POLARS_TYPE } from '../../src/engine/staging/typing.ts';
import { FakeBigQuery, fakeClient, type FakeBigQueryOptions, type LoggedRequest } from '../fakes/bigquery/index.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { writeStaged, type StagedRow } from '../helpers/staged.ts';

const USAGE: FieldSpec[] = [
  { name: 'day', type: 'DATE' },
  { name: 'model', type: 'STRING' },
  { name: 'tokens', type: 'INT64' },
];
const RUN = '3f2b8c1e-0d4a-4c8e-9a51-7b2e6f1d9c00';
const DS = 'acme_corp';

interface Setup {
  fake: FakeBigQuery;
  wh: BigQueryWarehouse;
}

async function setup(fakeOptions: FakeBigQueryOptions = {}, options: Partial<BigQueryWarehouseOptions> = {}): Promise<Setup> {
  const fake = await FakeBigQuery.start({ projectId: 'proj-1', ...fakeOptions });
  const wh = new BigQueryWarehouse({
    client: await fakeClient(fake),
    project: fake.projectId,
    location: 'EU',
    labels: { tenant_id: 'acme_corp', pipeline_id: 'p_usage_daily' },
    retry: { attempts: 4, baseDelayMs: 2, maxDelayMs: 10 },
    ...options,
  });
  return { fake, wh };
}

const body = (r: LoggedRequest) =>
  r.body as { jobReference?: { jobId?: string }; configuration?: Record<string, unknown> & { labels?: Record<string, string> } };
const jobIdOf = (r: LoggedRequest) => body(r).jobReference?.jobId ?? '';
const uploads = (fake: FakeBigQuery) => fake.requestsTo('jobs.insert').filter((r) => r.path.startsWith('/upload/'));
const isMerge = (r: LoggedRequest) => /_merge_/.test(jobIdOf(r));

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bigquery-specific-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const staged = async (rows: StagedRow[], fields = USAGE, sourceFile?: string) => ({
  kind: 'parquet' as const,
  files: [await writeStaged(dir, `part-${n++}`, fields, rows, sourceFile)],
  fields,
});
const row = (day: string, model: string, tokens: number | null, reason?: string): StagedRow => ({
  values: { day, model, tokens },
  ...(reason ? { reason } : {}),
});

describe('BigQuery warehouse: loads', () => {
  let s: Setup;
  beforeEach(async () => {
    s = await setup();
    await s.wh.createDataset(DS);
  });
  afterEach(() => s.fake.stop());

  const load = (over: Partial<LoadRequest> & Pick<LoadRequest, 'source'>) =>
    s.wh.load({ dataset: DS, table: 'usage', writeMode: 'append', runId: RUN, ...over });

  it('loads 1,000,000 staged rows with exactly one load job', async () => {
    const rows: StagedRow[] = Array.from({ length: 1_000_000 }, (_, i) => ({
      values: { day: `2025-01-${String((i % 28) + 1).padStart(2, '0')}`, model: `m${i % 7}`, tokens: i },
      ...(i % 100_000 === 99_999 ? { reason: `tokens: row ${i} rejected` } : {}),
    }));
    const result = await load({ source: await staged(rows) });
    assert.equal(uploads(s.fake).length, 1);
    const loadJobs = [...s.fake.jobs.values()].filter((j) => j.configuration.load);
    assert.equal(loadJobs.length, 1);
    assert.equal((loadJobs[0]!.statistics['load'] as { outputRows: string }).outputRows, '1000000');
    assert.deepEqual(
      { loaded: result.rowsLoaded, inserted: result.rowsInserted, quarantined: result.rowsQuarantined, created: result.created },
      { loaded: 999_990, inserted: 999_990, quarantined: 10, created: true },
    );
    assert.equal(await s.wh.count(DS, 'usage'), 999_990);
    assert.equal(await s.wh.count(DS, 'usage__quarantine'), 10);
    // The staging table is gone once the load committed; the load's outcome is kept beside the data.
    assert.deepEqual((await s.wh.listTables(DS)).sort(), ['_convergence_loads', 'usage', 'usage__quarantine']);
  });

  it('uploads several staged parts as one load job, the last occurrence of a key winning across parts', async () => {
    const first = await writeStaged(dir, `part-${n++}`, USAGE, [row('2025-01-01', 'a', 1), row('2025-01-01', 'b', 2)], 'data/a.csv');
    const second = await writeStaged(dir, `part-${n++}`, USAGE, [row('2025-01-01', 'a', 10), row('2025-01-02', 'c', 3)], 'data/b.csv');
    const result = await load({
      writeMode: 'merge',
      mergeKeys: ['day', 'model'],
      source: { kind: 'parquet', files: [first, second], fields: USAGE },
    });
    assert.equal(uploads(s.fake).length, 1);
    assert.equal(result.rowsInserted, 3);
    const rows = await s.wh.select(DS, 'usage', { orderBy: [['model', 'asc']] });
    assert.deepEqual(
      rows.map((r) => `${String(r['model'])}=${String(r['tokens'])}`),
      ['a=10', 'b=2', 'c=3'],
    );
  });

  it('names load jobs after the run, table and input, and runs a committed load only once', async () => {
    const source = await staged([row('2025-01-01', 'a', 1), row('2025-01-02', 'b', 2)]);
    const first = await load({ source });
    const stageIds = uploads(s.fake).map(jobIdOf);
    const mergeIds = s.fake.requestsTo('jobs.insert').filter(isMerge).map(jobIdOf);
    assert.equal(stageIds.length, 1);
    assert.equal(mergeIds.length, 1);
    assert.match(stageIds[0]!, new RegExp(`^convergence_${RUN}_usage_stage_[0-9a-f]{16}$`));
    assert.match(mergeIds[0]!, new RegExp(`^convergence_${RUN}_usage_merge_[0-9a-f]{16}$`));

    // The same input again in the same run: a retry of a load that already committed.
    const again = await load({ source });
    assert.deepEqual(again, { ...first, created: false });
    assert.equal(uploads(s.fake).length, 1, 'no second upload');
    assert.equal(s.fake.requestsTo('jobs.insert').filter(isMerge).length, 1, 'no second merge');
    assert.equal(await s.wh.count(DS, 'usage'), 2);

    // Different input in the same run gets jobs of its own.
    await load({ source: await staged([row('2025-01-03', 'c', 3)]) });
    const ids = new Set(s.fake.requestsTo('jobs.insert').filter(isMerge).map(jobIdOf));
    assert.equal(ids.size, 2);
    assert.equal(await s.wh.count(DS, 'usage'), 3);
  });

  it("is still a no-op with the same counts when the committed load's results have expired", async () => {
    const source = await staged([row('2025-01-01', 'a', 1), row('2025-01-02', 'b', 2, 'tokens: bad')]);
    const first = await load({ source });
    assert.deepEqual([first.rowsInserted, first.rowsQuarantined], [1, 1]);
    const [merge] = s.fake.requestsTo('jobs.insert').filter(isMerge).map(jobIdOf);
    s.fake.expireResults(merge!);
    const again = await load({ source });
    assert.deepEqual(again, { ...first, created: false });
    assert.equal(s.fake.requestsTo('jobs.insert').filter(isMerge).length, 1, 'no second merge');
    assert.equal(await s.wh.count(DS, 'usage'), 1);
    // Without the kept outcome there is nothing to report: the expired results' notFound stands.
    await s.wh.query(`DELETE FROM \`${DS}._convergence_loads\` WHERE TRUE`);
    await rejectsWith(load({ source }), 8, /was not found/);
  });

  it('adopts a job whose insert response was lost instead of running it twice', async () => {
    // The merge runs, then its response is lost; the client sends the same job id again and gets 409.
    s.fake.inject({ route: 'jobs.insert', when: isMerge, after: true, status: 503, reason: 'backendError' });
    // The upload runs, then its response is lost; the adapter resends with the same id.
    s.fake.inject({ route: /^POST \/upload\//, after: true, status: 503, reason: 'backendError' });
    const result = await load({ source: await staged([row('2025-01-01', 'a', 1), row('2025-01-02', 'b', 2)]) });
    assert.equal(result.rowsInserted, 2);
    assert.equal(await s.wh.count(DS, 'usage'), 2);

    const merges = s.fake.requestsTo('jobs.insert').filter(isMerge);
    assert.deepEqual(
      merges.map((r) => r.status),
      [503, 409],
    );
    assert.equal(new Set(merges.map(jobIdOf)).size, 1);
    assert.equal(s.fake.executions.get(jobIdOf(merges[0]!)), 1);
    const ups = uploads(s.fake);
    assert.deepEqual(
      ups.map((r) => r.status),
      [503, 409],
    );
    assert.equal(s.fake.executions.get(jobIdOf(ups[0]!)), 1);
  });

  it('reruns a load whose transaction failed with fresh jobs, not with the dropped staging data', async () => {
    const source = await staged([row('2025-01-01', 'a', 1), row('2025-01-02', 'b', 2)]);
    s.fake.failJobs({ match: /BEGIN TRANSACTION/, reason: 'invalidQuery', message: 'Query error: injected' });
    await rejectsWith(load({ source }), 1, /injected/);
    assert.deepEqual(await s.wh.listTables(DS), []);

    const result = await load({ source });
    assert.equal(result.rowsInserted, 2);
    assert.equal(result.created, true);
    assert.equal(await s.wh.count(DS, 'usage'), 2);
    const stageIds = uploads(s.fake).map(jobIdOf);
    // The first stage job succeeded but its table was dropped with the failed load: it is not adopted.
    assert.deepEqual(
      uploads(s.fake).map((r) => r.status),
      [200, 409, 200],
    );
    assert.equal(stageIds[2], `${stageIds[0]}_r1`);
    const merges = s.fake.requestsTo('jobs.insert').filter(isMerge);
    assert.deepEqual(
      merges.map((r) => r.status),
      [200, 409, 200],
    );
  });

  it('adds several columns to an existing destination and decodes staged NUMERIC, BYTES and JSON into them', async () => {
    await load({ source: await staged([row('2025-01-01', 'a', 1)]) });
    const wider: FieldSpec[] = [
      ...USAGE,
      { name: 'cost', type: 'NUMERIC' },
      { name: 'raw', type: 'BYTES' },
      { name: 'meta', type: 'JSON' },
    ];
    const file = path.join(dir, `wider-${n++}.parquet`);
    pl.DataFrame([
      pl.Series('day', [new Date('2025-01-02T00:00:00Z')], pl.Date),
      pl.Series('model', ['b'], pl.Utf8),
      pl.Series('tokens', [2], pl.Int64),
      pl.Series('cost', ['0.125'], pl.Utf8),
      pl.Series('raw', [Buffer.from('hi').toString('base64')], pl.Utf8),
      pl.Series('meta', ['{"k":"v"}'], pl.Utf8),
      pl.Series(REASON_COLUMN, [null], pl.Utf8),
      pl.Series(SOURCE_FILE_COLUMN, ['in.csv'], pl.Utf8),
      pl.Series(SOURCE_ROW_COLUMN, [2], pl.Int64),
    ]).writeParquet(file);
    const result = await load({ source: { kind: 'parquet', files: [file], fields: wider } });
    assert.deepEqual(result.columnsAdded, ['cost', 'raw', 'meta']);
    assert.deepEqual(
      (await s.wh.getTableFields(DS, 'usage'))?.map((f) => `${f.name}:${f.type}`),
      ['day:DATE', 'model:STRING', 'tokens:INT64', 'cost:NUMERIC', 'raw:BYTES', 'meta:JSON'],
    );
    const rows = await s.wh.select(DS, 'usage', { orderBy: [['day', 'asc']], columns: ['cost', 'raw', 'meta'] });
    assert.deepEqual(rows, [
      { cost: null, raw: null, meta: null },
      { cost: 0.125, raw: Buffer.from('hi').toString('base64'), meta: '{"k":"v"}' },
    ]);
  });

  it('loads a JSON document with a number wider than FLOAT64 (rounded) and quarantines one BigQuery cannot read, without failing the load', async () => {
    const fields: FieldSpec[] = [
      { name: 'id', type: 'INT64' },
      { name: 'meta', type: 'JSON' },
    ];
    const file = path.join(dir, `json-${n++}.parquet`);
    pl.DataFrame([
      pl.Series('id', [1, 2, 3], pl.Int64),
      pl.Series('meta', ['{"share":0.12345678901234567890}', '{"k":"v"}', '{not json'], pl.Utf8),
      pl.Series(REASON_COLUMN, [null, null, null], pl.Utf8),
      pl.Series(SOURCE_FILE_COLUMN, ['in.ndjson', 'in.ndjson', 'in.ndjson'], pl.Utf8),
      pl.Series(SOURCE_ROW_COLUMN, [1, 2, 3], pl.Int64),
    ]).writeParquet(file);
    const result = await s.wh.load({
      dataset: DS,
      table: 'docs',
      source: { kind: 'parquet', files: [file], fields },
      writeMode: 'append',
      runId: 'run-json',
    });
    assert.equal(result.rowsLoaded, 2);
    assert.equal(result.rowsQuarantined, 1);
    const rows = await s.wh.select(DS, 'docs', { orderBy: [['id', 'asc']] });
    assert.deepEqual(
      rows.map((r) => [r['id'], JSON.parse(String(r['meta']))]),
      [
        [1, { share: 0.12345678901234568 }],
        [2, { k: 'v' }],
      ],
    );
    const [quarantined] = await s.wh.select(DS, 'docs__quarantine', {});
    assert.equal(quarantined?.['_reason'], 'meta: not a JSON document BigQuery can read');
    assert.equal(quarantined?.['_source_row'], 3);
    // The fake's PARSE_JSON keeps BigQuery's default: exact, which fails on the wide number.
    const client = await fakeClient(s.fake);
    await assert.rejects(
      client.query({ query: `SELECT PARSE_JSON('{"share":0.12345678901234567890}') AS j`, location: 'US' }),
      /cannot be stored in JSON without loss of precision/,
    );
  });

  it('retries a merge job that failed with rateLimitExceeded under the next attempt id', async () => {
    s.fake.failJobs({
      match: /BEGIN TRANSACTION/,
      reason: 'rateLimitExceeded',
      message: 'Exceeded rate limits: too many table update operations',
    });
    const result = await load({ source: await staged([row('2025-01-01', 'a', 1)]) });
    assert.equal(result.rowsInserted, 1);
    const merges = s.fake.requestsTo('jobs.insert').filter(isMerge).map(jobIdOf);
    assert.equal(merges.length, 2);
    assert.equal(merges[1], `${merges[0]}_r1`);
    assert.equal(s.fake.jobs.get(merges[0]!)?.status.errorResult?.reason, 'rateLimitExceeded');
    assert.equal(await s.wh.count(DS, 'usage'), 1);
  });

  it('exits 7 naming the permission and role on accessDenied, leaving nothing behind', async () => {
    await s.wh.createTable(DS, { name: 'state', fields: [{ name: 'cursor', type: 'STRING' }] });
    s.fake.inject({
      route: 'jobs.insert',
      when: isMerge,
      status: 403,
      reason: 'accessDenied',
      message:
        'Access Denied: Table proj-1:acme_corp.usage: Permission bigquery.tables.updateData denied on table proj-1:acme_corp.usage (or it may not exist).',
      times: Infinity,
    });
    const err = await rejectsWith(
      load({
        source: await staged([row('2025-01-01', 'a', 1), row('2025-01-01', 'b', null, 'bad')]),
        partitionBy: 'day',
        clusterBy: ['model'],
        alsoWrite: [{ kind: 'insert', dataset: DS, table: 'state', rows: [{ cursor: '2025-01-01' }] }],
      }),
      7,
      /bigquery\.tables\.updateData/,
    );
    assert.match(err.message, /roles\/bigquery\.dataEditor/);
    assert.match(err.suggestion ?? '', /roles\/bigquery\.dataEditor/);
    assert.deepEqual(await s.wh.listTables(DS), ['state']);
    assert.equal(await s.wh.count(DS, 'state'), 0);
  });

  it('exits 7 with roles/bigquery.jobUser when jobs cannot be created', async () => {
    s.fake.inject({
      route: /^POST \/upload\//,
      status: 403,
      reason: 'accessDenied',
      message: 'Access Denied: Project proj-1: User does not have bigquery.jobs.create permission in project proj-1.',
      times: Infinity,
    });
    const err = await rejectsWith(load({ source: await staged([row('2025-01-01', 'a', 1)]) }), 7, /bigquery\.jobs\.create/);
    assert.match(err.message, /roles\/bigquery\.jobUser/);
    assert.deepEqual(await s.wh.listTables(DS), []);
  });

  it('exits 8 when the dataset or table is missing', async () => {
    await rejectsWith(
      s.wh.load({ dataset: 'nope', table: 'usage', writeMode: 'append', runId: RUN, source: await staged([row('2025-01-01', 'a', 1)]) }),
      8,
      /dataset nope/,
    );
    await rejectsWith(s.wh.createTable('nope', { name: 't', fields: [{ name: 'a', type: 'STRING' }] }), 8, /dataset nope/);
    await rejectsWith(s.wh.select(DS, 'missing'), 8, /missing/);
    await rejectsWith(s.wh.insert(DS, 'missing', [{ a: 1 }]), 8);
    await rejectsWith(s.wh.query(`SELECT * FROM ${s.wh.qualify(DS, 'missing')}`), 8, /Not found: Table/);
    assert.equal(uploads(s.fake).length, 0);
  });

  it('labels every job, load jobs with the run and step', async () => {
    await s.wh.createTable(DS, { name: 'state', fields: [{ name: 'cursor', type: 'STRING' }] });
    await load({
      source: await staged([row('2025-01-01', 'a', 1)]),
      alsoWrite: [{ kind: 'insert', dataset: DS, table: 'state', rows: [{ cursor: 'x' }] }],
    });
    await load({ table: 'q', source: { kind: 'query', sql: 'SELECT @m AS model', params: { m: 'a' } } });
    await s.wh.insert(DS, 'state', [{ cursor: 'y' }]);
    await s.wh.select(DS, 'state');
    await s.wh.query(`SELECT COUNT(*) AS n FROM ${s.wh.qualify(DS, 'state')}`);
    const inserts = s.fake.requestsTo('jobs.insert');
    const shortQueries = s.fake.requestsTo('jobs.query');
    // The query load adds one: the dry run that checks its SQL before it runs.
    assert.equal(inserts.length + shortQueries.length, 8);
    for (const labels of [...inserts.map((r) => body(r).configuration?.labels), ...s.fake.queriesSent().map((q) => q.labels)]) {
      assert.equal(labels?.['app'], 'convergence');
      assert.equal(labels?.['tenant_id'], 'acme_corp');
      assert.equal(labels?.['pipeline_id'], 'p_usage_daily');
    }
    for (const r of [...uploads(s.fake), ...inserts.filter(isMerge)]) {
      const labels = body(r).configuration?.labels ?? {};
      assert.equal(labels['run_id'], RUN);
      assert.match(labels['step'] ?? '', /^(stage|merge)$/);
    }
    // The fake keeps them on the job resources, as BigQuery does.
    assert.ok([...s.fake.jobs.values()].every((j) => j.configuration.labels?.['app'] === 'convergence'));
  });

  it('sends partitioning and clustering when it creates tables', async () => {
    await s.wh.createTable(DS, {
      name: 'events',
      fields: [
        { name: 'at', type: 'TIMESTAMP' },
        { name: 'kind', type: 'STRING' },
        { name: 'n', type: 'INT64' },
      ],
      partitionBy: 'at',
      clusterBy: ['kind', 'n'],
      description: 'events by day',
    });
    await load({ source: await staged([row('2025-01-01', 'a', 1)]), partitionBy: 'day', clusterBy: ['model'] });
    const created = s.fake
      .requestsTo('tables.insert')
      .map((r) => r.body as { tableReference: { tableId: string }; timePartitioning?: unknown; clustering?: unknown });
    const events = created.find((b) => b.tableReference.tableId === 'events')!;
    assert.deepEqual(events.timePartitioning, { type: 'DAY', field: 'at' });
    assert.deepEqual(events.clustering, { fields: ['kind', 'n'] });
    const usage = created.find((b) => b.tableReference.tableId === 'usage')!;
    assert.deepEqual(usage.timePartitioning, { type: 'DAY', field: 'day' });
    assert.deepEqual(usage.clustering, { fields: ['model'] });
    assert.deepEqual(s.fake.engine.table(DS, 'usage').timePartitioning, { type: 'DAY', field: 'day' });

    const before = s.fake.requests.length;
    await rejectsWith(
      s.wh.createTable(DS, { name: 'bad', fields: [{ name: 'n', type: 'INT64' }], partitionBy: 'n' }),
      2,
      /DATE or TIMESTAMP/,
    );
    await rejectsWith(s.wh.createTable(DS, { name: 'bad', fields: [{ name: 'n', type: 'INT64' }], clusterBy: ['x'] }), 2, /not a column/);
    await rejectsWith(
      load({ table: 'bad', source: await staged([row('2025-01-01', 'a', 1)]), partitionBy: 'model' }),
      2,
      /DATE or TIMESTAMP/,
    );
    assert.equal(
      s.fake.requests.slice(before).filter((r) => r.route !== 'datasets.get' && r.route !== 'tables.get' && r.route !== 'jobs.get').length,
      0,
    );
  });

  it('round-trips a staged value of every type', async () => {
    const fields: FieldSpec[] = [
      { name: 's', type: 'STRING' },
      { name: 'i', type: 'INT64' },
      { name: 'f', type: 'FLOAT64' },
      { name: 'n', type: 'NUMERIC' },
      { name: 'b', type: 'BOOL' },
      { name: 'ts', type: 'TIMESTAMP' },
      { name: 'd', type: 'DATE' },
      { name: 'j', type: 'JSON' },
      { name: 'y', type: 'BYTES' },
    ];
    const ts = new Date('2024-05-06T07:08:09.123Z');
    const bytes = Buffer.from([0, 1, 2, 250, 255]).toString('base64');
    const file = path.join(dir, `types-${n++}.parquet`);
    const column = (name: string, values: unknown[]) => pl.Series(name, values, POLARS_TYPE[fields.find((f) => f.name === name)!.type]);
    pl.DataFrame([
      column('s', ['full', 'nulls']),
      column('i', [9007199254740991, null]),
      column('f', [-0.25, null]),
      column('n', ['1234.500000001', null]),
      column('b', [true, null]),
      column('ts', [ts, null]),
      column('d', [new Date('2024-02-29T00:00:00Z'), null]),
      column('j', ['{"a":1,"b":[true,null]}', null]),
      column('y', [bytes, null]),
      pl.Series(REASON_COLUMN, [null, null], pl.Utf8),
      pl.Series(SOURCE_FILE_COLUMN, ['in.csv', 'in.csv'], pl.Utf8),
      pl.Series(SOURCE_ROW_COLUMN, [2, 3], pl.Int64),
    ]).writeParquet(file);
    await load({ table: 'types', source: { kind: 'parquet', files: [file], fields } });
    assert.deepEqual(
      (await s.wh.getTableFields(DS, 'types'))?.map((f) => `${f.name}:${f.type}`),
      fields.map((f) => `${f.name}:${f.type}`),
    );
    const [full, nulls] = await s.wh.select(DS, 'types', { orderBy: [['s', 'asc']] });
    assert.ok(full && nulls);
    assert.equal(full['i'], 9007199254740991);
    assert.equal(full['f'], -0.25);
    assert.equal(full['n'], 1234.500000001);
    assert.equal(full['b'], true);
    assert.ok(full['ts'] instanceof Date && full['ts'].getTime() === ts.getTime());
    assert.equal(full['d'], '2024-02-29');
    assert.deepEqual(JSON.parse(String(full['j'])), { a: 1, b: [true, null] });
    assert.equal(full['y'], bytes);
    for (const name of ['i', 'f', 'n', 'b', 'ts', 'd', 'j', 'y']) assert.equal(nulls[name], null, name);
  });
});

describe('BigQuery warehouse: jobs, retries and reads', () => {
  let s: Setup;
  afterEach(() => s.fake.stop());

  const people = async () => {
    await s.wh.createDataset(DS);
    await s.wh.createTable(DS, {
      name: 'people',
      fields: [
        { name: 'id', type: 'INT64', mode: 'REQUIRED' },
        { name: 'name', type: 'STRING' },
      ],
    });
  };

  it('retries 429 rateLimitExceeded and 500 backendError answers until the request succeeds', async () => {
    s = await setup();
    await people();
    s.fake.inject({ route: 'jobs.query', status: 429, reason: 'rateLimitExceeded', times: 2 });
    s.fake.inject({
      route: 'jobs.query',
      when: (r) => /^SELECT/.test(String((r.body as { query?: string }).query)),
      status: 500,
      reason: 'backendError',
    });
    await s.wh.insert(DS, 'people', [{ id: 1, name: 'ada' }]);
    assert.deepEqual(await s.wh.select(DS, 'people'), [{ id: 1, name: 'ada' }]);
    const sent = s.fake.queriesSent();
    assert.deepEqual(
      sent.map((q) => [q.query.split(' ')[0], q.request.status]),
      [
        ['INSERT', 429],
        ['INSERT', 429],
        ['INSERT', 200],
        ['SELECT', 500],
        ['SELECT', 200],
      ],
    );
    // Each retry is the same request: BigQuery recognises a write it already applied by its requestId.
    assert.equal(new Set(sent.slice(0, 3).map((q) => q.requestId)).size, 1);
  });

  it('reruns a job that failed with backendError, and gives up after the attempts allowed', async () => {
    s = await setup({}, { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } });
    await people();
    s.fake.failJobs({ match: /^INSERT/, reason: 'backendError' });
    await s.wh.insert(DS, 'people', [{ id: 1, name: 'ada' }]);
    assert.equal(await s.wh.count(DS, 'people'), 1);
    const inserts = s.fake.queriesSent().filter((q) => /^INSERT/.test(q.query));
    assert.deepEqual(
      inserts.map((q) => q.request.status),
      [500, 200],
      'a failed query is run again',
    );

    s.fake.failJobs({ match: /^UPDATE/, reason: 'backendError', times: Infinity });
    const before = s.fake.requestsTo('jobs.query').length;
    const err = await rejectsWith(s.wh.update(DS, 'people', { name: 'bob' }, { id: 1 }), 1, /backendError|Retrying/);
    assert.match(err.suggestion ?? '', /transient/);
    assert.equal(s.fake.requestsTo('jobs.query').length - before, 3);
    assert.deepEqual(await s.wh.select(DS, 'people'), [{ id: 1, name: 'ada' }]);
  });

  it('does not rerun a query job that failed for good', async () => {
    s = await setup();
    await people();
    const before = s.fake.requestsTo('jobs.query').length;
    await rejectsWith(s.wh.query('SELECT nope FROM ' + s.wh.qualify(DS, 'people')), 1, /Unrecognized name|nope/);
    assert.equal(s.fake.requestsTo('jobs.query').length - before, 1);
  });

  it('waits for running jobs and pages through large results', async () => {
    s = await setup({ pendingPolls: 2, pageSize: 3 });
    await people();
    await s.wh.insert(
      DS,
      'people',
      Array.from({ length: 10 }, (_, i) => ({ id: i + 1, name: `p${i + 1}` })),
    );
    const rows = await s.wh.select(DS, 'people', { orderBy: [['id', 'asc']] });
    assert.deepEqual(
      rows.map((r) => r['id']),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.ok(s.fake.requestsTo('jobs.get').length >= 2);
    const pages = s.fake.requestsTo('jobs.getQueryResults').filter((r) => r.query['pageToken']);
    assert.equal(pages.length, 3);
  });

  it('binds query parameters by their JavaScript type', async () => {
    s = await setup();
    const at = new Date('2025-01-02T03:04:05.678Z');
    const [r] = await s.wh.query(
      'SELECT @s AS s, @i AS i, @f AS f, @b AS b, @t AS t, @big AS big, @nothing AS nothing, "@not_a_param" AS lit',
      {
        s: "it's",
        i: 42,
        f: 0.5,
        b: false,
        t: at,
        big: 2n ** 62n,
        nothing: null,
      },
    );
    assert.deepEqual(r, { s: "it's", i: 42, f: 0.5, b: false, t: at, big: 2n ** 62n, nothing: null, lit: '@not_a_param' });
    const parameters = s.fake.queriesSent()[0]!.queryParameters ?? [];
    assert.deepEqual(Object.fromEntries(parameters.map((p) => [p.name, p.parameterType.type])), {
      s: 'STRING',
      i: 'INT64',
      f: 'FLOAT64',
      b: 'BOOL',
      t: 'TIMESTAMP',
      big: 'INT64',
      nothing: 'STRING',
    });
  });

  it('types structured-operation parameters from the table schema, nulls included', async () => {
    s = await setup();
    await s.wh.createDataset(DS);
    await s.wh.createTable(DS, {
      name: 'typed',
      fields: [
        { name: 'k', type: 'STRING' },
        { name: 'd', type: 'DATE' },
        { name: 'ts', type: 'TIMESTAMP' },
        { name: 'n', type: 'NUMERIC' },
        { name: 'y', type: 'BYTES' },
      ],
    });
    await s.wh.insert(DS, 'typed', [{ k: 'a', d: null, ts: null, n: 1e-7, y: null }]);
    const parameters = s.fake.queriesSent().at(-1)!.queryParameters ?? [];
    assert.deepEqual(
      parameters.map((p) => [p.parameterType.type, p.parameterValue.value ?? null]),
      [
        ['STRING', 'a'],
        ['DATE', null],
        ['TIMESTAMP', null],
        ['NUMERIC', '0.0000001'],
        ['BYTES', null],
      ],
    );
    assert.equal(await s.wh.update(DS, 'typed', { d: '2025-01-01' }, { d: null, n: { op: '>', value: 0 } }), 1);
    assert.equal(await s.wh.count(DS, 'typed', { d: '2025-01-01' }), 1);
    await rejectsWith(s.wh.insert(DS, 'typed', [{ k: 'b', n: Number.POSITIVE_INFINITY }]), 2, /NUMERIC/);
  });

  it('writes JSON columns in INSERT and UPDATE as STRING text parsed in SQL; the fake refuses a JSON parameter outside INSERT', async () => {
    s = await setup();
    await s.wh.createDataset(DS);
    await s.wh.createTable(DS, {
      name: 'docs',
      fields: [
        { name: 'id', type: 'INT64' },
        { name: 'doc', type: 'JSON' },
      ],
    });
    await s.wh.insert(DS, 'docs', [{ id: 1, doc: '{"a":1}' }]);
    assert.equal(await s.wh.update(DS, 'docs', { doc: '{"a":2,"tags":["x"]}' }, { id: 1 }), 1);
    const [row] = await s.wh.select(DS, 'docs', {});
    assert.deepEqual(JSON.parse(String(row!['doc'])), { a: 2, tags: ['x'] });
    const sent = s.fake.queriesSent();
    for (const q of sent) for (const p of q.queryParameters ?? []) assert.notEqual(p.parameterType.type, 'JSON', q.query);
    assert.ok(sent.some((q) => /UPDATE[\s\S]*PARSE_JSON\(@/.test(q.query)));
    // The rule the adapter keeps to: a JSON-typed parameter in an UPDATE is refused.
    const client = await fakeClient(s.fake);
    await assert.rejects(
      client.query({
        query: `UPDATE \`${DS}.docs\` SET doc = @d WHERE id = 1`,
        params: { d: { a: 3 } },
        types: { d: 'JSON' },
        location: 'US',
      }),
      /of type JSON is supported in INSERT statements only/,
    );
  });

  it('runs BigQuery DDL, functions and literals, and refuses DDL inside a transaction as BigQuery does', async () => {
    s = await setup();
    await s.wh.createDataset(DS);
    const ddl = s.wh.qualify(DS, 'ddl');
    await s.wh.query(`CREATE TABLE ${ddl} (d DATE, k STRING, v INT64) PARTITION BY d CLUSTER BY k OPTIONS(description="made by SQL")`);
    const meta = s.fake.engine.table(DS, 'ddl');
    assert.deepEqual(
      [meta.timePartitioning, meta.clustering, meta.description],
      [{ type: 'DAY', field: 'd' }, { fields: ['k'] }, 'made by SQL'],
    );
    assert.deepEqual(
      await s.wh.query(
        "SELECT SAFE_CAST('x' AS INT64) AS a, TO_JSON_STRING(STRUCT(1 AS one, 'two' AS two)) AS j, REGEXP_CONTAINS('abc', r'^a') AS r, 'it\\'s' AS e, " +
          "FROM_BASE64('aGk=') AS y, (SELECT COUNTIF(v > 1) FROM " +
          ddl +
          ') AS c',
      ),
      [{ a: null, j: '{"one":1,"two":"two"}', r: true, e: "it's", y: 'aGk=', c: 0 }],
    );
    await rejectsWith(
      s.wh.query(`BEGIN TRANSACTION; CREATE TABLE ${s.wh.qualify(DS, 'inside')} (a INT64); COMMIT TRANSACTION;`),
      1,
      /inside a transaction/,
    );
    await rejectsWith(s.wh.query(`DELETE FROM ${ddl}`), 1, /WHERE clause/);
    assert.equal(await s.wh.tableExists(DS, 'inside'), false);
  });

  it('runs the data-quality engine SQL', async () => {
    s = await setup();
    await s.wh.createDataset(DS);
    await s.wh.load({
      dataset: DS,
      table: 'usage',
      writeMode: 'append',
      runId: RUN,
      source: await staged([row('2025-01-08', 'a', 5), row('2025-01-09', 'b', -1), row('2025-01-09', 'b', 2)]),
    });
    const outcome = await runDataQuality(s.wh, {
      dataset: DS,
      table: 'usage',
      now: new Date('2025-01-10T06:00:00Z'),
      rules: [
        { check: 'not_null', columns: ['day', 'model'] },
        { check: 'unique', columns: ['day', 'model'] },
        { check: 'range', column: 'tokens', min: 0 },
        { check: 'accepted_values', column: 'model', values: ['a', 'b'] },
        { check: 'regex', column: 'model', pattern: '^[a-z]$' },
        { check: 'row_count', min: 1 },
        { check: 'freshness', column: 'day', max_age: '2d' },
        { check: 'expression', expr: 'tokens < 100' },
      ],
    });
    assert.equal(outcome.totalRows, 3);
    assert.deepEqual(
      outcome.results.filter((r) => !r.passed).map((r) => [r.ruleName, r.failingCount]),
      [
        ['unique_day_model', 2],
        ['range_tokens', 1],
      ],
    );
  });
});
