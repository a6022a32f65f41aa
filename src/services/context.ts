import os from 'node:os';
import type { Backends } from '../backends/factory.ts';
import type { ResolvedEnv, Workspace } from '../config/workspace.ts';

/** What every use case needs: where it runs, which adapters, a clock and who is acting. */
export interface ServiceContext {
  workspace: Workspace;
  env: ResolvedEnv;
  backends: Backends;
  now(): Date;
  /** Recorded in created_by / pushed_by columns. */
  actor: string;
  /** Non-fatal findings; commands collect them into the JSON envelope. */
  warn(message: string): void;
}

/** ` --env <name>` for a command suggested to the user, nothing for the default local environment. */
export const envFlag = (envName: string) => (envName === 'local' ? '' : ` --env ${envName}`);

export function defaultActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}
