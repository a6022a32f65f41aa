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
