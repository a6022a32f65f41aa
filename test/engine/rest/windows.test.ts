/** Window planning of REST sources: consecutive half-open UTC windows from the cursor to the run date. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WINDOWS, planWindows, windowBounds } from '../../../src/engine/sources/rest/windows.ts';
import { ConvergenceError } from '../../../src/lib/errors.ts';

const FILE = 'configs/t/sources/usage.yml';
const plan = (from: string, to: string, size: string) => planWindows({ from, to, size }, FILE);
const pairs = (from: string, to: string, size: string) => plan(from, to, size).map((w) => `${w.start}..${w.end}`);

function refused(fn: () => unknown, message: RegExp, suggestion?: RegExp) {
  assert.throws(
    fn,
    (err: unknown) =>
      err instanceof ConvergenceError &&
      err.exitCode === 2 &&
      message.test(err.message) &&
      (!suggestion || suggestion.test(err.suggestion ?? '')),
  );
}

describe('planWindows', () => {
  it('daily windows across a month end and a leap day, as dates', () => {
    assert.deepEqual(pairs('2024-02-27', '2024-03-02', '1d'), [
      '2024-02-27..2024-02-28',
      '2024-02-28..2024-02-29',
      '2024-02-29..2024-03-01',
      '2024-03-01..2024-03-02',
    ]);
  });

  it('30-day windows with a partial last one cut at `to` (exclusive)', () => {
    assert.deepEqual(pairs('2025-01-01', '2025-03-15', '30d'), [
      '2025-01-01..2025-01-31',
      '2025-01-31..2025-03-02',
      '2025-03-02..2025-03-15',
    ]);
  });

  it('UTC only: the days around a daylight-saving change are 24 hours like any other', () => {
    assert.deepEqual(pairs('2025-03-29', '2025-04-01', '1d'), [
      '2025-03-29..2025-03-30',
      '2025-03-30..2025-03-31',
      '2025-03-31..2025-04-01',
    ]);
    assert.deepEqual(pairs('2025-10-25T00:00:00Z', '2025-10-27T00:00:00Z', '1d'), ['2025-10-25..2025-10-26', '2025-10-26..2025-10-27']);
  });

  it('RFC 3339 bounds when a boundary is not 00:00 UTC (hourly size, a timestamp from or to)', () => {
    assert.deepEqual(pairs('2025-01-01', '2025-01-01T03:00:00Z', '1h'), [
      '2025-01-01T00:00:00Z..2025-01-01T01:00:00Z',
      '2025-01-01T01:00:00Z..2025-01-01T02:00:00Z',
      '2025-01-01T02:00:00Z..2025-01-01T03:00:00Z',
    ]);
    assert.deepEqual(pairs('2025-01-01', '2025-01-02T12:30:00+02:00', '1d'), [
      '2025-01-01T00:00:00Z..2025-01-02T00:00:00Z',
      '2025-01-02T00:00:00Z..2025-01-02T10:30:00Z',
    ]);
  });

  it('no window when from is not before to', () => {
    assert.deepEqual(plan('2025-03-01', '2025-03-01', '1d'), []);
    assert.deepEqual(plan('2025-03-02', '2025-03-01', '1d'), []);
  });

  it(`at most ${MAX_WINDOWS} windows: more is refused with a larger size suggested`, () => {
    assert.equal(plan('2022-01-01', '2024-09-27', '1d').length, 1000);
    refused(
      () => plan('2022-01-01', '2024-09-28', '1d'),
      /1001 windows of 1d from 2022-01-01 to 2024-09-28, more than the 1000/,
      /larger windows\.size \(at least 2d\)/,
    );
  });

  it('refuses bounds that are not instants and sizes that are not whole seconds', () => {
    refused(() => plan('last week', '2025-01-01', '1d'), /usage\.yml: windows\.from is "last week", which is not a date/);
    refused(() => plan('2025-01-01', '2025-13-01', '1d'), /windows\.to is "2025-13-01"/);
    refused(() => plan('2025-01-01', '2025-01-02', '0d'), /windows\.size 0d is not a positive whole number of seconds/);
    refused(() => plan('2025-01-01', '2025-01-02', '1500ms'), /windows\.size 1500ms/);
    refused(() => plan('2025-01-01', '2025-01-02', 'weekly'), /windows\.size: "weekly" is not a duration/);
  });
});

describe('windowBounds', () => {
  const now = new Date('2025-03-10T08:15:30.750Z');
  const input = { file: FILE, cursor: '2025-03-01', runDate: '2025-03-10', now };

  it('from the cursor to run_date (00:00 of the run date), or to now (whole seconds), or to a template', () => {
    assert.deepEqual(windowBounds({ size: '1d', from: '{{ cursor }}', to: 'run_date' }, input), { from: '2025-03-01', to: '2025-03-10' });
    assert.deepEqual(windowBounds({ size: '1d', from: '{{ cursor }}', to: 'now' }, input), {
      from: '2025-03-01',
      to: '2025-03-10T08:15:30Z',
    });
    assert.deepEqual(windowBounds({ size: '1d', from: '2025-02-01', to: '{{ run_date | rfc3339 }}' }, input), {
      from: '2025-02-01',
      to: '2025-03-10T00:00:00Z',
    });
  });

  it('refuses an empty from (no cursor, no initial) and variables other than cursor and run_date', () => {
    refused(
      () => windowBounds({ size: '1d', from: '{{ cursor }}', to: 'run_date' }, { ...input, cursor: undefined }),
      /windows\.from is empty/,
      /incremental\.initial/,
    );
    refused(() => windowBounds({ size: '1d', from: '{{ region }}', to: 'run_date' }, input), /unknown template variable \{\{ region \}\}/);
  });
});
