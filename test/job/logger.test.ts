import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cloudRunTask, JobLogger, redact } from '../../src/job/logger.ts';
import { resolveJobInput } from '../../src/job/tasks.ts';
import { shardOf } from '../../src/services/schedules/dispatch.ts';
import { nextOccurrence } from '../../src/services/schedules/sync.ts';

const SECRET = 'acme_corp_api_' + 'A'.repeat(43);

describe('headless job logs', () => {
  it('writes one Cloud Logging JSON object per line with trace, labels and no secret', () => {
    const lines: string[] = [];
    const task = cloudRunTask({
      CLOUD_RUN_JOB: 'convergence-jobs',
      CLOUD_RUN_EXECUTION: 'convergence-jobs-abc12',
      CLOUD_RUN_TASK_INDEX: '2',
      CLOUD_RUN_TASK_COUNT: '3',
      CLOUD_RUN_TASK_ATTEMPT: '1',
    });
    const log = new JobLogger({ task, project: 'my-proj', write: (l) => lines.push(l), now: () => new Date('2030-01-01T00:00:00Z') });
    const child = log.child({ tenant_id: 'acme_corp', pipeline_id: 'p_usage_daily' });
    child.label({ run_id: 'r-1' });
    child.info('starting', { rows: 3n });
    child.error(`GET failed with Authorization: Bearer abc.def-123 and key ${SECRET}`, {
      url: 'https://u:hunter2@example.com/x?token=s3cr3t',
    });
    log.warning('plain');

    assert.equal(lines.length, 3);
    for (const line of lines) assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
    const [info, error, plain] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(info!['severity'], 'INFO');
    assert.equal(info!['message'], 'starting');
    assert.equal(info!['rows'], 3);
    assert.equal(info!['time'], '2030-01-01T00:00:00.000Z');
    assert.equal(info!['logging.googleapis.com/trace'], 'projects/my-proj/traces/convergence-jobs-abc12');
    assert.deepEqual(info!['logging.googleapis.com/labels'], {
      tenant_id: 'acme_corp',
      pipeline_id: 'p_usage_daily',
      run_id: 'r-1',
      job: 'convergence-jobs',
      execution: 'convergence-jobs-abc12',
      task_index: '2',
      task_attempt: '1',
    });
    assert.equal(error!['severity'], 'ERROR');
    const all = lines.join('');
    for (const secret of ['abc.def-123', 'A'.repeat(43), 'hunter2', 's3cr3t']) assert.ok(!all.includes(secret), `${secret} leaked: ${all}`);
    assert.deepEqual(plain!['logging.googleapis.com/labels'], {
      job: 'convergence-jobs',
      execution: 'convergence-jobs-abc12',
      task_index: '2',
      task_attempt: '1',
    });
  });

  it('has no trace without an execution or a project, and clamps bad task env vars', () => {
    const lines: string[] = [];
    new JobLogger({
      task: cloudRunTask({ CLOUD_RUN_TASK_INDEX: 'x', CLOUD_RUN_TASK_COUNT: '0' }),
      project: 'p',
      write: (l) => lines.push(l),
    }).info('hi');
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(entry['logging.googleapis.com/trace'], undefined);
    assert.deepEqual(entry['logging.googleapis.com/labels'], { task_index: '0' });
    assert.deepEqual(cloudRunTask({ CLOUD_RUN_TASK_INDEX: '5', CLOUD_RUN_TASK_COUNT: '3' }).taskIndex, 2);
    assert.equal(redact('password=abc def'), 'password=[REDACTED] def');
  });

  it('takes tenant and pipeline from flags, then from the environment', () => {
    const env = { CONVERGENCE_TENANT: 'env_t', CONVERGENCE_PIPELINE: 'env_p', CONVERGENCE_CONFIG_VERSION: 'v1' };
    assert.deepEqual(resolveJobInput({ tenant: 'flag_t' }, env), { tenant: 'flag_t', pipeline: 'env_p', configVersion: 'v1' });
    assert.deepEqual(resolveJobInput({}, {}), {});
  });

  it('shards schedules stably and computes the next occurrence in the schedule time zone', () => {
    const ids = Array.from({ length: 60 }, (_, i) => `t.p_${i}`);
    const shards = ids.map((id) => shardOf(id, 3));
    assert.deepEqual(
      shards,
      ids.map((id) => shardOf(id, 3)),
    );
    assert.deepEqual([...new Set(shards)].sort(), [0, 1, 2]);
    // 06:00 in Los Angeles on 15 January is 14:00 UTC (PST).
    assert.equal(
      nextOccurrence('0 6 * * *', 'America/Los_Angeles', new Date('2030-01-15T12:00:00Z'))?.toISOString(),
      '2030-01-15T14:00:00.000Z',
    );
    assert.throws(() => nextOccurrence('not a cron', 'UTC', new Date()), /not a valid cron/);
  });
});
