import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatRecord, formatTable } from '../../cli/render.ts';
import { formatDuration, runStatus, stepNote } from '../../cli/display.ts';
import { getRunDetails, type RunDetails } from '../../services/runs/store.ts';

export default class PipelineStatus extends BaseCommand<typeof PipelineStatus> {
  static override summary = 'Show one pipeline run: status, timing, rows, error and a summary of its steps.';
  static override description =
    'Exits 0 whatever the run status is; read `status` (PENDING, RUNNING, COMPLETE, FAILED, CANCELLED, TIMEOUT) from --json. An unknown run id exits 8.';
  static override examples = [
    '<%= config.bin %> pipeline status 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b',
    '<%= config.bin %> pipeline status 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --json',
  ];
  static override args = { run_id: Args.string({ description: 'Run id (pipeline_logging_id)', required: true }) };

  public async run(): Promise<RunDetails> {
    const ctx = await this.context();
    const details = await getRunDetails(ctx, this.args.run_id);
    const { run, steps } = details;
    this.log(
      formatRecord([
        ['run', run.runId],
        ['tenant', run.tenantId],
        ['pipeline', run.pipelineId],
        ['status', runStatus(run)],
        ['trigger', run.triggeredBy ? `${run.trigger} by ${run.triggeredBy}` : run.trigger],
        ['run date', run.runDate],
        [
          'parameters',
          Object.keys(run.parameters).length
            ? Object.entries(run.parameters)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ')
            : null,
        ],
        ['config version', run.configVersion],
        ['started', run.startTime],
        ['ended', run.endTime],
        ['timeout at', run.timeoutAt],
        ['duration', formatDuration(run.durationMs)],
        ['rows', run.rowsProcessed],
        ['exit code', run.exitCode],
        ['error', run.errorMessage],
      ]),
    );
    if (steps.length) {
      this.log('');
      this.log(
        formatTable(steps, [
          { header: '#', get: (s) => s.stepIndex },
          { header: 'step', get: (s) => s.stepName },
          { header: 'type', get: (s) => s.stepType },
          { header: 'status', get: (s) => s.status },
          { header: 'duration', get: (s) => formatDuration(s.durationMs) },
          { header: 'rows out', get: (s) => s.rowsOut },
          { header: 'note', get: stepNote },
        ]),
      );
    } else this.log('\nNo steps recorded yet.');
    return details;
  }
}
