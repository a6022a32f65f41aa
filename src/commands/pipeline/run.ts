import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { ConvergenceError, usageError, type ExitCodeValue } from '../../lib/errors.ts';
import { formatTable } from '../../cli/render.ts';
import type { RunPlan } from '../../services/pipelines/plan.ts';
import type { RemoteRunResult } from '../../services/pipelines/remote.ts';
import type { RunSummary } from '../../services/pipelines/run.ts';
import type { StepSummary } from '../../services/runs/steps.ts';

import { formatDuration, formatLogEntry } from '../../cli/display.ts';
import { formatBytes } from '../../lib/bytes.ts';

export default class PipelineRun extends BaseCommand<typeof PipelineRun> {
  static override summary = "Run a tenant's pipeline on the local engine and land the data in the environment's warehouse.";
  static override description = `Steps run in order (ingest, dq, transform) with live row counts on stderr. The run is recorded in tenant_pipeline_runs with one row per step in tenant_step_logs; \`pipeline status|logs <run_id>\` show it later.

One run per tenant and pipeline at a time (exit 5 names the run holding it); the plan's daily run quota applies (exit 6). Ctrl-C stops the run at its next checkpoint, marks it CANCELLED and releases the lock; loads are atomic, so a stopped or killed run can simply be run again.

Each --param must name a parameter the pipeline declares under params: or uses as {{ name }} (at most 50, values up to 1000 characters); anything else is refused before the run starts (exit 2). With --remote the pushed config runs on the environment's Cloud Run job; --param, --run-date and --full-refresh are checked against the pushed pipeline before the execution starts and handed to it.

The notifications the run raises (convergence.yaml \`notifications:\`, or the pipeline's own) are sent before the command exits, within 10 s; a failed delivery is a warning and never changes the exit code.

Exit codes: 0 complete, 3 a step failed, 4 a data-quality rule of severity error failed, 5 already running, 6 quota exceeded.`;
  static override examples = [
    '<%= config.bin %> pipeline run p_usage_daily --tenant acme_corp',
    '<%= config.bin %> pipeline run p_usage_daily --tenant acme_corp --dry-run',
    '<%= config.bin %> pipeline run p_sales --tenant acme_corp --run-date 2025-01-31 --param region=eu',
    '<%= config.bin %> pipeline run p_usage_daily --tenant acme_corp --full-refresh --json',
    '<%= config.bin %> pipeline run p_usage_daily --tenant acme_corp --env prod --remote --wait',
    '<%= config.bin %> pipeline run p_sales --tenant acme_corp --env prod --remote --run-date 2025-01-31 --param region=eu',
  ];
  static override args = { pipeline_id: Args.string({ description: 'Pipeline id (configs/<tenant>/pipelines/<id>.yml)', required: true }) };
  static override flags = {
    tenant: Flags.string({ description: 'Tenant that owns the pipeline', required: true }),
    'dry-run': Flags.boolean({ description: 'Validate and print the plan; write nothing' }),
    'full-refresh': Flags.boolean({ description: 'Ignore incremental cursors (append destinations are replaced)' }),
    param: Flags.string({ description: 'Template variable for {{ name }} as name=value (repeatable)', multiple: true }),
    'run-date': Flags.string({ description: 'Value of {{ run_date }} as YYYY-MM-DD (default: today, UTC)' }),
    remote: Flags.boolean({ description: 'Run the pushed config on Cloud Run Jobs of a cloud --env instead of here' }),
    wait: Flags.boolean({
      description: 'With --remote: follow the execution to its end and exit with its exit code',
      dependsOn: ['remote'],
    }),
  };

  public async run(): Promise<RunPlan | RunSummary | RemoteRunResult> {
    const params = parseParams(this.flags.param ?? []);
    if (this.flags.remote) return this.runRemote(params);
    const input = {
      tenantId: this.flags.tenant,
      pipelineId: this.args.pipeline_id,
      params,
      fullRefresh: this.flags['full-refresh'],
      ...(this.flags['run-date'] ? { runDate: this.flags['run-date'] } : {}),
    };
    const ctx = await this.context();
    const { planPipelineRun, runFailure, runPipeline } = await import('../../services/pipelines/run.ts');

    if (this.flags['dry-run']) {
      const plan = await planPipelineRun(ctx, input);
      this.log(
        `Plan for ${plan.pipelineId} of ${plan.tenantId} (run date ${plan.runDate}, config ${plan.configVersion}); nothing was written.`,
      );
      this.log(
        formatTable(plan.steps, [
          { header: '#', get: (s) => s.index + 1 },
          { header: 'STEP', get: (s) => s.name },
          { header: 'TYPE', get: (s) => s.type },
          { header: 'WHAT', get: (s) => s.summary },
        ]),
      );
      return plan;
    }

    const { followStages } = await import('../../cli/progress.ts');
    const { loadBundle } = await import('../../services/pipelines/bundle.ts');
    const bundle = await loadBundle(ctx.workspace.root, input.tenantId, input.pipelineId);
    const interrupt = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupt.signal.aborted) process.exit(130);
      process.stderr.write(`\n${signal}: stopping at the next checkpoint (again to quit at once)\n`);
      interrupt.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let summary: RunSummary;
    try {
      summary = await followStages(
        bundle.pipeline.steps.map((s) => `${s.name} (${s.type})`),
        { json: this.jsonEnabled() },
        (stages) =>
          runPipeline(
            ctx,
            // The bundle read for the step titles is the one the run executes.
            { ...input, bundle, signal: interrupt.signal },
            {
              stepStarted: (i) => stages.start(i),
              stepProgress: (i, text) => stages.update(i, text),
              stepFinished: (i, step) => stages.finish(i, stageOutcome(step)),
            },
          ),
      );
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    // The run's notifications (bounded) before the result, so a failed delivery is among its warnings.
    const { settleDeliveries } = await import('../../services/notifications/pending.ts');
    await settleDeliveries(ctx.backends);

    this.log(
      `Run ${summary.runId} ${summary.status} in ${formatDuration(summary.durationMs)}: ${summary.rowsProcessed.toLocaleString('en-US')} rows.`,
    );
    this.log(
      formatTable(summary.steps, [
        { header: 'STEP', get: (s) => s.name },
        { header: 'STATUS', get: (s) => s.status },
        { header: 'ROWS IN', get: (s) => s.rowsIn },
        { header: 'ROWS OUT', get: (s) => s.rowsOut },
        { header: 'READ', get: (s) => (s.bytes ? formatBytes(s.bytes) : '') },
        { header: 'TIME', get: (s) => formatDuration(s.durationMs) },
      ]),
    );
    if (summary.status !== 'COMPLETE') throw runFailure(summary);
    return summary;
  }

  /** The pushed config on Cloud Run Jobs; params, run date and full refresh travel as the execution's env overrides. */
  private async runRemote(params: Record<string, string>): Promise<RemoteRunResult> {
    if (this.flags['dry-run']) {
      throw usageError('--dry-run plans a run of the workspace here; it does not apply to --remote', {
        suggestion: 'drop --remote to see the plan, or drop --dry-run to start the remote run',
      });
    }
    const ctx = await this.context();
    const { startRemoteRun } = await import('../../services/pipelines/remote.ts');
    const result = await startRemoteRun(ctx, {
      tenantId: this.flags.tenant,
      pipelineId: this.args.pipeline_id,
      params,
      fullRefresh: this.flags['full-refresh'],
      ...(this.flags['run-date'] ? { runDate: this.flags['run-date'] } : {}),
      wait: this.flags.wait,
      onProgress: (text) => {
        if (!this.jsonEnabled()) process.stderr.write(`${text}\n`);
      },
      // The execution's Cloud Logging lines, on stderr so --json keeps stdout to its envelope.
      onLog: (entry) => process.stderr.write(`${formatLogEntry(entry)}\n`),
    });
    this.log(`Run ${result.runId}: execution ${result.execution} of job ${result.job} ${result.state} (config ${result.configVersion}).`);
    if (result.message && result.state !== 'SUCCEEDED') this.log(`Cloud Run: ${result.message}`);
    if (result.logUri) this.log(`Logs: ${result.logUri}`);
    if (this.flags.wait && result.exitCode !== 0) {
      // The run's own error when its container recorded one, else Cloud Run's reason.
      const why = result.run?.errorMessage ?? result.message;
      throw new ConvergenceError(
        result.run?.status === 'FAILED' ? 'RUN_FAILED' : 'REMOTE_RUN_FAILED',
        result.exitCode as ExitCodeValue,
        `remote run ${result.runId} ended ${result.run?.status ?? result.state}${why ? `: ${why}` : ''}`,
        {
          suggestion: `see \`convergence pipeline logs ${result.runId} --env ${ctx.env.name}\`${result.logUri ? ` and ${result.logUri}` : ''}`,
          data: { remote: result },
        },
      );
    }
    return result;
  }
}

/** --param name=value pairs (repeatable); a malformed pair is a usage error (exit 2). */
function parseParams(pairs: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pair.slice(0, eq))) {
      throw usageError(`--param ${JSON.stringify(pair)} is not name=value`, { suggestion: '--param region=eu' });
    }
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return params;
}

function stageOutcome(step: StepSummary) {
  const rows = `${step.rowsOut.toLocaleString('en-US')} rows`;
  const title = `${step.name} (${step.type}) — ${rows}, ${formatDuration(step.durationMs)}`;
  if (step.status === 'COMPLETE') return { status: 'ok' as const, title };
  if (step.status === 'SKIPPED') return { status: 'skipped' as const, message: `${step.name} skipped` };
  return { status: 'failed' as const, title, message: `${step.name} ${step.status}: ${step.error ?? ''}` };
}
