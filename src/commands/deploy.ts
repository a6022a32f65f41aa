import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.ts';
import { followStages } from '../cli/progress.ts';
import { confirm } from '../cli/prompt.ts';
import { jobChangeLines, settingChangeLines } from '../cli/setting-changes.ts';
import type { DeployResult } from '../services/deploy/deploy.ts';

export default class Deploy extends BaseCommand<typeof Deploy> {
  static override summary = 'Ship a new revision of the Cloud Run service, with an optional canary that rolls itself back.';
  static override description = `The new revision starts with no traffic under a tag and is health-checked on the tag URL. With --canary, traffic moves to it step by step while a background analysis probes the tag (error rate, p95 latency, failure limit; flags override the environment's canary settings in convergence.yaml). On any failure the traffic list saved before the deploy is restored and the command exits 9. The first deploy of a service goes straight to 100% with a health check. --dry-run prints the plan and the settings it would change on the service and the pipeline job (current → wanted), and validates both with Cloud Run's validateOnly, changing nothing. The environment's service_account, cpu, memory, min_instances, max_instances, concurrency, timeout, ingress and public keys go on the service; its job (same image, account, resources, task_timeout, max_retries) is created or updated before traffic moves. Unless public: true, the health probes carry an ID token for the service URL, minted from Application Default Credentials (a service account).

Probes go to Run's tag URL; set CONVERGENCE_PROBE_URL (e.g. http://127.0.0.1:8080/{revision}, placeholders {tag}, {revision}, {service}) to probe through another address.`;
  static override examples = [
    '<%= config.bin %> deploy --env staging --image us-docker.pkg.dev/p/convergence/convergence:1.4.0',
    '<%= config.bin %> deploy --env prod --canary --steps 10,50,100 --interval 10m --yes',
    '<%= config.bin %> deploy --env staging --source . --dry-run --json',
  ];
  static override flags = {
    canary: Flags.boolean({ description: 'Shift traffic step by step under analysis instead of all at once after the health check' }),
    image: Flags.string({ description: 'Container image to deploy (default: the environment’s image)', exclusive: ['source'] }),
    source: Flags.string({ description: 'Build this directory with `gcloud builds submit` and deploy the result', exclusive: ['image'] }),
    steps: Flags.string({ description: 'Canary weights in percent, comma separated (default 25,50,100)' }),
    interval: Flags.string({ description: 'Pause with analysis after each step: 500ms, 30s, 10m (default 10m)' }),
    tag: Flags.string({ description: 'Tag of the new revision (default canary-<id>); tag + service name <= 46 characters' }),
    'max-error-rate': Flags.string({ description: 'Highest tolerated error rate of the probes, 0..1 (default 0.05)' }),
    'max-latency-p95': Flags.integer({ description: 'Highest tolerated p95 probe latency in ms (default 2000)' }),
    'failure-limit': Flags.integer({ description: 'Failed measurements tolerated before aborting (default 2)' }),
    'dry-run': Flags.boolean({ description: 'Print the plan and validate it with validateOnly; change nothing' }),
    yes: Flags.boolean({ char: 'y', description: 'Deploy to a production environment without a prompt' }),
  };

  public async run() {
    const ctx = await this.context();
    const { flags } = this;
    const { planDeploy, runDeploy } = await import('../services/deploy/deploy.ts');
    const { deployPrompt } = await import('../services/deploy/production.ts');
    const { validationError } = await import('../lib/errors.ts');
    const rate = flags['max-error-rate'] === undefined ? undefined : Number(flags['max-error-rate']);
    if (rate !== undefined && !(rate >= 0 && rate <= 1))
      throw validationError(`--max-error-rate: ${flags['max-error-rate']} is not between 0 and 1`);
    const plan = planDeploy(ctx, {
      canary: flags.canary,
      image: flags.image,
      source: flags.source,
      steps: flags.steps?.split(',').map((s) => Number(s.trim())),
      interval: flags.interval,
      tag: flags.tag,
      maxErrorRate: rate,
      maxLatencyP95Ms: flags['max-latency-p95'],
      failureLimit: flags['failure-limit'],
      dryRun: flags['dry-run'],
    });
    const prompt = deployPrompt(ctx, plan);
    if (prompt) await confirm(prompt.question, { yes: flags.yes, action: prompt.action });
    if (!this.jsonEnabled()) {
      this.logToStderr(
        `Plan for ${plan.service} in ${plan.project}/${plan.region}: ${plan.canary ? `canary ${plan.steps.join('% → ')}%` : '100% after the health check'}`,
      );
    }
    const result = await followStages(plan.stages, { json: this.jsonEnabled() }, (stages) => runDeploy(ctx, plan, { stages }));
    if (result.dryRun) {
      this.log(
        `Dry run: ${result.firstDeploy ? 'would create' : 'would deploy to'} ${result.service} revision ${result.revision}; validated by Cloud Run, nothing changed.`,
      );
      for (const stage of plan.stages) this.log(`  - ${stage}`);
      for (const line of settingsLines(result)) this.log(line);
    } else {
      this.log(
        `Deployed ${result.revision} to ${result.service}: ${result.trafficAfter.map((t) => `${t.revision ?? 'LATEST'} ${t.percent}%`).join(', ')}`,
      );
    }
    return result;
  }
}

/** The settings diff of a dry run: the service's, then the pipeline job's (current → wanted). */
function settingsLines(result: DeployResult): string[] {
  const lines = settingChangeLines(`Service ${result.service} settings:`, result.serviceChanges);
  return result.job ? [...lines, ...jobChangeLines(result.job, false)] : lines;
}
