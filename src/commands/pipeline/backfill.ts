import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatDuration } from '../../cli/display.ts';
import { formatTable } from '../../cli/render.ts';
import type { StageOutcome } from '../../lib/stages.ts';
import type { BackfillDate, BackfillInput, BackfillPlan, BackfillResult } from '../../services/pipelines/backfill.ts';

export default class PipelineBackfill extends BaseCommand<typeof PipelineBackfill> {
  static override summary = 'Run a pipeline once for every run date of a range, oldest first, skipping dates that already completed.';
  static override description = `Each date is one run with that {{ run_date }}, exactly as \`pipeline run --run-date\` would start it: on the local engine, or with --remote as the pushed config on the environment's Cloud Run job, followed to its end. A date whose latest run of the pipeline is COMPLETE is skipped (--force runs it again), so a backfill that stopped is resumed by running it again; the run history of the whole range is read once.

The dates run one after another: every run of a pipeline holds its run lock, here and on Cloud Run alike, so --concurrency above 1 is refused. While another run holds the lock a date waits for it (up to 10 minutes) instead of failing. When the daily run quota is used up the backfill stops; the remaining dates are listed as not run. Ranges over 366 days need --yes; --to cannot be after today (UTC).

Exit codes: 0 every date complete or skipped; 3 a date failed (the failed runs' own code, e.g. 4, when they all failed the same way), later dates still run; 5 the lock stayed held; 6 quota exceeded; 2 a bad range.`;
  static override examples = [
    '<%= config.bin %> pipeline backfill p_usage_daily --tenant acme_corp --from 2025-01-01 --to 2025-01-07',
    '<%= config.bin %> pipeline backfill p_usage_daily --tenant acme_corp --from 2025-01-01 --to 2025-01-31 --dry-run',
    '<%= config.bin %> pipeline backfill p_usage_daily --tenant acme_corp --from 2025-01-01 --to 2025-01-07 --force --json',
    '<%= config.bin %> pipeline backfill p_usage_daily --tenant acme_corp --env prod --remote --from 2024-01-01 --to 2025-01-31 --yes',
  ];
  static override args = { pipeline_id: Args.string({ description: 'Pipeline id (configs/<tenant>/pipelines/<id>.yml)', required: true }) };
  static override flags = {
    tenant: Flags.string({ description: 'Tenant that owns the pipeline', required: true }),
    from: Flags.string({ description: 'First run date, YYYY-MM-DD', required: true }),
    to: Flags.string({ description: 'Last run date, YYYY-MM-DD (included)', required: true }),
    remote: Flags.boolean({ description: 'Run the pushed config on Cloud Run Jobs of a cloud --env, one execution per date' }),
    concurrency: Flags.integer({
      description: 'Dates run at a time; a pipeline runs one date at a time, so only 1 is accepted',
      default: 1,
    }),
    force: Flags.boolean({ description: 'Run dates whose latest run is COMPLETE as well' }),
    'dry-run': Flags.boolean({ description: 'List the dates it would run and skip; run nothing' }),
    yes: Flags.boolean({ description: 'Confirm a range of more than 366 dates' }),
  };

  public async run(): Promise<BackfillPlan | BackfillResult> {
    const input: BackfillInput = {
      tenantId: this.flags.tenant,
      pipelineId: this.args.pipeline_id,
      from: this.flags.from,
      to: this.flags.to,
      remote: this.flags.remote,
      force: this.flags.force,
      concurrency: this.flags.concurrency,
    };
    const ctx = await this.context();
    const { CONFIRM_ABOVE_DATES, backfillFailure, planBackfill, runBackfill } = await import('../../services/pipelines/backfill.ts');
    const plan = await planBackfill(ctx, input);
    const toRun = plan.dates.filter((d) => d.action === 'run').length;
    if (this.flags['dry-run']) {
      this.log(
        `Backfill plan for ${plan.pipelineId} of ${plan.tenantId} (${plan.mode}), ${plan.from} to ${plan.to}: ${toRun} to run, ${plan.dates.length - toRun} to skip; nothing was run.`,
      );
      this.log(
        formatTable(plan.dates, [
          { header: 'DATE', get: (d) => d.runDate },
          { header: 'ACTION', get: (d) => d.action },
          { header: 'LATEST RUN', get: (d) => (d.latestRun ? `${d.latestRun.runId} ${d.latestRun.status}` : null) },
        ]),
      );
      return plan;
    }
    if (plan.dates.length > CONFIRM_ABOVE_DATES) {
      const { confirm } = await import('../../cli/prompt.ts');
      await confirm(`Run ${toRun} dates of ${plan.pipelineId} (${plan.from} to ${plan.to})?`, {
        yes: this.flags.yes,
        action: `backfill ${plan.dates.length} dates`,
      });
    }

    const { followStages } = await import('../../cli/progress.ts');
    const interrupt = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupt.signal.aborted) process.exit(130);
      process.stderr.write(`\n${signal}: stopping the running date at its next checkpoint; no later date starts (again to quit at once)\n`);
      interrupt.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let result: BackfillResult;
    try {
      result = await followStages(
        plan.dates.map((d) => d.runDate),
        { json: this.jsonEnabled() },
        (stages) =>
          runBackfill(ctx, { ...input, signal: interrupt.signal }, plan, {
            dateStarted: (i) => stages.start(i),
            dateProgress: (i, text) => stages.update(i, text),
            dateFinished: (i, date) => stages.finish(i, dateOutcome(date)),
          }),
      );
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    // The dates' notifications (bounded) before the result, so a failed delivery is among its warnings.
    const { settleDeliveries } = await import('../../services/notifications/pending.ts');
    await settleDeliveries(ctx.backends);

    const { complete, failed, skipped, notRun } = result.counts;
    this.log(
      `Backfill of ${result.pipelineId} for ${result.tenantId}, ${result.from} to ${result.to}: ${complete} complete, ${failed} failed, ${skipped} skipped, ${notRun} not run.`,
    );
    this.log(
      formatTable(result.dates, [
        { header: 'DATE', get: (d) => d.runDate },
        { header: 'STATUS', get: (d) => d.status },
        { header: 'RUN ID', get: (d) => d.runId },
        { header: 'ROWS', get: (d) => d.rowsProcessed },
        { header: 'DURATION', get: (d) => formatDuration(d.durationMs) },
        { header: 'ERROR', get: (d) => (d.error === null ? null : (d.error.split('\n')[0] ?? null)) },
      ]),
    );
    if (result.exitCode !== 0) throw backfillFailure(ctx, result);
    return result;
  }
}

/** A date's row in the stage list. */
function dateOutcome(date: BackfillDate): StageOutcome {
  const run = date.runId ? `run ${date.runId}` : '';
  switch (date.status) {
    case 'COMPLETE':
      return {
        status: 'ok',
        title: `${date.runDate} COMPLETE — ${run}, ${(date.rowsProcessed ?? 0).toLocaleString('en-US')} rows, ${formatDuration(date.durationMs)}`,
      };
    case 'SKIPPED':
      return { status: 'skipped', message: `already COMPLETE: ${run}` };
    case 'NOT_RUN':
      return { status: 'skipped', message: 'not run: the backfill stopped' };
    default:
      return { status: 'failed', title: `${date.runDate} ${date.status}`, message: `${date.runDate} ${date.status}: ${date.error ?? ''}` };
  }
}
