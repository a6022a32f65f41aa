import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConvergenceError, ExitCode } from '../../src/lib/errors.ts';
import { parseDuration } from '../../src/lib/duration.ts';

describe('parseDuration', () => {
  const cases: Array<[string, number]> = [
    ['0s', 0],
    ['250ms', 250],
    ['1s', 1000],
    ['90s', 90_000],
    ['10m', 600_000],
    ['24h', 86_400_000],
    ['90d', 90 * 86_400_000],
    [' 5m ', 300_000],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} is ${ms} ms`, () => assert.equal(parseDuration(text, '--grace'), ms));
  }

  for (const bad of ['', 'soon', '10', '-5m', '1.5h', '5 m', '10M', '1w', 'h', '5mm', '1h30m']) {
    it(`refuses ${JSON.stringify(bad)} with a usage error naming the flag`, () => {
      assert.throws(
        () => parseDuration(bad, '--expires-in'),
        (err: unknown) => {
          assert.ok(err instanceof ConvergenceError);
          assert.equal(err.exitCode, ExitCode.usage);
          assert.ok(err.message.startsWith('--expires-in: '), err.message);
          assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
          assert.match(err.suggestion ?? '', /30s, 10m, 24h or 90d/);
          return true;
        },
      );
    });
  }
});
