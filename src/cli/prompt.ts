import { usageError } from '../lib/errors.ts';

export interface ConfirmOptions {
  yes: boolean;
  /** Shown in the error when we cannot ask, e.g. "drop dataset acme_corp". */
  action: string;
}

/** True when nobody can answer a prompt: no TTY, CI, or the headless job mode. */
function isNonInteractive(): boolean {
  return !process.stdin.isTTY || !process.stderr.isTTY || Boolean(process.env.CI) || process.env.CONVERGENCE_HEADLESS === '1';
}

/**
 * Asks before a destructive step. --yes skips the question; without a TTY we never wait for an
 * answer that cannot come — we refuse with exit 2 and say how to proceed.
 */
export async function confirm(question: string, options: ConfirmOptions): Promise<void> {
  if (options.yes) return;
  if (isNonInteractive()) {
    throw usageError(`refusing to ${options.action} without confirmation in a non-interactive session`, {
      suggestion: 'pass --yes to confirm',
    });
  }
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') {
      throw usageError(`aborted: did not ${options.action}`, { suggestion: 'answer "y" or pass --yes to proceed' });
    }
  } finally {
    rl.close();
  }
}
