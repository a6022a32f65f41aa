import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../services/context.ts';
import { buildServer } from './app.ts';
import type { ServerOptions } from './types.ts';

export interface ListenOptions {
  host: string;
  port: number;
  /** How long running runs get to record their end on shutdown. */
  shutdownGraceMs: number;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  /** Stops accepting requests, lets in-flight ones finish, stops local runs (CANCELLED) and closes the backends. */
  close(reason?: string): Promise<{ runsStopped: number; runsUnfinished: number }>;
}

/** Builds the API and listens; `close` is the graceful shutdown SIGTERM triggers. */
export async function startServer(ctx: ServiceContext, options: ServerOptions, listen: ListenOptions): Promise<RunningServer> {
  const { app, parts } = await buildServer(ctx, options);
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  let closing: Promise<{ runsStopped: number; runsUnfinished: number }> | undefined;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    app,
    close(reason = 'shutdown') {
      closing ??= (async () => {
        app.log.info({ reason, runs_in_progress: parts.runs.inProgress }, 'shutting down: finishing in-flight requests');
        const [runs] = await Promise.all([parts.runs.shutdown(listen.shutdownGraceMs), app.close()]);
        app.log.info({ runs_stopped: runs.stopped, runs_unfinished: runs.unfinished }, 'stopped');
        await ctx.backends.close();
        return { runsStopped: runs.stopped, runsUnfinished: runs.unfinished };
      })();
      return closing;
    },
  };
}
