import type { ListrTask } from 'listr2';

export interface StageOptions {
  /** Silent when the command prints JSON: stdout carries only the envelope. */
  json: boolean;
}

/**
 * Runs staged work with listr2 on stderr: a live tree on a TTY, plain lines when not a TTY or in
 * CI, nothing with --json. listr2 is imported here, not at start-up.
 */
export async function runStages<Ctx extends object>(tasks: ListrTask<Ctx>[], ctx: Ctx, options: StageOptions): Promise<Ctx> {
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  const toStderr = () => new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const plain = !process.stderr.isTTY || Boolean(process.env.CI) || process.env.TERM === 'dumb';
  const list = new Listr<Ctx, 'default', 'simple'>(tasks, {
    ctx,
    concurrent: false,
    exitOnError: true,
    renderer: 'default',
    fallbackRenderer: 'simple',
    fallbackRendererCondition: plain,
    silentRendererCondition: options.json,
    rendererOptions: { logger: toStderr() },
    fallbackRendererOptions: { logger: toStderr() },
    registerSignalListeners: false,
  });
  return list.run();
}
