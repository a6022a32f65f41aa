/**
 * BigQuery's concurrency in the fake, through @google-cloud/bigquery: jobs run while jobs.insert
 * has already answered; per table 2 mutating DML statements run, 20 wait PENDING and the next is
 * refused; INSERT is not held to that limit; of two transactions that changed one table, the one
 * committing second is aborted. Statements are held (engine.holds) so that nothing rests on timing.
 */
import '../env-guard.ts';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { BigQuery, Job } from '@google-cloud/bigquery';
import { FakeBigQuery, fakeClient } from './index.ts';

const PROJECT = 'proj-1';
const TABLE = `${PROJECT}:shop.stock`;

describe('BigQuery fake: concurrency', () => {
  let fake: FakeBigQuery;
  let client: BigQuery;

  before(async () => {
    fake = await FakeBigQuery.start({ projectId: PROJECT });
    client = await fakeClient(fake);
  });
  after(() => fake.stop());

  beforeEach(async () => {
    await client.query({ query: 'DROP SCHEMA IF EXISTS shop CASCADE' });
    await client.query({ query: 'CREATE SCHEMA shop' });
    await client.query({ query: 'CREATE TABLE shop.stock (id INT64 NOT NULL, n INT64)' });
    const rows = Array.from({ length: 30 }, (_, i) => `(${i}, 0)`).join(', ');
    await client.query({ query: `INSERT INTO shop.stock (id, n) VALUES ${rows}` });
  });

  const start = async (query: string): Promise<Job> => (await client.createQueryJob({ query, location: 'US' }))[0];
  const stateOf = async (job: Job) => ((await job.getMetadata())[0] as { status: { state: string } }).status.state;
  const total = async () => Number((await client.query({ query: 'SELECT SUM(n) AS n FROM shop.stock' }))[0][0].n);
  /** Waits (without a clock) until the table's DML queue holds this many. */
  const untilQueued = async (queued: number) => {
    while (fake.engine.locks.load('shop.stock').queued < queued) await tick();
  };

  it('answers jobs.insert while the job runs: jobs.get and getQueryResults see it RUNNING, then DONE', async () => {
    const hold = fake.engine.holds.hold(/^SELECT COUNT/);
    const job = await start('SELECT COUNT(*) AS n FROM shop.stock');
    await hold.arrived(1);
    assert.equal(await stateOf(job), 'RUNNING');
    const page = await new Promise<{ jobComplete?: boolean }>((resolve, reject) =>
      client.request({ uri: `/queries/${job.id}`, qs: { location: 'US', timeoutMs: 1 } }, (err, body) =>
        err ? reject(err) : resolve(body as { jobComplete?: boolean }),
      ),
    );
    assert.equal(page.jobComplete, false);
    hold.release();
    const [rows] = await job.getQueryResults();
    assert.deepEqual(rows, [{ n: 30 }]);
    assert.equal(await stateOf(job), 'DONE');
  });

  it('runs 2 UPDATEs of one table at once and queues the third PENDING', async () => {
    const hold = fake.engine.holds.hold(/^UPDATE/);
    const jobs = [];
    for (const id of [1, 2, 3]) jobs.push(await start(`UPDATE shop.stock SET n = n + 1 WHERE id = ${id}`));
    await hold.arrived(2);
    await untilQueued(1);
    const states = await Promise.all(jobs.map(stateOf));
    assert.deepEqual([...states].sort(), ['PENDING', 'RUNNING', 'RUNNING']);
    assert.deepEqual(fake.engine.locks.load('shop.stock'), { running: 2, queued: 1 });
    hold.release();
    await Promise.all(jobs.map((job) => job.getQueryResults()));
    assert.deepEqual(await Promise.all(jobs.map(stateOf)), ['DONE', 'DONE', 'DONE']);
    assert.equal(await total(), 3);
  });

  it('refuses the 23rd mutating statement against a table with BigQuery error, and runs the 22 others', async () => {
    const hold = fake.engine.holds.hold(/^UPDATE/);
    const jobs = [];
    for (let id = 0; id < 22; id++) jobs.push(await start(`UPDATE shop.stock SET n = n + 1 WHERE id = ${id}`));
    await hold.arrived(2);
    await untilQueued(20);
    const refused = await start('DELETE FROM shop.stock WHERE id = 29');
    await assert.rejects(refused.getQueryResults(), (err: { code?: number; errors?: Array<{ reason?: string; message?: string }> }) => {
      assert.equal(err.code, 400);
      assert.equal(err.errors?.[0]?.reason, 'invalidQuery');
      assert.equal(err.errors?.[0]?.message, `Too many DML statements outstanding against table ${TABLE}, limit is 20.`);
      return true;
    });
    hold.release();
    await Promise.all(jobs.map((job) => job.getQueryResults()));
    assert.equal(await total(), 22);
    const [rows] = await client.query({ query: 'SELECT COUNT(*) AS n FROM shop.stock' });
    assert.deepEqual(rows, [{ n: 30 }], 'the refused DELETE deleted nothing');
  });

  it('does not hold INSERT to the mutating-DML limit', async () => {
    const hold = fake.engine.holds.hold(/^INSERT/);
    const jobs = [];
    for (let id = 100; id < 105; id++) jobs.push(await start(`INSERT INTO shop.stock (id, n) VALUES (${id}, 1)`));
    await hold.arrived(5);
    assert.deepEqual(await Promise.all(jobs.map(stateOf)), Array(5).fill('RUNNING'));
    hold.release();
    await Promise.all(jobs.map((job) => job.getQueryResults()));
    assert.equal(await total(), 5);
  });

  it('aborts the second of two transactions that changed one table, with BigQuery message, and keeps the first', async () => {
    const hold = fake.engine.holds.hold(/^COMMIT/);
    const script = (id: number) => `BEGIN TRANSACTION;\nUPDATE shop.stock SET n = n + 10 WHERE id = ${id};\nCOMMIT TRANSACTION;`;
    const jobs = [await start(script(1)), await start(script(2))];
    await hold.arrived(2);
    hold.release();
    const outcomes = await Promise.allSettled(jobs.map((job) => job.getQueryResults()));
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    assert.equal(failed.length, 1, 'exactly one transaction commits');
    const error = failed[0]!.reason as { errors?: Array<{ reason?: string; message?: string }> };
    assert.equal(error.errors?.[0]?.message, `Transaction is aborted due to concurrent update against table ${TABLE}.`);
    assert.equal(await total(), 10, "the aborted transaction's change is rolled back");
  });

  it('lets transactions that change different tables, or only INSERT, commit side by side', async () => {
    await client.query({ query: 'CREATE TABLE shop.orders (id INT64)' });
    const hold = fake.engine.holds.hold(/^COMMIT/);
    const jobs = [
      await start('BEGIN TRANSACTION;\nUPDATE shop.stock SET n = n + 1 WHERE id = 1;\nCOMMIT TRANSACTION;'),
      await start('BEGIN TRANSACTION;\nDELETE FROM shop.orders WHERE id = 1;\nCOMMIT TRANSACTION;'),
      await start('BEGIN TRANSACTION;\nINSERT INTO shop.stock (id, n) VALUES (200, 5);\nCOMMIT TRANSACTION;'),
    ];
    await hold.arrived(3);
    hold.release();
    await Promise.all(jobs.map((job) => job.getQueryResults()));
    assert.equal(await total(), 6);
  });
});
