import { validationError } from './errors.ts';

/** A number and a unit: 500ms, 30s, 10m, 24h, 90d. */
export const DURATION_PATTERN = /^(\d+)(ms|s|m|h|d)$/;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses 90s / 10m / 24h / 90d into milliseconds; `what` names the flag or key in the error. */
export function parseDuration(value: string, what: string): number {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) {
    throw validationError(`${what}: ${JSON.stringify(value)} is not a duration`, {
      suggestion: 'write a number and a unit: 30s, 10m, 24h or 90d',
    });
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
