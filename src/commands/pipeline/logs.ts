import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { formatDuration, runStatus, stepNote } from '../../cli/display.ts';
import { formatBytes } from '../../lib/bytes.ts';
import { getRunDetails, type RunDetails } from '../../services/runs/store.ts';

export default class PipelineLogs extends BaseCommand<typeof PipelineLogs> {
  static override summary = "Show the step logs of a pipeline run: rows in and out, bytes, duration and each step's error.";
  static override description =
    'Reads tenant_step_logs in step order. Skipped steps show why they were skipped; the run error, if any, is printed after the table in full.';
  static override examples = [
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b',
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --json',
  ];
  static override args = { run_id: Args.string({ description: 'Run id (pipeline_logging_id)', required: true }) };

  public async run(): Promise<RunDetails> {
    const ctx = await this.context();
    const details = await getRunDetails(ctx, this.args.run_id);
    const { run, steps } = details;
    this.log(`Run ${run.runId} (${run.tenantId}/${run.pipelineId}): ${runStatus(run)}`);
    if (steps.length === 0) this.log('No steps recorded.');
    else
      this.log(
        formatTable(steps, [
          { header: '#', get: (s) => s.stepIndex },
          { header: 'step', get: (s) => s.stepName },
          { header: 'type', get: (s) => s.stepType },
          { header: 'status', get: (s) => s.status },
          { header: 'started', get: (s) => s.startTime },
          { header: 'duration', get: (s) => formatDuration(s.durationMs) },
          { header: 'rows in', get: (s) => s.rowsIn },
          { header: 'rows out', get: (s) => s.rowsOut },
          { header: 'bytes', get: (s) => formatBytes(s.bytesProcessed) },
          { header: 'error', get: stepNote },
        ]),
      );
    if (run.errorMessage) this.log(`\nRun error (exit ${run.exitCode ?? '-'}):\n${run.errorMessage}`);
    return details;
  }
}
