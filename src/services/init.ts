import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_FILE, STATE_DIR } from '../config/workspace.ts';

export interface InitResult {
  root: string;
  created: string[];
  kept: string[];
  updated: string[];
}

const CONFIG_TEMPLATE = `# convergence workspace configuration (see: convergence --help)
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

/** Creates the workspace skeleton in `dir`. Never overwrites: existing files are kept as they are. */
export async function initWorkspace(dir: string): Promise<InitResult> {
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
  await writeNew(CONFIG_FILE, CONFIG_TEMPLATE);
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
