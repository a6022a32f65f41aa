import { isCalendarDate } from '../domain/dates.ts';

/**
 * Points in time as tenant files write them: a date (YYYY-MM-DD, meaning 00:00 UTC) or an RFC 3339
 * timestamp (`2025-03-01T12:00:00Z`, `2025-03-01T13:00:00.5+01:00`). Everything is UTC: a day is
 * always 24 hours here, so no daylight-saving shift can move a window boundary.
 */
const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const DAY_MS = 86_400_000;

/** The instant a value names, or undefined when it is neither a real date nor an RFC 3339 timestamp. */
export function parseInstant(value: string): Date | undefined {
  if (isCalendarDate(value)) return new Date(`${value}T00:00:00Z`);
  const match = RFC3339.exec(value);
  if (!match) return undefined;
  const [, day, hh, mm, ss, fraction, zone] = match;
  if (!isCalendarDate(day!) || Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 59) return undefined;
  if (zone!.length > 1) {
    const [zh, zm] = zone!.slice(1).split(':').map(Number);
    if (zh! > 23 || zm! > 59) return undefined;
  }
  // Milliseconds are the finest a Date holds; a longer fraction is cut, not rounded.
  const ms = fraction ? fraction.slice(1, 4).padEnd(3, '0') : '000';
  const parsed = new Date(`${day}T${hh}:${mm}:${ss}.${ms}${zone!.toUpperCase()}`);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}

/** True when the instant is 00:00:00.000 UTC. */
export const isMidnightUtc = (instant: Date): boolean => instant.getTime() % DAY_MS === 0;

/** YYYY-MM-DD of the instant's UTC day. */
export const formatDate = (instant: Date): string => instant.toISOString().slice(0, 10);

/** YYYY-MM-DDTHH:MM:SSZ in UTC, whole seconds (what the providers' APIs take). */
export const formatRfc3339 = (instant: Date): string => `${instant.toISOString().slice(0, 19)}Z`;
