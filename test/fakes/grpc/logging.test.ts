/**
 * The Cloud Logging fake through the official client (@google-cloud/logging's v2
 * LoggingServiceV2Client): what Run forwards from a job's container, listing with the filter the
 * adapter writes, and Google's refusals (filters outside the subset, page sizes, order, rights).
 */
import '../env-guard.ts';
import { v2 } from '@google-cloud/logging';
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { runLogFilter } from '../../../src/backends/logs/gcp.ts';
import { fakeClientOptions } from './client-options.ts';
import { LOGGING_PERMISSIONS, LoggingFake } from './logging.ts';
import { startGrpcFake, type GrpcFake } from './server.ts';
import { status } from './status.ts';

interface Entry {
  insertId: string;
  severity: string;
  textPayload?: string;
  jsonPayload?: { fields: Record<string, { stringValue?: string; numberValue?: number }> };
  labels: Record<string, string>;
  resource: { type: string; labels: Record<string, string> };
  logName: string;
}
interface Client {
  listLogEntries(request: object, options?: object): Promise<[Entry[], { pageToken?: string } | null, unknown]>;
  writeLogEntries(request: object): Promise<unknown>;
  close(): Promise<void>;
}

const PROJECT = 'demo-project';
const RUN = '3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b';
const SOURCE = { project: PROJECT, location: 'us-central1', job: 'pipeline-job', execution: 'pipeline-job-abcde', taskIndex: 0 };
const logging = new LoggingFake();
let fake: GrpcFake;
let client: Client;

before(async () => {
  fake = await startGrpcFake({ logging });
  client = new (v2 as { LoggingServiceV2Client: new (options: object) => Client }).LoggingServiceV2Client(fakeClientOptions(fake.port));
  const line = (severity: string, message: string, time: string) =>
    JSON.stringify({ severity, message, step: 2, time, 'logging.googleapis.com/labels': { run_id: RUN, tenant_id: 'acme_corp' } });
  logging.containerLine(line('INFO', 'first', '2025-01-31T10:00:00.000Z'), { ...SOURCE, stream: 'stdout' });
  logging.containerLine(line('ERROR', 'second', '2025-01-31T10:00:01.000Z'), { ...SOURCE, stream: 'stdout' });
  logging.containerLine('Error: a crash on stderr', { ...SOURCE, stream: 'stderr' });
});
after(async () => {
  await client.close();
  await fake.stop();
});
afterEach(() => {
  logging.granted = new Set(LOGGING_PERMISSIONS);
});

const list = (request: object) => client.listLogEntries({ resourceNames: [`projects/${PROJECT}`], ...request }, { autoPaginate: false });
const refused = (code: number, pattern: RegExp) => (err: unknown) => {
  const failure = err as { code?: number; message?: string };
  assert.equal(failure.code, code, failure.message);
  assert.match(String(failure.message), pattern);
  return true;
};

describe('the Cloud Logging fake', () => {
  it("stores a container's JSON line as Cloud Run does: special fields lifted out, the rest as jsonPayload", async () => {
    const [entries] = await list({ filter: `labels.run_id="${RUN}"` });
    assert.deepEqual(
      entries.map((entry) => entry.severity),
      ['INFO', 'ERROR'],
    );
    const [first] = entries;
    assert.deepEqual(Object.keys(first!.jsonPayload!.fields).sort(), ['message', 'step']);
    assert.equal(first!.jsonPayload!.fields['message']!.stringValue, 'first');
    assert.equal(first!.labels['tenant_id'], 'acme_corp');
    assert.equal(first!.labels['run.googleapis.com/execution_name'], SOURCE.execution);
    assert.equal(first!.labels['run.googleapis.com/task_index'], '0');
    assert.deepEqual(first!.resource, {
      type: 'cloud_run_job',
      labels: { project_id: PROJECT, job_name: 'pipeline-job', location: 'us-central1' },
    });
    assert.equal(first!.logName, `projects/${PROJECT}/logs/run.googleapis.com%2Fstdout`);
  });

  it('stores any other line as textPayload, with no labels of its own', async () => {
    const [entries] = await list({ filter: `labels."run.googleapis.com/execution_name"="${SOURCE.execution}" AND severity<=DEFAULT` });
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.textPayload, 'Error: a crash on stderr');
    assert.equal(entries[0]!.labels['run_id'], undefined);
  });

  it('accepts the filter the adapter writes, orders by timestamp either way and pages', async () => {
    const filter = runLogFilter({ job: 'pipeline-job', runId: RUN, since: new Date('2025-01-31T09:00:00Z'), minSeverity: 'INFO' });
    const [asc] = await list({ filter, orderBy: 'timestamp asc' });
    const [desc] = await list({ filter, orderBy: 'timestamp desc' });
    assert.deepEqual(
      desc.map((entry) => entry.insertId),
      asc.map((entry) => entry.insertId).reverse(),
    );
    const [page, next] = await list({ filter, pageSize: 1 });
    assert.equal(page.length, 1);
    assert.ok(next?.pageToken);
    const [rest, end] = await list({ filter, pageSize: 1, pageToken: next.pageToken });
    assert.notEqual(rest[0]!.insertId, page[0]!.insertId);
    assert.equal(end, null);
  });

  it('writes entries through WriteLogEntries and lists them back', async () => {
    await client.writeLogEntries({
      logName: `projects/${PROJECT}/logs/written`,
      resource: { type: 'global', labels: {} },
      entries: [{ textPayload: 'hello', severity: 'NOTICE', labels: { run_id: 'written' } }],
    });
    const [entries] = await list({ filter: 'labels.run_id="written"' });
    assert.deepEqual(
      entries.map((entry) => [entry.textPayload, entry.severity]),
      [['hello', 'NOTICE']],
    );
    await assert.rejects(
      client.writeLogEntries({ logName: 'not-a-log', resource: { type: 'global' }, entries: [{ textPayload: 'x' }] }),
      refused(status.INVALID_ARGUMENT, /not a valid log name/),
    );
  });

  it('refuses filters outside the subset, page sizes over 1000, other orders and no resource names (INVALID_ARGUMENT)', async () => {
    for (const filter of [
      `labels.run_id="${RUN}" OR labels.run_id="other"`,
      'NOT severity>=ERROR',
      '(resource.type="cloud_run_job")',
      'labels.run_id:"abc"',
      'labels.run_id=abc',
      'textPayload="x"',
      'timestamp>="yesterday"',
      'severity>=LOUD',
      'resource.type="cloud_run_job" AND',
      'labels.run_id="unterminated',
    ]) {
      await assert.rejects(list({ filter }), refused(status.INVALID_ARGUMENT, /Unparseable filter|Invalid timestamp/), filter);
    }
    await assert.rejects(list({ pageSize: 1001 }), refused(status.INVALID_ARGUMENT, /page_size must be between 0 and 1000/));
    await assert.rejects(list({ orderBy: 'severity desc' }), refused(status.INVALID_ARGUMENT, /Invalid order_by/));
    await assert.rejects(
      client.listLogEntries({ resourceNames: [] }, { autoPaginate: false }),
      refused(status.INVALID_ARGUMENT, /resource_names/),
    );
  });

  it('answers PERMISSION_DENIED without logging.logEntries.list or logging.logEntries.create', async () => {
    logging.granted.delete('logging.logEntries.list');
    await assert.rejects(list({}), refused(status.PERMISSION_DENIED, /Permission 'logging.logEntries.list' denied/));
    logging.granted.delete('logging.logEntries.create');
    await assert.rejects(
      client.writeLogEntries({ logName: `projects/${PROJECT}/logs/x`, resource: { type: 'global' }, entries: [{ textPayload: 'x' }] }),
      refused(status.PERMISSION_DENIED, /logging.logEntries.create/),
    );
  });
});
