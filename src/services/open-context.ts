import { createBackends } from '../backends/factory.ts';
import { loadWorkspace, resolveEnv, type ResolvedEnv, type Workspace } from '../config/workspace.ts';
import { defaultActor, type ServiceContext } from './context.ts';
import { settleDeliveries } from './notifications/pending.ts';

export interface OpenContextOptions {
  /** --env: the environment name (default: $CONVERGENCE_ENV, then default_env, then local). */
  env?: string;
  /** --project: the Google Cloud project of a cloud environment. */
  project?: string;
  now?: () => Date;
  /** Default: `cli:<user name>`. */
  actor?: string;
  /** Where non-fatal findings go; default: dropped. */
  warn?: (message: string) => void;
}

/** A ServiceContext that owns its adapters: close() closes them. */
export interface OpenedContext extends ServiceContext {
  close(): Promise<void>;
}

/**
 * The context of every use case: the workspace at `cwd`, the environment `options.env` names and
 * its adapters (each opened on first use). The CLI, doctor and the tests build it here.
 */
export async function openContext(cwd: string, options: OpenContextOptions = {}): Promise<OpenedContext> {
  const workspace = await loadWorkspace(cwd);
  const env = resolveEnv(workspace, options.env, options.project);
  return contextFor(workspace, env, options);
}

/** The same context for a workspace and environment already loaded (doctor checks each step on its own). */
export function contextFor(
  workspace: Workspace,
  env: ResolvedEnv,
  options: Omit<OpenContextOptions, 'env' | 'project'> = {},
): OpenedContext {
  const backends = createBackends(workspace, env);
  return {
    workspace,
    env,
    backends,
    now: options.now ?? (() => new Date()),
    actor: options.actor ?? defaultActor(),
    warn: options.warn ?? (() => {}),
    // Notifications still on their way are given their bounded time: they record themselves in the warehouse.
    close: async () => {
      await settleDeliveries(backends);
      await backends.close();
    },
  };
}
