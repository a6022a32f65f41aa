import { Args, Errors, Flags } from '@oclif/core';
import { cloudEnv } from '../backends/factory.ts';
import { BaseCommand } from '../cli/base-command.ts';
import { ExitCode, isConvergenceError } from '../lib/errors.ts';
import { cloudRunTask, JobLogger } from '../job/logger.ts';
import { JOB_TASKS, type JobRuntime } from '../job/tasks.ts';

/** Cloud Run sends SIGKILL about 10 s after SIGTERM: leave by ourselves before that. */
const HARD_DEADLINE_MS = 9_000;
const SIGNAL_EXIT = { SIGTERM: 143, SIGINT: 130 } as const;

export default class Job extends BaseCommand<typeof Job> {
  static override summary = 'Run one headless task, as a Cloud Run Job does: run-pipeline, dispatch, reset-quotas, cleanup-orphans.';
  static override description = `Headless: never prompts, no colour, no progress display. Logs one JSON object per line on stdout in the Cloud Logging shape (severity, message, logging.googleapis.com/trace, logging.googleapis.com/labels with tenant_id, pipeline_id, run_id, execution, task_index; time). With --json those lines go to stderr and stdout carries the usual JSON envelope with the task's result.

Tasks:
  run-pipeline     runs the PUSHED config of --tenant/--pipeline (or CONVERGENCE_TENANT, CONVERGENCE_PIPELINE, CONVERGENCE_CONFIG_VERSION), trigger remote; a remote start also sets CONVERGENCE_RUN_ID, CONVERGENCE_RUN_DATE (YYYY-MM-DD), CONVERGENCE_PARAMS (a JSON object of name → text) and CONVERGENCE_FULL_REFRESH (true|false)
  dispatch         runs the due schedules of tenant_scheduled_pipeline_runs of this task's shard (CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT); a schedule is claimed under a lease and advanced before it runs, so it never runs twice
  reset-quotas     the reset-daily-quotas job (every tenant, or --tenant)
  cleanup-orphans  the cleanup-orphaned-pipelines job
  sync-schedules   writes the schedules of --tenant's pushed pipelines (their \`schedule:\` key) to tenant_scheduled_pipeline_runs

SIGTERM or SIGINT stops a run at its next checkpoint, marks it CANCELLED and releases its lock; if that has not finished after 9 s the process exits 143 (Cloud Run kills it at 10 s). A second signal exits at once.

Exit codes: 0 ok, 2 usage, 3 the run failed or was cancelled, 4 data quality failed, 5 already running, 6 quota exceeded, 8 tenant or pushed pipeline not found. dispatch exits 0 when every claimed schedule was handled, even if some runs failed (each is logged as ERROR).`;
  static override examples = [
    '<%= config.bin %> job run-pipeline --tenant acme_corp --pipeline p_usage_daily',
    'CONVERGENCE_TENANT=acme_corp CONVERGENCE_PIPELINE=p_usage_daily <%= config.bin %> job run-pipeline --env prod',
    'CLOUD_RUN_TASK_INDEX=0 CLOUD_RUN_TASK_COUNT=3 <%= config.bin %> job dispatch',
    '<%= config.bin %> job reset-quotas --json',
    '<%= config.bin %> job sync-schedules --tenant acme_corp',
  ];
  static override args = {
    task: Args.string({ description: 'What to run', required: true, options: [...JOB_TASKS] }),
  };
  static override flags = {
    tenant: Flags.string({ description: 'Tenant (default: $CONVERGENCE_TENANT)' }),
    pipeline: Flags.string({ description: 'Pipeline for run-pipeline (default: $CONVERGENCE_PIPELINE)' }),
    'config-version': Flags.string({
      description: 'Pushed config version for run-pipeline (default: $CONVERGENCE_CONFIG_VERSION, then the active one)',
    }),
  };

  #log: JobLogger | undefined;

  /** Lines go to stdout, or to stderr under --json (stdout then carries only the envelope). */
  private get jobLog(): JobLogger {
    this.#log ??= new JobLogger({
      task: cloudRunTask(),
      write: this.jsonEnabled() ? (line) => process.stderr.write(line) : (line) => process.stdout.write(line),
      ...(process.env.GOOGLE_CLOUD_PROJECT ? { project: process.env.GOOGLE_CLOUD_PROJECT } : {}),
    });
    return this.#log;
  }

  public async run(): Promise<unknown> {
    const task = cloudRunTask();
    const log = this.jobLog;
    const interrupt = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      const code = signal === 'SIGINT' ? SIGNAL_EXIT.SIGINT : SIGNAL_EXIT.SIGTERM;
      if (interrupt.signal.aborted) {
        log.error(`${signal} again: exiting now`);
        process.exit(code);
      }
      log.warning(`${signal}: stopping at the next checkpoint`);
      interrupt.abort();
      const deadline = setTimeout(() => {
        log.error(`the graceful stop did not finish within ${HARD_DEADLINE_MS / 1000} s: exiting`);
        process.exit(code);
      }, HARD_DEADLINE_MS);
      deadline.unref();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    try {
      const ctx = await this.context();
      log.project = cloudEnv(ctx.env)?.settings.project ?? process.env.GOOGLE_CLOUD_PROJECT;
      log.info(`job ${this.args.task} started`, {
        env: ctx.env.name,
        taskCount: task.taskCount,
        taskAttempt: task.taskAttempt,
      });
      const tasks = await import('../job/tasks.ts');
      const input = tasks.resolveJobInput({
        ...(this.flags.tenant ? { tenant: this.flags.tenant } : {}),
        ...(this.flags.pipeline ? { pipeline: this.flags.pipeline } : {}),
        ...(this.flags['config-version'] ? { configVersion: this.flags['config-version'] } : {}),
      });
      const rt: JobRuntime = { ctx, log, task, signal: interrupt.signal };
      switch (this.args.task) {
        case 'run-pipeline':
          return await tasks.runPipelineTask(rt, input);
        case 'dispatch':
          return await tasks.dispatchTask(rt);
        case 'reset-quotas':
          return await tasks.resetQuotasTask(rt, input);
        case 'cleanup-orphans':
          return await tasks.cleanupOrphansTask(rt);
        default:
          return await tasks.syncSchedulesTask(rt, input);
      }
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
  }

  public override warn(input: string | Error): string | Error {
    const message = typeof input === 'string' ? input : input.message;
    this.jobLog.warning(message);
    // Under --json the envelope collects it too (and nothing else is printed).
    if (this.jsonEnabled()) super.warn(input);
    return input;
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    if (this.jsonEnabled() || err instanceof Errors.ExitError) {
      if (this.jsonEnabled() && !(err instanceof Errors.ExitError)) this.jobLog.error(err.message);
      return super.catch(err);
    }
    const oclifExit = (err as { oclif?: { exit?: number } }).oclif?.exit;
    const exitCode = isConvergenceError(err) ? err.exitCode : typeof oclifExit === 'number' ? ExitCode.usage : ExitCode.unexpected;
    process.exitCode = exitCode;
    this.jobLog.error(err.message.replace(/\s*\n\s*/g, ' ').trim(), {
      code: isConvergenceError(err) ? err.code : typeof oclifExit === 'number' ? 'USAGE' : 'UNEXPECTED',
      exitCode,
      ...(isConvergenceError(err) && err.suggestion ? { suggestion: err.suggestion } : {}),
    });
  }
}
