import { usageError } from '../lib/errors.ts';
import { isCalendarDate } from './dates.ts';

const DAY_MS = 86_400_000;

/**
 * Every calendar day from `from` to `to` (both YYYY-MM-DD, both included), oldest first. Bad
 * input is a usage error (exit 2) naming the option it came from: a date that is not a real
 * day, a range that runs backwards, or one longer than `maxDays`.
 */
export function calendarDays(range: { from: string; to: string; maxDays: number }): string[] {
  for (const [option, value] of [
    ['--from', range.from],
    ['--to', range.to],
  ] as const) {
    if (!isCalendarDate(value)) {
      throw usageError(`${option} ${JSON.stringify(value)} is not a calendar date`, {
        suggestion: 'give a real day as YYYY-MM-DD, e.g. 2025-01-31',
      });
    }
  }
  const first = Date.parse(`${range.from}T00:00:00Z`);
  const last = Date.parse(`${range.to}T00:00:00Z`);
  if (first > last) {
    throw usageError(`--from ${range.from} is after --to ${range.to}`, { suggestion: `swap them: --from ${range.to} --to ${range.from}` });
  }
  const count = Math.round((last - first) / DAY_MS) + 1;
  if (count > range.maxDays) {
    throw usageError(`${range.from} to ${range.to} is ${count} days; at most ${range.maxDays} can be run at once`, {
      suggestion: 'split the range into several calls',
    });
  }
  return Array.from({ length: count }, (_, i) => new Date(first + i * DAY_MS).toISOString().slice(0, 10));
}
