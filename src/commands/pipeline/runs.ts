import { Flags } from '@oclif/core';
import { RUN_STATES, type RunState } from '../../domain/states.ts';
import { BaseCommand } from '../../cli/base-command.ts';
import { parseDuration } from '../../lib/duration.ts';
import { formatTable } from '../../cli/render.ts';
import { firstLine, formatDuration, runStatus } from '../../cli/display.ts';
import { listRuns, MAX_LIST_LIMIT, type RunRecord } from '../../services/runs/store.ts';
import type { PipelineStats } from '../../services/runs/stats.ts';

/** Runs listed when --limit is not given. */
const DEFAULT_LIMIT = 20;
/** The window of --stats when --since is not given. */
const DEFAULT_STATS_WINDOW = '7d';

export default class PipelineRuns extends BaseCommand<typeof PipelineRuns> {
  static override summary = "List a tenant's pipeline runs, newest first, or with --stats each pipeline's success rate and durations.";
  static override description = `Reads the run history in tenant_pipeline_runs: run id, pipeline, status, trigger, start, duration, rows and the first line of the error. Runs of a deleted tenant stay listed.

With --stats, one line per pipeline over the runs created within --since (default ${DEFAULT_STATS_WINDOW}): runs, success rate (COMPLETE out of the runs that ended), p50 and p95 duration of the ended runs, rows processed, and the last failure (FAILED or TIMEOUT) with its run id and the first line of its error. The same numbers are served as GET /api/v1/pipelines/stats.`;
  static override examples = [
    '<%= config.bin %> pipeline runs --tenant acme_corp',
    '<%= config.bin %> pipeline runs --tenant acme_corp --pipeline p_usage_daily --status FAILED --limit 50',
    '<%= config.bin %> pipeline runs --tenant acme_corp --since 24h --json',
    '<%= config.bin %> pipeline runs --tenant acme_corp --stats',
    '<%= config.bin %> pipeline runs --tenant acme_corp --stats --since 30d --pipeline p_usage_daily --json',
  ];
  static override flags = {
    tenant: Flags.string({ description: 'Tenant id', required: true }),
    pipeline: Flags.string({ description: 'Only runs of this pipeline' }),
    status: Flags.string({ description: 'Only runs in this status', options: [...RUN_STATES], exclusive: ['stats'] }),
    since: Flags.string({ description: `Only runs created within this long, e.g. 24h or 7d (--stats: default ${DEFAULT_STATS_WINDOW})` }),
    // No flag default: a default would count as given and make every --stats call clash with it.
    limit: Flags.integer({
      description: `At most this many runs (1-${MAX_LIST_LIMIT}, default ${DEFAULT_LIMIT}); --stats answers every pipeline`,
      min: 1,
      max: MAX_LIST_LIMIT,
      exclusive: ['stats'],
    }),
    stats: Flags.boolean({ description: 'Per pipeline: runs, success rate, p50/p95 duration, rows and the last failure' }),
  };

  public async run(): Promise<RunRecord[] | PipelineStats[]> {
    if (this.flags.stats) return this.stats();
    const sinceMs = this.flags.since ? parseDuration(this.flags.since, '--since') : undefined;
    const ctx = await this.context();
    const runs = await listRuns(ctx, {
      tenantId: this.flags.tenant,
      limit: this.flags.limit ?? DEFAULT_LIMIT,
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

  private async stats(): Promise<PipelineStats[]> {
    const window = this.flags.since ?? DEFAULT_STATS_WINDOW;
    const sinceMs = parseDuration(window, '--since');
    const ctx = await this.context();
    const { pipelineStats } = await import('../../services/runs/stats.ts');
    const stats = await pipelineStats(ctx, {
      tenantId: this.flags.tenant,
      since: new Date(ctx.now().getTime() - sinceMs),
      ...(this.flags.pipeline ? { pipelineId: this.flags.pipeline } : {}),
    });
    if (stats.length === 0) {
      this.log(`No runs for ${this.flags.tenant} in the last ${window}.`);
      return stats;
    }
    this.log(`Runs of ${this.flags.tenant} in the last ${window}:`);
    this.log(
      formatTable(stats, [
        { header: 'pipeline', get: (s) => s.pipelineId },
        { header: 'runs', get: (s) => s.runs },
        {
          header: 'success',
          get: (s) => (s.successRate === null ? null : `${(s.successRate * 100).toFixed(1)}% (${s.succeeded}/${s.finished})`),
        },
        { header: 'p50', get: (s) => formatDuration(s.p50DurationMs) },
        { header: 'p95', get: (s) => formatDuration(s.p95DurationMs) },
        { header: 'rows', get: (s) => s.rowsProcessed },
        { header: 'last failure', get: (s) => (s.lastFailure ? `${s.lastFailure.at.toISOString()} ${s.lastFailure.runId}` : null) },
        { header: 'error', get: (s) => s.lastFailure?.error ?? null },
      ]),
    );
    return stats;
  }
}
