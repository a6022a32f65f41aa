import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { runScheduledJob, type ScheduledRunResult } from '../../services/schedules/cloud-jobs.ts';

export default class SchedulerRun extends BaseCommand<typeof SchedulerRun> {
  static override summary = 'Run a scheduler job now.';
  static override description =
    'Cloud environments: Cloud Scheduler runs the job now (RunJob), which starts its Cloud Run job task. The local environment does the work in this process: reset-daily-quotas resets every quota, cleanup-orphaned-pipelines ends orphaned runs.';
  static override examples = [
    '<%= config.bin %> scheduler run reset-daily-quotas',
    '<%= config.bin %> scheduler run cleanup-orphaned-pipelines --env prod --json',
  ];
  static override args = {
    job: Args.string({ description: 'Job: reset-daily-quotas, cleanup-orphaned-pipelines or dispatch-tenant-pipelines', required: true }),
  };

  public async run(): Promise<ScheduledRunResult> {
    const ctx = await this.context();
    const result = await runScheduledJob(ctx, this.args.job);
    if (result.mode === 'in-process') this.log(`Ran ${result.id} in process on ${result.env}.`);
    else {
      this.log(`Cloud Scheduler ran ${result.name} (state ${result.state ?? 'unknown'}).`);
      if (result.lastStatus) this.log(`The target answered with error ${result.lastStatus.code}: ${result.lastStatus.message}`);
    }
    return result;
  }
}
