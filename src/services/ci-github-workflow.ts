/**
 * The GitHub Actions workflow `convergence init --ci github` writes, in the shape of the seeds'
 * CI/CD: pull requests validate every tenant's pipelines, develop deploys to staging with a
 * canary, main deploys to production behind the approval of a GitHub environment. Google Cloud
 * is reached only through Workload Identity Federation: GitHub's OIDC token is exchanged for the
 * deploy account named by repository variables, so no key file or JSON secret exists anywhere.
 */

/** A convergence.yaml environment the workflow targets (or the placeholder used when it has none). */
export interface CiTarget {
  /** The environment's name in convergence.yaml, also the GitHub environment of its deploy job. */
  name: string;
  project?: string;
  /** False when convergence.yaml has no such environment and `name` is a placeholder. */
  found: boolean;
}

export interface CiTargets {
  staging: CiTarget;
  production: CiTarget;
}

/** Repository (or GitHub environment) variables the workflow authenticates with. */
export const GITHUB_VARIABLES = { provider: 'GCP_WIF_PROVIDER', account: 'GCP_DEPLOY_SA' } as const;

/** The branch whose pushes deploy to each target. */
export const DEPLOY_BRANCHES = { staging: 'develop', production: 'main' } as const;

/** Why a target's name is a guess, in the workflow itself, so the reader fixes it where it is used. */
function placeholderNote(role: keyof CiTargets, target: CiTarget, indent: string): string {
  if (target.found) return '';
  return `${indent}# PLACEHOLDER: convergence.yaml has no ${role} environment yet. Add environments.${target.name}
${indent}# (\`convergence init\` writes a commented block to start from) or change "${target.name}" here.
`;
}

/** The steps every job starts with: the workspace, Node 22, Google credentials, the pinned CLI. */
function setupSteps(): string {
  return `      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 22
      - name: Authenticate to Google Cloud (Workload Identity Federation)
        uses: google-github-actions/auth@v2
        with:
          workload_identity_provider: \${{ vars.${GITHUB_VARIABLES.provider} }}
          service_account: \${{ vars.${GITHUB_VARIABLES.account} }}
      - name: Install convergence
        run: npm install --global "$CONVERGENCE_PACKAGE"
`;
}

/**
 * google-auth-library cannot mint ID tokens from the external_account credentials the auth step
 * writes, and a deploy health-checks a private service with one. The same federated token,
 * wrapped as impersonated_service_account credentials of the same account, can.
 */
export const ID_TOKEN_STEP_NAME = 'Let the health checks mint ID tokens';
const idTokenStep = `      - name: ${ID_TOKEN_STEP_NAME}
        # google-auth-library mints no ID token from the external_account file the auth step writes;
        # the same federated token wrapped as impersonated_service_account credentials can.
        run: |
          creds="$RUNNER_TEMP/convergence-credentials.json"
          node --input-type=module -e '
            import { readFileSync, writeFileSync } from "node:fs";
            const [from, to] = process.argv.slice(1);
            const { service_account_impersonation_url: url, ...federated } = JSON.parse(readFileSync(from, "utf8"));
            if (!url) process.exit(0);
            const wrapped = { type: "impersonated_service_account", service_account_impersonation_url: url, source_credentials: federated };
            writeFileSync(to, JSON.stringify(wrapped), { mode: 0o600 });
          ' "$GOOGLE_APPLICATION_CREDENTIALS" "$creds"
          if [ -f "$creds" ]; then echo "GOOGLE_APPLICATION_CREDENTIALS=$creds" >> "$GITHUB_ENV"; fi
`;

/** A shell loop over the tenant folders of configs/, running `command` with $tenant set; fails after all ran. */
function everyTenant(command: string): string {
  return `          shopt -s nullglob
          status=0
          for dir in configs/*/; do
            tenant="$(basename "$dir")"
            ${command} || status=1
          done
          exit "$status"
`;
}

function deployJob(role: keyof CiTargets, target: CiTarget, approval: boolean): string {
  const branch = DEPLOY_BRANCHES[role];
  const approvalNote = approval
    ? `    # Deploys wait for a reviewer of the GitHub environment "${target.name}" (Settings → Environments →
    # Required reviewers); that approval is the confirmation, hence --yes.
`
    : '';
  return `  deploy-${role}:
    name: Deploy to ${target.name}
    needs: validate
    if: github.event_name == 'push' && github.ref == 'refs/heads/${branch}'
    runs-on: ubuntu-latest
${approvalNote}${placeholderNote(role, target, '    ')}    environment: ${target.name}
    # One deploy of an environment at a time: the next one waits, none is cancelled half-way.
    concurrency:
      group: convergence-deploy-${target.name}
      cancel-in-progress: false
    env:
      CONVERGENCE_ENV: ${target.name}
    steps:
${setupSteps()}${idTokenStep}      - name: Deploy the environment's image with a canary
        run: convergence deploy --env "$CONVERGENCE_ENV" --canary${approval ? ' --yes' : ''}
      - name: Push every tenant's pipelines
        run: |
${everyTenant('convergence pipeline push --tenant "$tenant" --env "$CONVERGENCE_ENV"')}`;
}

/** The workflow file's text for these targets, installing the given convergence version. */
export function renderGithubWorkflow(targets: CiTargets, cliVersion: string): string {
  const { staging, production } = targets;
  return `# Written by \`convergence init --ci github\`. Yours to edit: init never overwrites it.
#
# Pull requests and pushes: every tenant's pipelines are validated against the ${staging.name} environment
#   (its rules: gs:// file paths, secrets in Secret Manager or tenant credentials).
# Push to ${DEPLOY_BRANCHES.staging}: \`convergence deploy --canary\` to ${staging.name}${staging.project ? ` (project ${staging.project})` : ''}, then every tenant's pipelines are pushed.
# Push to ${DEPLOY_BRANCHES.production}: the same to ${production.name}${production.project ? ` (project ${production.project})` : ''}, once a reviewer approves.
#
# Google Cloud is reached only through Workload Identity Federation: GitHub's OIDC token is
# exchanged for the deploy service account. Repository variables ${GITHUB_VARIABLES.provider} (the provider's
# full name) and ${GITHUB_VARIABLES.account} (the account's email) name them; variables of the same names on the
# GitHub environment "${production.name}" override them for production. No key file, no JSON secret.
name: convergence

on:
  pull_request:
  push:
    branches: [${DEPLOY_BRANCHES.staging}, ${DEPLOY_BRANCHES.production}]

permissions:
  contents: read
  id-token: write

env:
  # The convergence CLI the jobs install (npm install spec: a version, a tarball or a git URL of
  # your copy), pinned to the version that wrote this workflow.
  CONVERGENCE_PACKAGE: ${JSON.stringify(`convergence@${cliVersion}`)}

jobs:
  # Pull requests from forks get no OIDC token from GitHub, so their validation cannot sign in.
  validate:
    name: Validate pipelines
    runs-on: ubuntu-latest
    concurrency:
      group: convergence-validate-\${{ github.ref }}
      cancel-in-progress: true
${placeholderNote('staging', staging, '    ')}    env:
      CONVERGENCE_ENV: ${staging.name}
    steps:
${setupSteps()}      - name: Validate every tenant's pipelines
        run: |
${everyTenant('convergence pipeline validate --tenant "$tenant" --env "$CONVERGENCE_ENV"')}
${deployJob('staging', staging, false)}
${deployJob('production', production, true)}`;
}
