import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { formatDuration, formatLogEntry, runStatus, stepNote } from '../../cli/display.ts';
import { formatBytes } from '../../lib/bytes.ts';
import { followRunLogs, readRunLogs, type RunLogsView } from '../../services/runs/remote-logs.ts';

export default class PipelineLogs extends BaseCommand<typeof PipelineLogs> {
  static override summary = "Show the step logs of a pipeline run: rows in and out, bytes, duration and each step's error.";
  static override description = `Reads tenant_step_logs in step order. Skipped steps show why they were skipped; the run error, if any, is printed after the table in full.

On a cloud --env the lines the run's Cloud Run execution logged follow the table, read from Cloud Logging (the newest --limit, oldest first; --severity keeps those at or above a level). --follow prints them as they arrive until the run ends. Reading them needs roles/logging.viewer on the project (exit 7 names the grant). The local environment has no Cloud Logging: its runs write step logs only.`;
  static override examples = [
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b',
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --json',
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --env prod',
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --env prod --follow',
    '<%= config.bin %> pipeline logs 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --env prod --severity warning --limit 200',
  ];
  static override args = { run_id: Args.string({ description: 'Run id (pipeline_logging_id)', required: true }) };
  static override flags = {
    follow: Flags.boolean({ description: "Cloud env: print the execution's log lines as they arrive until the run ends" }),
    limit: Flags.integer({ description: 'Cloud env: show the newest N log lines (1-10000, default 1000)', exclusive: ['follow'] }),
    severity: Flags.string({ description: 'Cloud env: only log lines of at least this severity (DEBUG, INFO, WARNING, ERROR, ...)' }),
  };

  public async run(): Promise<RunLogsView> {
    const ctx = await this.context();
    const options = this.flags.severity !== undefined ? { severity: this.flags.severity } : {};
    if (!this.flags.follow) {
      const view = await readRunLogs(ctx, this.args.run_id, {
        ...options,
        ...(this.flags.limit !== undefined ? { limit: this.flags.limit } : {}),
      });
      this.showRun(view);
      this.showEntries(view);
      return view;
    }
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    try {
      const view = await followRunLogs(ctx, this.args.run_id, {
        ...options,
        signal: stop.signal,
        onEntry: (entry) => this.log(formatLogEntry(entry)),
      });
      this.showRun(view);
      return view;
    } finally {
      process.off('SIGINT', onSignal);
    }
  }

  private showRun({ run, steps }: RunLogsView): void {
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
  }

  private showEntries({ entries, truncated }: RunLogsView): void {
    if (entries === null) return;
    this.log(
      `\nCloud Logging (${entries.length} line${entries.length === 1 ? '' : 's'}${truncated ? ', older ones left out: raise --limit' : ''}):`,
    );
    for (const entry of entries) this.log(formatLogEntry(entry));
  }
}
