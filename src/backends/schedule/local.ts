import { usageError } from '../../lib/errors.ts';
import type { JobSpec, Schedule, ScheduledJob } from './port.ts';

/** Runs the work of a job in process; keyed by full job name. */
export type LocalRunner = () => Promise<unknown>;

/**
 * The local environment has no scheduler daemon: there are no stored jobs, setup only prints the
 * plan, and `run` does a job's work now, in this process.
 */
export class LocalSchedule implements Schedule {
  readonly kind = 'local' as const;
  readonly parent: string;
  readonly #runners: ReadonlyMap<string, LocalRunner>;
  #lastResult: unknown;

  constructor(options: { envName: string; runners: ReadonlyMap<string, LocalRunner> }) {
    this.parent = options.envName;
    this.#runners = options.runners;
  }

  /** What the last run() returned, for the caller to report. */
  get lastResult(): unknown {
    return this.#lastResult;
  }

  async get(): Promise<ScheduledJob | undefined> {
    return undefined;
  }

  async list(): Promise<ScheduledJob[]> {
    return [];
  }

  async create(spec: JobSpec): Promise<ScheduledJob> {
    throw this.#noScheduler(`create ${spec.name}`);
  }

  async update(spec: JobSpec): Promise<ScheduledJob> {
    throw this.#noScheduler(`update ${spec.name}`);
  }

  async delete(name: string): Promise<void> {
    throw this.#noScheduler(`delete ${name}`);
  }

  async run(name: string): Promise<undefined> {
    const runner = this.#runners.get(name);
    if (!runner) {
      throw usageError(`${name} cannot run in process on the local environment`, {
        suggestion: `run it in its Cloud Run job: convergence scheduler run <job> --env <cloud env>`,
      });
    }
    this.#lastResult = await runner();
    return undefined;
  }

  async close(): Promise<void> {}

  #noScheduler(action: string) {
    return usageError(`the local environment "${this.parent}" has no Cloud Scheduler: cannot ${action}`, {
      suggestion: 'pass --env <cloud environment>; on local, `scheduler setup` and `scheduler list` print the plan',
    });
  }
}
