import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { followStages } from '../cli/progress.ts';
import { confirm } from '../cli/prompt.ts';
import { formatTable } from '../cli/render.ts';
import { usageError } from '../lib/errors.ts';
import { planRows, planSummary } from '../services/setup/plan-table.ts';
import type { SetupRunResult } from '../services/setup/run.ts';

export default class Setup extends BaseCommand<typeof Setup> {
  static override summary =
    'Bring a Google Cloud project to what an environment needs, once: APIs, accounts, roles, key, bucket, registry, dataset, admin key, job.';
  static override description = `Reads the environment from convergence.yaml and plans, step by step (each step only reads):
  config            the names setup uses written into convergence.yaml when absent (kms_key, state_bucket, service, job and the three service accounts), comments kept
  apis              run, cloudbuild, artifactregistry, secretmanager, bigquery, cloudkms, cloudscheduler, storage, logging, monitoring, pubsub, iam, iamcredentials, cloudresourcemanager and serviceusage enabled
  service_accounts  the API service's, the pipeline job's and the scheduler's accounts
  project_iam       their least-privilege roles, granted by read-modify-write of the project policy under its etag (bindings it did not add stay)
  kms               the key ring and key (with a rotation period)
  state_bucket      the state bucket (uniform access, versioning, location)
  registry          the Artifact Registry Docker repository
  dataset           the BigQuery tenants dataset bootstrapped (as \`bootstrap\`)
  admin_key         the admin key in Secret Manager when absent
  job               the Cloud Run job as \`deploy\` creates it (skipped until the environment has an image)
The plan is printed as a table; --dry-run stops there and writes nothing. Then each step reads again and applies what is left, so a rerun after a failure continues where it stopped and a rerun on a complete project changes nothing. A closing \`doctor --env\` checks the result. A production environment asks before writing (--yes skips the question).

Exit codes: 0 set up (doctor warnings and skips, e.g. a service not deployed yet, do not fail it); 2 bad configuration, a refused confirmation, or a doctor check failing after apply; 7 a permission the caller lacks (the error names it and a role that has it) or missing credentials; the failed step's own code otherwise. The steps before a failed one stay applied.`;
  static override examples = [
    '<%= config.bin %> setup --env staging --dry-run',
    '<%= config.bin %> setup --env staging',
    '<%= config.bin %> setup --env prod --yes --json',
  ];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'Print the plan and change nothing' }),
    yes: Flags.boolean({ char: 'y', description: 'Set up a production environment without a prompt' }),
  };

  public async run(): Promise<SetupRunResult> {
    // Named on purpose: setup writes to a project, never to whichever environment is the default.
    if (!this.flags.env) throw usageError('setup needs --env <name> of a cloud environment in convergence.yaml');
    const ctx = await this.context();
    const { runSetup } = await import('../services/setup/run.ts');
    const json = this.jsonEnabled();
    const result = await runSetup(ctx, {
      dryRun: this.flags['dry-run'],
      onPlan: (planned) => {
        if (!json) for (const line of planLines(planned)) this.log(line);
      },
      confirm: (question) => confirm(question, { yes: this.flags.yes, action: 'set up a production environment' }),
      follow: (titles, apply) => followStages(titles, { json }, apply),
    });
    if (!result.dryRun && !json) for (const line of appliedLines(result)) this.log(line);
    return result;
  }
}

function planLines(result: SetupRunResult): string[] {
  const table = formatTable(planRows(result), [
    { header: 'step', get: (r) => r.step },
    { header: 'action', get: (r) => r.action },
    { header: 'resource', get: (r) => r.resource },
    { header: 'detail', get: (r) => r.detail },
  ]);
  return [table, planSummary(result)];
}

/** What each step did, then the closing doctor's verdict. */
function appliedLines(result: SetupRunResult): string[] {
  const lines = result.steps.map((step) => {
    if (step.note) return `${step.id}: ${step.note}`;
    return `${step.id}: ${step.applied ? `${step.changes.length} change(s) applied` : 'nothing to change'}`;
  });
  const changed = result.steps.some((step) => step.applied);
  lines.push(
    changed
      ? `Set up project ${result.project} for environment ${result.env}.`
      : `Nothing changed: project ${result.project} was already set up for ${result.env}.`,
  );
  const notPassing = result.doctor?.checks.filter((c) => c.status !== 'pass') ?? [];
  for (const check of notPassing)
    lines.push(`doctor ${check.status} ${check.name}: ${check.detail}${check.fix ? ` (fix: ${check.fix})` : ''}`);
  lines.push(
    `doctor: ${result.doctor?.checks.filter((c) => c.status === 'pass').length ?? 0} check(s) passed, ${notPassing.length} listed above.`,
  );
  return lines;
}
