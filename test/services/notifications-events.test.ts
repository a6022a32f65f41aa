/**
 * Which events a run's end raises, what Slack gets, and the convergence.yaml and pipeline-file
 * errors of a bad `notifications:` entry (file:line, exit 2).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { slackPayload } from '../../src/backends/notify/slack.ts';
import { retryAfterMs } from '../../src/backends/notify/http-post.ts';
import { loadWorkspace } from '../../src/config/workspace.ts';
import { ExitCode } from '../../src/lib/errors.ts';
import { runEndEvents } from '../../src/services/notifications/messages.ts';
import type { RunSummary } from '../../src/services/pipelines/run.ts';
import type { StepSummary } from '../../src/services/runs/steps.ts';
import { rejectsWith } from '../helpers/assertions.ts';
import { newWorkspace } from '../helpers/context.ts';
import { cleanupAll } from '../helpers/tmp.ts';

after(cleanupAll);

const step = (type: StepSummary['type'], notes: string[] = []): StepSummary => ({
  index: 0,
  name: `${type}_step`,
  type,
  status: 'COMPLETE',
  rowsIn: 1,
  rowsOut: 1,
  bytes: 0,
  durationMs: 1,
  notes,
});

const summary = (status: RunSummary['status'], exitCode: number, steps: StepSummary[] = []): RunSummary => ({
  runId: '00000000-0000-4000-8000-000000000001',
  tenantId: 'acme_corp',
  pipelineId: 'p_usage_daily',
  status,
  exitCode,
  runDate: '2025-01-31',
  configVersion: 'abc',
  durationMs: 10,
  rowsProcessed: 1,
  steps,
});

describe('the events of a run end', () => {
  it('one event for how it ended, dq_warned beside it, recovery only after a failure, none for a cancel', () => {
    assert.deepEqual(runEndEvents(summary('FAILED', 3), undefined), ['run_failed']);
    assert.deepEqual(runEndEvents(summary('FAILED', 4), undefined), ['dq_failed']);
    assert.deepEqual(runEndEvents(summary('TIMEOUT', 3), undefined), ['run_timeout']);
    assert.deepEqual(runEndEvents(summary('CANCELLED', 3), 'FAILED'), []);
    assert.deepEqual(runEndEvents(summary('COMPLETE', 0), 'FAILED'), ['run_recovered']);
    assert.deepEqual(runEndEvents(summary('COMPLETE', 0), 'TIMEOUT'), ['run_recovered']);
    assert.deepEqual(runEndEvents(summary('COMPLETE', 0), 'COMPLETE'), []);
    assert.deepEqual(runEndEvents(summary('COMPLETE', 0), undefined), []);
    assert.deepEqual(
      runEndEvents(summary('COMPLETE', 0, [step('ingest', ['2 rows could not be typed']), step('dq', ['warn'])]), undefined),
      ['dq_warned'],
    );
    assert.deepEqual(runEndEvents(summary('COMPLETE', 0, [step('ingest', ['2 rows could not be typed'])]), undefined), []);
  });
});

describe('Slack messages', () => {
  it('a readable text and blocks with the facts, mrkdwn characters escaped', () => {
    const payload = slackPayload({
      event: 'run_failed',
      env: 'prod',
      occurred_at: '2030-01-01T00:00:00.000Z',
      summary: 'Run r of p (tenant t) failed',
      tenant_id: 'acme_corp',
      status: 'FAILED',
      exit_code: 3,
      error: 'bad <script> & co',
      links: { logs: 'convergence pipeline logs r --env prod' },
    });
    assert.equal(payload.text, '[prod] Run r of p (tenant t) failed');
    const json = JSON.stringify(payload.blocks);
    assert.match(json, /\*Tenant\*\\nacme_corp/);
    assert.match(json, /\*Exit code\*\\n3/);
    assert.match(json, /bad &lt;script&gt; &amp; co/);
    assert.match(json, /convergence pipeline logs r --env prod/);
  });
});

describe('Retry-After', () => {
  it('takes seconds or a date, and ignores waits beyond 30 s', () => {
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs(new Date(Date.UTC(2030, 0, 1, 0, 0, 5)).toUTCString(), Date.UTC(2030, 0, 1)), 5000);
    assert.equal(retryAfterMs('3600'), undefined);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });
});

describe('a bad notifications entry in convergence.yaml', () => {
  for (const [what, entry, pattern] of [
    [
      'both url and url_secret',
      '{ type: slack, url: "https://hooks.slack.com/x", url_secret: s, events: [all] }',
      /expected either url or url_secret/,
    ],
    ['an unknown event', '{ type: webhook, url: "https://example.com/h", events: [run_exploded] }', /expected one of run_failed, .*all/],
    ['no events', '{ type: webhook, url: "https://example.com/h", events: [] }', /expected at least one event/],
    ['a non-http URL', '{ type: webhook, url: "file:///etc/passwd", events: [all] }', /expected an http\(s\) URL/],
    ['a reserved topic', '{ type: pubsub, topic: goog-events, events: [all] }', /expected a Pub\/Sub topic id/],
    ['an unknown key', '{ type: webhook, url: "https://example.com/h", events: [all], secret: x }', /secret/],
  ] as const) {
    it(`is refused at file:line (exit 2): ${what}`, async () => {
      const root = await newWorkspace('notify-yaml');
      const file = path.join(root, 'convergence.yaml');
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace(/^( {4}backend: local\n)/m, `$1    notifications:\n      - ${entry}\n`));
      const line = text.split('\n').findIndex((l) => l === '    backend: local') + 3;
      const err = await rejectsWith(loadWorkspace(root), ExitCode.usage);
      assert.match(err.message, new RegExp(`convergence\\.yaml:${line}:`));
      assert.match(err.message, pattern);
    });
  }
});
