// A promise rejection nobody awaited (a client library's background work, a close() after the
// command failed) must not end the CLI with Node's stack trace and exit 1. The base command
// registers a hook under this symbol that reports it like any command error; before a command
// is loaded, the message alone is printed.
const HOOK = Symbol.for('convergence.strayRejection');

export function reportStrayRejections() {
  process.on('unhandledRejection', (reason) => {
    const hook = globalThis[HOOK];
    if (typeof hook === 'function') {
      hook(reason);
      return;
    }
    process.stderr.write(`Error: ${reason instanceof Error ? reason.message : String(reason)}\n`);
    if (process.env.DEBUG && reason instanceof Error && reason.stack) process.stderr.write(`${reason.stack}\n`);
    process.exitCode = 1;
  });
}
