import { usageError } from '../lib/errors.ts';

/**
 * Calendar dates as users write them (YYYY-MM-DD). `Date.parse` alone accepts 2025-02-31 and rolls
 * it over to March, so a date is only real when it reads back unchanged.
 */
const CALENDAR_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isCalendarDate(value: string): boolean {
  if (!CALENDAR_DATE.test(value)) return false;
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value;
}

/**
 * The run date of a run (the value of {{ run_date }}): the date given, which must be a calendar
 * date (exit 2), or the UTC day of `now`.
 */
export function resolveRunDate(value: string | undefined, now: Date): string {
  if (value === undefined) return now.toISOString().slice(0, 10);
  if (!isCalendarDate(value)) {
    throw usageError(`run date ${JSON.stringify(value)} is not a calendar date`, {
      suggestion: 'give a real day as YYYY-MM-DD, e.g. 2025-01-31',
    });
  }
  return value;
}
