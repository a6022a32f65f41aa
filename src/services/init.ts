import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_FILE, STATE_DIR } from '../config/workspace.ts';
import { EXAMPLE_API_HOST } from './example.ts';

export interface InitResult {
  root: string;
  created: string[];
  kept: string[];
  updated: string[];
}

/**
 * What `rest_sources` says for the local environment: the hosts given (the example's demo API),
 * else the setting commented out, off as by default.
 */
function localRestSources(privateHosts: string[]): string {
  const intro = `    # REST sources may reach only public addresses; these hosts (host or host:port) also on loopback or
    # private ones. google_adc: sources with auth type google may use this machine's own Google credentials.`;
  if (privateHosts.length === 0) return `${intro}\n    # rest_sources: { private_hosts: ["127.0.0.1:8787"], google_adc: false }`;
  return `${intro}\n    rest_sources:\n      private_hosts: [${privateHosts.map((h) => JSON.stringify(h)).join(', ')}]\n      google_adc: false`;
}

const configTemplate = (privateHosts: string[]) => `# convergence workspace configuration (see: convergence --help)
version: 1
# Environment used when neither --env nor CONVERGENCE_ENV is given.
default_env: local

environments:
  # The embedded default: DuckDB warehouse, local keyring, file secrets and locks under .convergence/.
  local:
    backend: local
    # File sources read data/<tenant>/ (relative paths). Absolute paths only under these folders;
    # {tenant} stands for the tenant id and keeps tenants apart. None by default.
    # file_roots: [/srv/exports/{tenant}, gs://acme-exports/{tenant}/]
${localRestSources(privateHosts)}

  # A Google Cloud environment (BigQuery, Cloud KMS, Secret Manager, Cloud Run). Uncomment and fill in.
  # staging:
  #   project: my-project-stage
  #   region: us-central1
  #   location: US
  #   kms_key: projects/my-project-stage/locations/us-central1/keyRings/convergence-keyring-staging/cryptoKeys/api-key-encryption
  #   state_bucket: my-project-stage-convergence-state
  #   service: convergence-api-staging
  #   job: convergence-pipeline-staging
  #   image: us-docker.pkg.dev/my-project-stage/convergence/convergence:latest
  #   service_account: convergence-api-staging@my-project-stage.iam.gserviceaccount.com
  #   canary: { steps: [25, 50, 100], interval: 10m, max_error_rate: 0.01, max_latency_p95_ms: 500, failure_limit: 2 }
  #   rest_sources: { private_hosts: ["usage-api.internal.example"], google_adc: true }
`;

const CONFIGS_README = `# Tenant configuration

One folder per tenant, created by \`convergence tenant create <tenant_id>\`:

    configs/<tenant_id>/pipelines/<pipeline>.yml   pipeline definitions
    configs/<tenant_id>/sources/<source>.yml       source definitions
    configs/<tenant_id>/schemas/<table>.json       BigQuery JSON schema files
    configs/<tenant_id>/sql/<name>.sql             transforms
    configs/<tenant_id>/secrets/<name>.txt         secrets (git-ignored, mode 0600)

The data files of a tenant's file sources live in data/<tenant_id>/ at the workspace root: a
relative \`path:\` (e.g. \`usage_*.csv\`) is read there and cannot leave it.
`;

/** Lines init makes sure the workspace .gitignore has: secrets and local state never reach git. */
export const GITIGNORE_ENTRIES = ['configs/*/secrets/', `${STATE_DIR}/`];

export interface InitOptions {
  /** For `init --example`: the local environment lets REST sources reach the example's demo usage API. */
  example?: boolean;
}

/** Creates the workspace skeleton in `dir`. Never overwrites: existing files are kept as they are. */
export async function initWorkspace(dir: string, options: InitOptions = {}): Promise<InitResult> {
  const root = path.resolve(dir);
  const result: InitResult = { root, created: [], kept: [], updated: [] };
  await mkdir(path.join(root, 'configs'), { recursive: true });

  const writeNew = async (relative: string, content: string) => {
    try {
      await writeFile(path.join(root, relative), content, { flag: 'wx' });
      result.created.push(relative);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      result.kept.push(relative);
    }
  };
  await writeNew(CONFIG_FILE, configTemplate(options.example ? [EXAMPLE_API_HOST] : []));
  await writeNew(path.join('configs', 'README.md'), CONFIGS_README);

  const gitignore = path.join(root, '.gitignore');
  const current = await readFile(gitignore, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (current === undefined) {
    await writeNew('.gitignore', `${GITIGNORE_ENTRIES.join('\n')}\n`);
  } else {
    const have = new Set(current.split(/\r?\n/).map((l) => l.trim()));
    const missing = GITIGNORE_ENTRIES.filter((e) => !have.has(e));
    if (missing.length) {
      await appendFile(gitignore, `${current.endsWith('\n') || current === '' ? '' : '\n'}# convergence\n${missing.join('\n')}\n`);
      result.updated.push('.gitignore');
    } else {
      result.kept.push('.gitignore');
    }
  }
  return result;
}
