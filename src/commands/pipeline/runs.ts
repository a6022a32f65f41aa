import { Flags } from '@oclif/core';
import { RUN_STATES, type RunState } from '../../domain/states.ts';
import { BaseCommand } from '../../cli/base-command.ts';
import { parseDuration } from '../../lib/duration.ts';
import { formatTable } from '../../cli/render.ts';
import { firstLine, formatDuration, runStatus } from '../../cli/display.ts';
import { listRuns, MAX_LIST_LIMIT, type RunRecord } from '../../services/runs/store.ts';

export default class PipelineRuns extends BaseCommand<typeof PipelineRuns> {
  static override summary = "List a tenant's pipeline runs, newest first.";
  static override description =
    'Reads the run history in tenant_pipeline_runs: run id, pipeline, status, trigger, start, duration, rows and the first line of the error. Runs of a deleted tenant stay listed.';
  static override examples = [
    '<%= config.bin %> pipeline runs --tenant acme_corp',
    '<%= config.bin %> pipeline runs --tenant acme_corp --pipeline p_usage_daily --status FAILED --limit 50',
    '<%= config.bin %> pipeline runs --tenant acme_corp --since 24h --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    pipeline: Flags.string({ description: 'Only runs of this pipeline' }),
    status: Flags.string({ description: 'Only runs in this status', options: [...RUN_STATES] }),
    since: Flags.string({ description: 'Only runs created within this long, e.g. 24h or 7d' }),
    limit: Flags.integer({ description: `At most this many runs (1-${MAX_LIST_LIMIT})`, default: 20, min: 1, max: MAX_LIST_LIMIT }),
  };

  public async run(): Promise<RunRecord[]> {
    const sinceMs = this.flags.since ? parseDuration(this.flags.since, '--since') : undefined;
    const ctx = await this.context();
    const runs = await listRuns(ctx, {
      tenantId: this.flags.tenant,
      limit: this.flags.limit,
      ...(this.flags.pipeline ? { pipelineId: this.flags.pipeline } : {}),
      ...(this.flags.status ? { status: this.flags.status as RunState } : {}),
      ...(sinceMs !== undefined ? { since: new Date(ctx.now().getTime() - sinceMs) } : {}),
    });
    if (runs.length === 0) this.log(`No runs for ${this.flags.tenant} match.`);
    else
      this.log(
        formatTable(runs, [
          { header: 'run id', get: (r) => r.runId },
          { header: 'pipeline', get: (r) => r.pipelineId },
          { header: 'status', get: runStatus },
          { header: 'trigger', get: (r) => r.trigger },
          { header: 'started', get: (r) => r.startTime },
          { header: 'duration', get: (r) => formatDuration(r.durationMs) },
          { header: 'rows', get: (r) => r.rowsProcessed },
          { header: 'error', get: (r) => firstLine(r.errorMessage) },
        ]),
      );
    return runs;
  }
}
