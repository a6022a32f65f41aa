import { parseDuration } from '../../../lib/duration.ts';
import { validationError } from '../../../lib/errors.ts';
import { formatDate, formatRfc3339, isMidnightUtc, parseInstant } from '../../instants.ts';
import { renderText } from '../../template.ts';

/**
 * Date windows of a REST source (`windows: { size, from, to }`): consecutive half-open ranges
 * [window_start, window_end) from `from` to `to`, each fetched and loaded with its own cursor
 * commit. Pure: the caller gives the variables and the clock.
 */

/** Windows one run may fetch: a first load of years of hourly windows is a mistake, not a plan. */
export const MAX_WINDOWS = 1000;

/** The variables `windows.from` and `windows.to` may use: bounds are dates of the run, not of its parameters. */
export const WINDOW_BOUND_VARIABLES = ['cursor', 'run_date'] as const;

/** Why a step cannot write a source with windows in write_mode replace (the run and validate both say it). */
export const replaceWithWindows =
  'write_mode replace cannot take a source with windows: each window would replace the rows of the windows before it; ' +
  'use write_mode merge (with merge_keys) or append';

/** What a window is to the requests: its bounds as `{{ window_start }}` / `{{ window_end }}` render them. */
export interface DateWindow {
  start: string;
  end: string;
}

interface WindowsConfig {
  size: string;
  from: string;
  to: string;
}

/** Where the bounds come from: the source file (messages), the cursor and run_date, and the clock for `to: now`. */
export interface WindowBoundsInput {
  file: string;
  cursor: string | undefined;
  runDate: string;
  now: Date;
}

/** `windows.from` and `windows.to` rendered to instants as text. */
export function windowBounds(windows: WindowsConfig, input: WindowBoundsInput): { from: string; to: string } {
  const variables = { cursor: input.cursor ?? '', run_date: input.runDate };
  const render = (text: string) => renderText(text, { file: input.file, variables }).trim();
  const from = render(windows.from);
  if (from === '') {
    throw validationError(`${input.file}: windows.from is empty: there is no committed cursor and no incremental.initial`, {
      suggestion: 'set incremental.initial to the first day to fetch, e.g. initial: "2025-01-01"',
    });
  }
  if (windows.to === 'run_date') return { from, to: input.runDate };
  // Whole seconds: a window bound is rendered to the second (RFC 3339 as the APIs take it).
  if (windows.to === 'now') return { from, to: formatRfc3339(input.now) };
  return { from, to: render(windows.to) };
}

/** The window size in ms: a positive whole number of seconds. */
export function windowSize(size: string, file: string): number {
  const ms = parseDuration(size, `${file}: windows.size`);
  if (ms < 1000 || ms % 1000 !== 0) {
    throw validationError(`${file}: windows.size ${size} is not a positive whole number of seconds`, {
      suggestion: 'use a size such as 1h, 1d or 30d',
    });
  }
  return ms;
}

function instantOf(key: 'from' | 'to', value: string, file: string): Date {
  const instant = parseInstant(value);
  if (!instant) {
    throw validationError(
      `${file}: windows.${key} is ${JSON.stringify(value.slice(0, 40))}, which is not a date (YYYY-MM-DD) or an RFC 3339 timestamp`,
    );
  }
  return instant;
}

/**
 * The windows from `from` to `to` (exclusive) in steps of `size`, the last one cut at `to`; none
 * when `from` is not before `to`. Bounds render as dates (YYYY-MM-DD) when every one of them falls
 * on 00:00 UTC, else as RFC 3339 timestamps, so a committed cursor keeps the spelling it was
 * planned in.
 */
export function planWindows(bounds: { from: string; to: string; size: string }, file: string): DateWindow[] {
  const sizeMs = windowSize(bounds.size, file);
  const from = instantOf('from', bounds.from, file).getTime();
  const to = instantOf('to', bounds.to, file).getTime();
  if (from >= to) return [];
  const count = Math.ceil((to - from) / sizeMs);
  if (count > MAX_WINDOWS) {
    throw validationError(
      `${file}: windows: ${count} windows of ${bounds.size} from ${bounds.from} to ${bounds.to}, more than the ${MAX_WINDOWS} one run may fetch`,
      {
        suggestion: `use a larger windows.size (at least ${Math.ceil((to - from) / MAX_WINDOWS / 86_400_000)}d) or a later incremental.initial`,
      },
    );
  }
  const wholeDays = [from, to, sizeMs].every((ms) => isMidnightUtc(new Date(ms)));
  const format = (ms: number) => (wholeDays ? formatDate(new Date(ms)) : formatRfc3339(new Date(ms)));
  return Array.from({ length: count }, (_, k) => {
    const start = from + k * sizeMs;
    return { start: format(start), end: format(Math.min(start + sizeMs, to)) };
  });
}
