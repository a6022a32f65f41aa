import { redactKnownSecrets } from '../lib/redaction.ts';

/**
 * The services speak to a CLI user: their messages and suggestions name flags (`--param`,
 * `--env prod`, `--tenant acme`). An API caller cannot pass flags, so every text that leaves the
 * server goes through `forApiCaller`: flags with a request field of their own become that field,
 * the flags of a suggested operator command are dropped from it, and any other flag loses its
 * dashes. Known secrets are redacted on the way.
 */

/** Flags whose meaning a request carries in a field of its own. */
const API_FIELDS: ReadonlyArray<[RegExp, string]> = [
  [/--param[ =]([A-Za-z_][A-Za-z0-9_]*)=VALUE/g, 'parameters: {"$1": "VALUE"}'],
  [/--param\b/g, 'parameters'],
  [/--run-date\b/g, 'run_date'],
  [/--full-refresh\b/g, 'full_refresh'],
  [/--expires-in\b/g, 'expires_in_days'],
  [/--name\b/g, 'company_name'],
];

/** Flags that take no value: inside a command, the word after them is not theirs. */
const SWITCHES = new Set(['yes', 'all', 'force', 'list', 'json', 'dry-run', 'wait', 'replace', 'remote', 'full-refresh']);

const FLAG = /^--([a-z][a-z0-9-]*)(=.*)?$/;

/** A suggested command without its flags: `convergence pipeline runs --tenant x --status RUNNING` → `convergence pipeline runs`. */
function withoutFlags(command: string): string {
  const words = command.split(/\s+/).filter(Boolean);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const flag = FLAG.exec(words[i]!);
    if (!flag) {
      kept.push(words[i]!);
      continue;
    }
    const takesValue = !flag[2] && !SWITCHES.has(flag[1]!);
    if (takesValue && i + 1 < words.length && !words[i + 1]!.startsWith('--')) i++;
  }
  return kept.join(' ');
}

/** A service's message or suggestion, as an API caller may read it: no CLI flag, no known secret. */
export function forApiCaller(text: string): string {
  let out = redactKnownSecrets(text);
  for (const [pattern, field] of API_FIELDS) out = out.replace(pattern, field);
  // Suggested commands in backticks keep their words, not their flags.
  out = out.replace(/`([^`]*)`/g, (_match, command: string) => `\`${withoutFlags(command)}\``);
  // "(check --env too)": advice that only concerns the CLI.
  out = out.replace(/\s*\(check --[a-z-]+ too\)/g, '');
  // Any flag left in prose keeps its name, not its dashes.
  return out.replace(/(^|[\s(])--([a-z][a-z0-9-]*)/g, '$1$2');
}
