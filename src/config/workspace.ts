import { existsSync } from 'node:fs';
import path from 'node:path';
import { usageError } from '../lib/errors.ts';
import { parseYamlWith, readConfigText } from '../lib/yaml-errors.ts';
import { PROJECT_ID_PATTERN, workspaceConfigSchema, type GcpEnvironment, type WorkspaceConfig } from './schema.ts';

export const CONFIG_FILE = 'convergence.yaml';
export const STATE_DIR = '.convergence';

export interface Workspace {
  root: string;
  configFile: string;
  config: WorkspaceConfig;
}

/** What the environment's `rest_sources` lets tenant REST sources do (the engine's RestSourceAccess). */
interface RestSourceSettings {
  privateHosts: string[];
  googleAdc: boolean;
}

/**
 * `fileRoots`: the environment's file_roots as written (`{tenant}` not replaced); absent when it
 * lists none. `restSources`: absent when the environment has no rest_sources (nothing allowed).
 */
export type ResolvedEnv =
  | { name: string; backend: 'local'; stateDir: string; fileRoots?: string[]; restSources?: RestSourceSettings }
  | { name: string; backend: 'gcp'; stateDir: string; settings: GcpEnvironment; fileRoots?: string[]; restSources?: RestSourceSettings };

type EnvironmentEntry = NonNullable<WorkspaceConfig['environments'][string]>;

/** The settings every backend shares: file roots and REST source access, each only when configured. */
const sharedSettings = (entry: EnvironmentEntry | null) => ({
  ...(entry?.file_roots && entry.file_roots.length > 0 ? { fileRoots: entry.file_roots } : {}),
  ...(entry?.rest_sources
    ? { restSources: { privateHosts: entry.rest_sources.private_hosts, googleAdc: entry.rest_sources.google_adc } }
    : {}),
});

/** Nearest directory at or above `start` that holds a convergence.yaml. */
function findWorkspaceRoot(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, CONFIG_FILE))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export async function loadWorkspace(start: string): Promise<Workspace> {
  const root = findWorkspaceRoot(start);
  if (!root) {
    throw usageError(`no ${CONFIG_FILE} in ${path.resolve(start)} or any parent directory`, {
      suggestion: 'run `convergence init` to create a workspace, or cd into one',
    });
  }
  const configFile = path.join(root, CONFIG_FILE);
  const shown = path.relative(process.cwd(), configFile) || CONFIG_FILE;
  const text = await readConfigText(configFile, shown);
  const config = await parseYamlWith(shown, text, workspaceConfigSchema);
  return { root, configFile, config };
}

/** --env flag > CONVERGENCE_ENV > default_env in convergence.yaml > local. */
export function resolveEnv(workspace: Workspace, flag: string | undefined, projectFlag?: string): ResolvedEnv {
  const name = flag ?? process.env.CONVERGENCE_ENV ?? workspace.config.default_env ?? 'local';
  const entry = workspace.config.environments[name];
  const defaultState = path.join(workspace.root, STATE_DIR);
  const localOnly = () => {
    if (projectFlag) throw usageError(`--project applies to cloud environments; "${name}" is local`);
  };
  if (entry === undefined) {
    if (name === 'local') {
      localOnly();
      return { name, backend: 'local', stateDir: defaultState };
    }
    const known = ['local', ...Object.keys(workspace.config.environments).filter((n) => n !== 'local')];
    throw usageError(`unknown environment "${name}" (known: ${known.join(', ')})`, {
      suggestion: `add environments.${name} to ${CONFIG_FILE} or pass one of: --env ${known.join(' | --env ')}`,
    });
  }
  if (entry === null || entry.backend === 'local') {
    localOnly();
    const stateDir = entry?.state_dir ? path.resolve(workspace.root, entry.state_dir) : defaultState;
    return { name, backend: 'local', stateDir, ...sharedSettings(entry) };
  }
  // The flag, then the environment's own project, then the shell's: a project set in the shell
  // never silently redirects an environment that names its own.
  if (projectFlag !== undefined && !PROJECT_ID_PATTERN.test(projectFlag)) {
    throw usageError(`--project ${JSON.stringify(projectFlag)} is not a Google Cloud project id`, {
      suggestion: 'project ids are 6-30 lowercase letters, digits and hyphens, starting with a letter',
    });
  }
  const project = projectFlag ?? entry.project ?? process.env.GOOGLE_CLOUD_PROJECT;
  if (!project) {
    throw usageError(`environment "${name}" has no Google Cloud project`, {
      suggestion: `set environments.${name}.project in ${CONFIG_FILE}, pass --project, or export GOOGLE_CLOUD_PROJECT`,
    });
  }
  return { name, backend: 'gcp', stateDir: defaultState, settings: { ...entry, project }, ...sharedSettings(entry) };
}
