/** BigQuery's contention errors: retried while they last, then one error with the exit code and the remedy. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRetryable, jobErrorFacts, warehouseError } from '../../src/backends/warehouse/bigquery/errors.ts';

const context = { what: 'load into acme_corp.raw_usage', project: 'demo-project' };
const fail = (message: string, reason = 'invalidQuery') => {
  const facts = jobErrorFacts({ reason, message }, 'job_1');
  return { facts, error: warehouseError(new Error(message), context, facts) };
};

describe('BigQuery table contention', () => {
  it('a full DML queue is retried, then exit 6 with what to change', () => {
    const { facts, error } = fail('Too many DML statements outstanding against table demo-project:acme_corp.raw_usage, limit is 20.');
    assert.equal(isRetryable(facts), true);
    assert.equal(error.code, 'WAREHOUSE_DML_QUEUE_FULL');
    assert.equal(error.exitCode, 6);
    assert.match(error.message, /^BigQuery load into acme_corp\.raw_usage: Too many DML statements outstanding/);
    assert.match(
      error.suggestion ?? '',
      /2 changing statements per table at once and queues 20.*--concurrency.*nothing of this load was written/,
    );
  });

  it('a transaction aborted by a concurrent one is retried, then exit 5', () => {
    const { facts, error } = fail(
      'Transaction is aborted due to concurrent update against table demo-project:acme_corp._convergence_state.',
      'invalid',
    );
    assert.equal(isRetryable(facts), true);
    assert.equal(error.code, 'WAREHOUSE_CONFLICT');
    assert.equal(error.exitCode, 5);
    assert.match(error.suggestion ?? '', /run again/);
  });

  it('leaves other query errors alone', () => {
    const { facts, error } = fail('Unrecognized name: nope [at 1:8]');
    assert.equal(isRetryable(facts), false);
    assert.equal(error.code, 'WAREHOUSE_QUERY');
    assert.equal(error.exitCode, 1);
  });
});
