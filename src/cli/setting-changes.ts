import type { JobUpdate } from '../services/deploy/job.ts';
import type { SettingChange } from '../services/deploy/settings.ts';

const shown = (value: unknown) => (value === undefined ? '(unset)' : String(value));

/** `title`, then one `setting: current → wanted` line per change, or "(no change)". */
export function settingChangeLines(title: string, changes: SettingChange[]): string[] {
  const lines = changes.map((c) => `    ${c.setting}: ${shown(c.current)} → ${shown(c.wanted)}`);
  return [title, ...(lines.length ? lines : ['    (no change)'])];
}

/** The pipeline job's change, as deploy and rollback print it; `done` says a missing job was created rather than would be. */
export function jobChangeLines(job: JobUpdate, done: boolean): string[] {
  const created = job.existed ? '' : done ? ' (created)' : ' (would be created)';
  return settingChangeLines(`Job ${job.job}${created}:`, job.changes);
}
