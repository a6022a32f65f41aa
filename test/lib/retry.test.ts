import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { abortableSleep, backoffDelay, retry } from '../../src/lib/retry.ts';

class Flaky extends Error {}
const onlyFlaky = { retryable: (error: unknown) => error instanceof Flaky };

/** A call that fails with `failures[i]` on attempt i + 1, then returns 'ok'. */
function failing(...failures: Error[]) {
  const attempts: number[] = [];
  const call = async (attempt: number) => {
    attempts.push(attempt);
    const failure = failures[attempt - 1];
    if (failure) throw failure;
    return 'ok';
  };
  return { call, attempts };
}

function recordedSleep() {
  const sleeps: number[] = [];
  return { sleeps, sleep: async (ms: number) => void sleeps.push(ms) };
}

describe('backoffDelay', () => {
  it('uses full jitter under an exponential, capped ceiling', () => {
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(
      backoffDelay(1, policy, () => 0.999999),
      99,
    );
    assert.equal(
      backoffDelay(3, policy, () => 0.5),
      200,
    );
    assert.equal(
      backoffDelay(10, policy, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(4, policy, () => 0),
      0,
    );
  });

  it('with equal jitter, waits at least half the ceiling', () => {
    const policy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000, jitter: 'equal' as const };
    assert.equal(
      backoffDelay(1, policy, () => 0),
      500,
    );
    assert.equal(
      backoffDelay(2, policy, () => 0.999999),
      1999,
    );
    assert.equal(
      backoffDelay(9, policy, () => 0.5),
      22_500,
    );
  });
});

describe('retry', () => {
  const policy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 };

  it('retries retryable failures with backoff until the call succeeds', async () => {
    const { call, attempts } = failing(new Flaky('a'), new Flaky('b'));
    const { sleeps, sleep } = recordedSleep();
    assert.equal(await retry(call, policy, { ...onlyFlaky, sleep, random: () => 0.5 }), 'ok');
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(sleeps, [50, 100]);
  });

  it('throws the last failure, as it is, once the attempts are used up', async () => {
    const last = new Flaky('c');
    const { call, attempts } = failing(new Flaky('a'), new Flaky('b'), last);
    const gaveUp: Array<[unknown, number]> = [];
    const { sleep } = recordedSleep();
    const onGiveUp = (error: unknown, count: number) => void gaveUp.push([error, count]);
    await assert.rejects(retry(call, policy, { ...onlyFlaky, sleep, onGiveUp }), (error) => error === last);
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(gaveUp, [[last, 3]]);
  });

  it('stops at the first failure that is not retryable, without giving-up notice', async () => {
    const fatal = new Error('fatal');
    const { call, attempts } = failing(new Flaky('a'), fatal);
    const { sleep } = recordedSleep();
    let noticed = false;
    await assert.rejects(retry(call, policy, { ...onlyFlaky, sleep, onGiveUp: () => (noticed = true) }), (error) => error === fatal);
    assert.deepEqual(attempts, [1, 2]);
    assert.equal(noticed, false);
  });

  it('waits what the failure asks for instead of the backoff', async () => {
    const { call } = failing(new Flaky('a'), new Flaky('b'));
    const { sleeps, sleep } = recordedSleep();
    const delayFor = (error: unknown) => ((error as Error).message === 'a' ? 7000 : undefined);
    await retry(call, policy, { ...onlyFlaky, delayFor, sleep, random: () => 0 });
    assert.deepEqual(sleeps, [7000, 0]);
  });

  it('makes one attempt when the policy allows one', async () => {
    const { call, attempts } = failing(new Flaky('a'));
    await assert.rejects(retry(call, { ...policy, attempts: 1 }, { ...onlyFlaky, sleep: async () => {} }), /a/);
    assert.deepEqual(attempts, [1]);
  });

  it('does not start when the signal is already aborted', async () => {
    const { call, attempts } = failing();
    const reason = new Error('cancelled');
    await assert.rejects(retry(call, policy, { ...onlyFlaky, signal: AbortSignal.abort(reason) }), (error) => error === reason);
    assert.deepEqual(attempts, []);
  });

  it('throws the signal reason, not the failure, when the signal aborted during an attempt', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    let attempts = 0;
    const call = async () => {
      attempts++;
      controller.abort(reason);
      throw new Flaky('a');
    };
    await assert.rejects(retry(call, policy, { ...onlyFlaky, signal: controller.signal }), (error) => error === reason);
    assert.equal(attempts, 1);
  });

  it('ends a wait in progress when the signal aborts', async () => {
    const controller = new AbortController();
    const { call, attempts } = failing(new Flaky('a'));
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    const hour = { attempts: 2, baseDelayMs: 3_600_000, maxDelayMs: 3_600_000, jitter: 'equal' as const };
    await assert.rejects(retry(call, hour, { ...onlyFlaky, signal: controller.signal }), { name: 'AbortError' });
    assert.deepEqual(attempts, [1]);
    assert.ok(Date.now() - started < 10_000);
  });
});

describe('abortableSleep', () => {
  it('resolves after the time, and rejects with the reason when aborted first', async () => {
    await abortableSleep(1);
    const reason = new Error('stop');
    await assert.rejects(abortableSleep(10, AbortSignal.abort(reason)), (error) => error === reason);
  });
});
