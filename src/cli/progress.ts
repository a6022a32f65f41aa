import type { ListrTask } from 'listr2';
import type { StageOutcome, StageReporter } from '../lib/stages.ts';

export interface StageOptions {
  /** Silent when the command prints JSON: stdout carries only the envelope. */
  json: boolean;
}

/** A listr2 list on stderr: a live tree on a TTY, plain lines when not a TTY or in CI, nothing with --json. */
async function stageList<Ctx extends object>(tasks: ListrTask<Ctx>[], ctx: Ctx, options: StageOptions & { exitOnError: boolean }) {
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  const toStderr = () => new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const plain = !process.stderr.isTTY || Boolean(process.env.CI) || process.env.TERM === 'dumb';
  return new Listr<Ctx, 'default', 'simple'>(tasks, {
    ctx,
    concurrent: false,
    exitOnError: options.exitOnError,
    renderer: 'default',
    fallbackRenderer: 'simple',
    fallbackRendererCondition: plain,
    silentRendererCondition: options.json,
    rendererOptions: { logger: toStderr(), collapseErrors: false },
    fallbackRendererOptions: { logger: toStderr() },
    registerSignalListeners: false,
  });
}

/** Runs staged work with listr2 (imported here, not at start-up); the first failure stops it. */
export async function runStages<Ctx extends object>(tasks: ListrTask<Ctx>[], ctx: Ctx, options: StageOptions): Promise<Ctx> {
  return (await stageList(tasks, ctx, { ...options, exitOnError: true })).run();
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}
const deferred = <T>(): Deferred<T> => {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};

/**
 * Shows work that drives itself (a pipeline run decides when each step starts and ends) as a
 * listr2 stage list: each stage waits for the work's events. Stages never reached are shown
 * skipped. The work's result or error is returned unchanged.
 */
export async function followStages<R>(titles: string[], options: StageOptions, work: (stages: StageReporter) => Promise<R>): Promise<R> {
  const started = titles.map(() => deferred<void>());
  const finished = titles.map(() => deferred<StageOutcome>());
  const listeners = titles.map(() => [] as Array<(text: string) => void>);
  const reporter: StageReporter = {
    start: (i) => started[i]?.resolve(),
    update: (i, text) => listeners[i]?.forEach((l) => l(text)),
    finish: (i, outcome) => {
      started[i]?.resolve();
      finished[i]?.resolve(outcome);
    },
  };
  const tasks: ListrTask<object>[] = titles.map((title, i) => ({
    title,
    task: async (_ctx, task) => {
      listeners[i]!.push((text) => {
        task.output = text;
      });
      await started[i]!.promise;
      const outcome = await finished[i]!.promise;
      if (outcome.title) task.title = outcome.title;
      if (outcome.status === 'skipped') task.skip(outcome.message ?? 'skipped');
      if (outcome.status === 'failed') throw new Error(outcome.message ?? 'failed');
    },
  }));
  const list = await stageList(tasks, {}, { ...options, exitOnError: false });
  const shown = list.run().catch(() => undefined);
  try {
    return await work(reporter);
  } finally {
    titles.forEach((_, i) => reporter.finish(i, { status: 'skipped', message: 'not run' }));
    await shown;
  }
}
