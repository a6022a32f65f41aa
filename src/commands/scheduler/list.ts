import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { listSchedule, type ListResult } from '../../services/schedules/cloud-jobs.ts';

export default class SchedulerList extends BaseCommand<typeof SchedulerList> {
  static override summary = 'List the scheduler jobs of an environment: schedule, time zone, state and last attempt.';
  static override description =
    'Cloud environments: the convergence-<env>-* jobs in Cloud Scheduler, plus planned jobs not created yet (NOT_CREATED). The local environment prints the plan.';
  static override examples = ['<%= config.bin %> scheduler list --env prod', '<%= config.bin %> scheduler list --env prod --json'];

  public async run(): Promise<ListResult> {
    const ctx = await this.context();
    const result = await listSchedule(ctx);
    this.log(
      formatTable(result.jobs, [
        { header: 'name', get: (j) => j.id },
        { header: 'schedule', get: (j) => j.schedule },
        { header: 'tz', get: (j) => j.timeZone },
        { header: 'state', get: (j) => j.state },
        { header: 'last attempt', get: (j) => j.lastAttemptTime?.toISOString() ?? null },
        {
          header: 'last result',
          get: (j) => (j.lastAttemptTime ? (j.lastStatus ? `error ${j.lastStatus.code}: ${j.lastStatus.message}` : 'ok') : null),
        },
      ]),
    );
    if (result.backend === 'local') this.log('Local environment: planned jobs only; run one now with `convergence scheduler run <job>`.');
    return result;
  }
}
