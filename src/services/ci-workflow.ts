import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkspaceConfig } from '../config/schema.ts';
import { loadWorkspace } from '../config/workspace.ts';
import { DEPLOY_BRANCHES, GITHUB_VARIABLES, renderGithubWorkflow, type CiTarget, type CiTargets } from './ci-github-workflow.ts';

/** The CI systems `init --ci` writes a workflow for. */
export const CI_PROVIDERS = ['github'] as const;
export type CiProvider = (typeof CI_PROVIDERS)[number];

export const GITHUB_WORKFLOW_FILE = path.join('.github', 'workflows', 'convergence.yml');

export interface CiWorkflowResult {
  provider: CiProvider;
  /** Relative to the workspace root. */
  file: string;
  /** False when the file was already there and was kept as it is. */
  written: boolean;
  staging: CiTarget;
  production: CiTarget;
  /** What the operator still does before the workflow can deploy: commands, one per line. */
  nextSteps: string[];
}

type Environments = WorkspaceConfig['environments'];

/** The cloud environments of convergence.yaml, in file order, with their settings. */
function cloudEnvironments(environments: Environments) {
  return Object.entries(environments).flatMap(([name, entry]) =>
    entry && entry.backend !== 'local' ? [{ name, project: entry.project, production: entry.production }] : [],
  );
}

/**
 * Which environments the workflow deploys: production is the one marked `production: true` (else
 * one named production or prod), staging one named staging or stage (else the first other cloud
 * environment). A role convergence.yaml has no environment for gets a placeholder name.
 */
export function pickCiTargets(environments: Environments): CiTargets {
  const cloud = cloudEnvironments(environments);
  const byName = (...names: string[]) => names.map((n) => cloud.find((e) => e.name === n)).find((e) => e !== undefined);
  const production = cloud.find((e) => e.production) ?? byName('production', 'prod');
  const staging = byName('staging', 'stage') ?? cloud.find((e) => e !== production && !e.production);
  const target = (found: (typeof cloud)[number] | undefined, placeholder: string): CiTarget =>
    found ? { name: found.name, ...(found.project ? { project: found.project } : {}), found: true } : { name: placeholder, found: false };
  return { staging: target(staging, 'staging'), production: target(production, 'production') };
}

/** Writes `content` to `file` unless something is already there; true when written. */
async function writeIfAbsent(file: string, content: string): Promise<boolean> {
  await mkdir(path.dirname(file), { recursive: true });
  try {
    await writeFile(file, content, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

/**
 * Writes the CI workflow of the workspace at `root` for the environments of its convergence.yaml.
 * An existing workflow file is never overwritten: it is reported kept.
 */
export async function writeCiWorkflow(root: string, provider: CiProvider, cliVersion: string): Promise<CiWorkflowResult> {
  const workspace = await loadWorkspace(root);
  const targets = pickCiTargets(workspace.config.environments);
  const written = await writeIfAbsent(path.join(workspace.root, GITHUB_WORKFLOW_FILE), renderGithubWorkflow(targets, cliVersion));
  return { provider, file: GITHUB_WORKFLOW_FILE, written, ...targets, nextSteps: githubNextSteps(targets, workspace.config.environments) };
}

const DEPLOY_ACCOUNT_ID = 'convergence-deploy';
const POOL = 'github';
/** What the workflow's account does: deploy and probe (run), push pipelines (bigquery), validate secrets. */
const DEPLOY_ROLES = [
  'roles/run.developer',
  'roles/run.invoker',
  'roles/bigquery.dataEditor',
  'roles/bigquery.jobUser',
  'roles/secretmanager.secretAccessor',
];

/** The gcloud commands that let the repository's workflow act as the deploy account of `project`. */
function federationCommands(project: string, runtimeAccounts: string[]): string[] {
  const account = `${DEPLOY_ACCOUNT_ID}@${project}.iam.gserviceaccount.com`;
  const number = `$(gcloud projects describe ${project} --format='value(projectNumber)')`;
  return [
    `gcloud iam workload-identity-pools create ${POOL} --project=${project} --location=global --display-name="GitHub Actions"`,
    `gcloud iam workload-identity-pools providers create-oidc ${POOL} --project=${project} --location=global --workload-identity-pool=${POOL} ` +
      `--issuer-uri=https://token.actions.githubusercontent.com --attribute-mapping=google.subject=assertion.sub,attribute.repository=assertion.repository ` +
      `--attribute-condition="assertion.repository=='OWNER/REPO'"`,
    `gcloud iam service-accounts create ${DEPLOY_ACCOUNT_ID} --project=${project} --display-name="convergence deploys from GitHub Actions"`,
    `for role in ${DEPLOY_ROLES.join(' ')}; do gcloud projects add-iam-policy-binding ${project} --member=serviceAccount:${account} --role="$role" --condition=None; done`,
    ...runtimeAccounts.map(
      (runtime) =>
        `gcloud iam service-accounts add-iam-policy-binding ${runtime} --project=${project} --member=serviceAccount:${account} --role=roles/iam.serviceAccountUser`,
    ),
    `gcloud iam service-accounts add-iam-policy-binding ${account} --project=${project} --role=roles/iam.workloadIdentityUser ` +
      `--member="principalSet://iam.googleapis.com/projects/${number}/locations/global/workloadIdentityPools/${POOL}/attribute.repository/OWNER/REPO"`,
  ];
}

/** The variables naming the provider and account of `project`; `githubEnv` scopes them to one GitHub environment. */
function variableCommands(project: string, githubEnv?: string): string[] {
  const scope = githubEnv ? ` --env ${githubEnv}` : '';
  const number = `$(gcloud projects describe ${project} --format='value(projectNumber)')`;
  return [
    `gh variable set ${GITHUB_VARIABLES.provider}${scope} --body "projects/${number}/locations/global/workloadIdentityPools/${POOL}/providers/${POOL}"`,
    `gh variable set ${GITHUB_VARIABLES.account}${scope} --body ${DEPLOY_ACCOUNT_ID}@${project}.iam.gserviceaccount.com`,
  ];
}

/**
 * The accounts a deploy attaches (the service's, the job's), which the deploy account must act
 * as; named as `setup` names them when convergence.yaml does not.
 */
function runtimeAccountsOf(target: CiTarget, project: string, environments?: Environments): string[] {
  const entry = environments?.[target.name];
  const settings = entry && entry.backend !== 'local' ? entry : undefined;
  const service = settings?.service_account ?? `convergence-api-${target.name}@${project}.iam.gserviceaccount.com`;
  const job =
    settings?.job_service_account ??
    (settings?.service_account ? service : `convergence-job-${target.name}@${project}.iam.gserviceaccount.com`);
  return [...new Set([service, job])];
}

/** What to do before the GitHub workflow can run: setup, federation, variables, the approval. */
export function githubNextSteps(targets: CiTargets, environments?: Environments): string[] {
  const { staging, production } = targets;
  const projectOf = (t: CiTarget, placeholder: string) => t.project ?? placeholder;
  const stagingProject = projectOf(staging, 'STAGING_PROJECT');
  const productionProject = projectOf(production, 'PRODUCTION_PROJECT');
  const steps = [
    `1. Create what convergence needs in each project (--dry-run shows the plan first):`,
    `   convergence setup --env ${staging.name}`,
    `   convergence setup --env ${production.name}`,
    `2. Let the workflow in through Workload Identity Federation (no key file; OWNER/REPO is this GitHub repository):`,
  ];
  const stagingAccounts = runtimeAccountsOf(staging, stagingProject, environments);
  const productionAccounts = runtimeAccountsOf(production, productionProject, environments);
  if (productionProject === stagingProject) {
    // One pool and one deploy account serve both environments of a shared project.
    steps.push(...federationCommands(stagingProject, [...new Set([...stagingAccounts, ...productionAccounts])]).map((c) => `   ${c}`));
  } else {
    steps.push(...federationCommands(stagingProject, stagingAccounts).map((c) => `   ${c}`));
    steps.push(...federationCommands(productionProject, productionAccounts).map((c) => `   ${c}`));
  }
  steps.push(
    `3. Name the provider and account for the workflow (repository variables for ${staging.name}, environment variables for ${production.name}):`,
    ...variableCommands(stagingProject).map((c) => `   ${c}`),
    ...variableCommands(productionProject, production.name).map((c) => `   ${c}`),
    `4. Require a reviewer for the GitHub environment "${production.name}" (Settings → Environments → ${production.name}): pushes to ${DEPLOY_BRANCHES.production} deploy only once approved.`,
  );
  if (!staging.found || !production.found) {
    steps.push(`The workflow uses placeholder environment names where convergence.yaml has none: add them, or edit the workflow.`);
  }
  return steps;
}
