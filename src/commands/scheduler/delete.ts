import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { confirm } from '../../cli/prompt.ts';
import { deleteScheduledJob, scheduledJobName, type DeleteResult } from '../../services/schedules/cloud-jobs.ts';

export default class SchedulerDelete extends BaseCommand<typeof SchedulerDelete> {
  static override summary = 'Delete a Cloud Scheduler job of an environment.';
  static override description = '`convergence scheduler setup` creates it again.';
  static override examples = [
    '<%= config.bin %> scheduler delete dispatch-tenant-pipelines --env prod',
    '<%= config.bin %> scheduler delete reset-daily-quotas --env prod --yes --json',
  ];
  static override args = {
    job: Args.string({ description: 'Job: reset-daily-quotas, cleanup-orphaned-pipelines or dispatch-tenant-pipelines', required: true }),
  };
  static override flags = { yes: Flags.boolean({ char: 'y', description: 'Confirm without a prompt' }) };

  public async run(): Promise<DeleteResult> {
    const ctx = await this.context();
    const name = scheduledJobName(ctx, this.args.job);
    await confirm(`Delete scheduler job ${name} in ${ctx.env.name}? Its runs stop until \`scheduler setup\` creates it again.`, {
      yes: this.flags.yes,
      action: `delete scheduler job ${name}`,
    });
    const result = await deleteScheduledJob(ctx, this.args.job);
    this.log(`Deleted ${result.name}.`);
    return result;
  }
}
