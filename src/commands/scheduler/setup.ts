import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { setupSchedule, type SetupResult } from '../../services/schedules/cloud-jobs.ts';

export default class SchedulerSetup extends BaseCommand<typeof SchedulerSetup> {
  static override summary = 'Create or update the Cloud Scheduler jobs of an environment: quota reset, orphan cleanup and the dispatcher.';
  static override description =
    "Reconciles reset-daily-quotas (0 0 * * * UTC), cleanup-orphaned-pipelines (*/30 * * * *) and dispatch-tenant-pipelines (*/5 * * * *): each job is read, then created or updated with an update mask of only the fields that differ, and the differences are printed. Each job POSTs to the Cloud Run Jobs :run endpoint of the environment's job with an OAuth token of its service_account. Running it again changes nothing. On the local environment it prints the plan.";
  static override examples = [
    '<%= config.bin %> scheduler setup --env prod --dry-run',
    '<%= config.bin %> scheduler setup --env prod',
    '<%= config.bin %> scheduler setup --env prod --json',
  ];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'Print what would change and write nothing' }),
  };

  public async run(): Promise<SetupResult> {
    const ctx = await this.context();
    const result = await setupSchedule(ctx, { dryRun: this.flags['dry-run'] });
    if (result.planOnly) {
      this.log(
        `The local environment "${result.env}" has no Cloud Scheduler. Planned jobs (run one now with \`convergence scheduler run <job>\`):`,
      );
      for (const job of result.jobs) {
        this.log(
          `  ${job.id}  ${job.schedule} (${job.timeZone})  convergence job ${job.task}${job.taskCount > 1 ? ` x${job.taskCount} tasks` : ''}`,
        );
      }
      return result;
    }
    const verb = {
      create: result.dryRun ? 'would create' : 'created',
      update: result.dryRun ? 'would update' : 'updated',
      unchanged: 'unchanged',
    };
    for (const job of result.jobs) {
      this.log(`${job.id}: ${verb[job.action]}`);
      if (job.action === 'unchanged') continue;
      for (const change of job.changes) this.log(`  ${change.field}: ${change.from ?? '(none)'} → ${change.to}`);
    }
    const counts = result.dryRun
      ? `${result.created} to create, ${result.updated} to update, ${result.unchanged} unchanged`
      : `${result.created} created, ${result.updated} updated, ${result.unchanged} unchanged`;
    this.log(`${result.dryRun ? 'Dry run, nothing written: ' : ''}${counts} in ${result.parent}.`);
    return result;
  }
}
