import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { credentialsError } from '../backends/gcp/errors.ts';
import { ConvergenceError, ExitCode, isConvergenceError } from '../lib/errors.ts';
import type { ServiceContext } from '../services/context.ts';
import type { OpenedContext } from '../services/open-context.ts';

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** The JSON envelope: stdout carries exactly this object under --json. */
export interface Envelope<R> {
  status: number;
  result?: R;
  error?: { name: string; code: string; message: string; exitCode: number; suggestion?: string; data?: unknown };
  warnings: string[];
}

/**
 * Base of every command. Commands stay thin: parse flags, call one service, render. This class
 * owns the cross-cutting contract — the --json envelope, mapping errors to DESIGN exit codes with
 * a cause and a suggestion, collected warnings, --env resolution and the lazily built context.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = {
    env: Flags.string({
      description: 'Environment from convergence.yaml (default: $CONVERGENCE_ENV, then default_env, then local)',
      helpGroup: 'GLOBAL',
    }),
    project: Flags.string({
      description: "Google Cloud project for a cloud environment (default: the environment's project, then $GOOGLE_CLOUD_PROJECT)",
      helpGroup: 'GLOBAL',
    }),
  };

  protected flags!: CommandFlags<T>;
  protected args!: CommandArgs<T>;
  private readonly collectedWarnings: string[] = [];
  private contextPromise: Promise<OpenedContext> | undefined;
  /** Set once the command's result or error is out; a stray rejection after that adds nothing to stdout. */
  private reported = false;

  public override async init(): Promise<void> {
    (globalThis as Record<symbol, unknown>)[STRAY_REJECTION_HOOK] = (reason: unknown) => this.onStrayRejection(reason);
    await super.init();
    const ctor = this.ctor as typeof BaseCommand;
    const { args, flags } = await this.parse({
      flags: ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: ctor.enableJsonFlag,
      args: ctor.args,
      strict: ctor.strict,
    });
    this.flags = flags as CommandFlags<T>;
    this.args = args as CommandArgs<T>;
  }

  /** Workspace, environment and adapters; loaded on first use so `init` needs none of them. */
  protected context(): Promise<ServiceContext> {
    this.contextPromise ??= (async () => {
      const { openContext } = await import('../services/open-context.ts');
      return openContext(process.cwd(), { env: this.flags.env, project: this.flags.project, warn: (message) => this.warn(message) });
    })();
    return this.contextPromise;
  }

  public override warn(input: string | Error): string | Error {
    const message = typeof input === 'string' ? input : input.message;
    this.collectedWarnings.push(message);
    if (!this.jsonEnabled()) process.stderr.write(`Warning: ${message}\n`);
    return input;
  }

  protected override toSuccessJson(result: unknown): Envelope<unknown> {
    return { status: ExitCode.ok, result, warnings: this.collectedWarnings };
  }

  protected override toErrorJson(err: unknown): Envelope<never> {
    const e = describeError(err);
    return { status: e.exitCode, error: e, warnings: this.collectedWarnings };
  }

  protected override logJson(json: unknown): void {
    this.reported = true;
    process.stdout.write(`${JSON.stringify(json, jsonReplacer, 2)}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    if (err instanceof Errors.ExitError) throw err;
    if (this.reported) return;
    this.reported = true;
    const e = describeError(err);
    process.exitCode = e.exitCode;
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(err));
      return;
    }
    process.stderr.write(`Error: ${e.message}\n`);
    if (e.suggestion) process.stderr.write(`Try: ${e.suggestion}\n`);
    if (e.exitCode === ExitCode.unexpected && process.env.DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
  }

  /**
   * A rejection no one awaited (bin/stray-rejections.js hands it here): while the command runs it
   * becomes the command's error, reported once and the process ends with its exit code; after the
   * command reported, only a worse exit code is kept, so stdout still holds one envelope.
   */
  private onStrayRejection(reason: unknown): void {
    const err = asCommandError(reason);
    if (!this.reported) {
      void this.catch(err).finally(() => process.exit());
      return;
    }
    const e = describeError(err);
    if (!process.exitCode) {
      process.exitCode = e.exitCode;
      process.stderr.write(`Error: ${e.message}\n`);
      if (e.suggestion) process.stderr.write(`Try: ${e.suggestion}\n`);
    }
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    this.reported ||= err === undefined && this.jsonEnabled() === false;
    if (this.contextPromise) {
      const ctx = await this.contextPromise.catch(() => undefined);
      await ctx?.close();
    }
    await super.finally(err);
  }
}

/** How bin/stray-rejections.js finds the running command. */
const STRAY_REJECTION_HOOK = Symbol.for('convergence.strayRejection');

/** A stray rejection as the error the command reports: Google credential problems get their fix. */
function asCommandError(reason: unknown): Error {
  const credentials = credentialsError(reason, { what: 'Google Cloud APIs' });
  if (credentials) return credentials;
  return reason instanceof Error ? reason : new Error(String(reason));
}

function describeError(err: unknown): NonNullable<Envelope<never>['error']> {
  if (isConvergenceError(err)) {
    return {
      name: err.name,
      code: err.code,
      message: err.message,
      exitCode: err.exitCode,
      ...(err.suggestion ? { suggestion: err.suggestion } : {}),
      ...(err.data ? { data: err.data } : {}),
    };
  }
  const oclifExit = (err as { oclif?: { exit?: number } } | undefined)?.oclif?.exit;
  if (typeof oclifExit === 'number' && err instanceof Error) {
    // Parse errors from oclif (unknown flag, missing argument): usage.
    const code = oclifExit === 0 ? ExitCode.ok : ExitCode.usage;
    return {
      name: err.name,
      code: 'USAGE',
      message: oclifMessage(err.message),
      exitCode: code,
      suggestion: 'see --help for usage and examples',
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    name: err instanceof Error ? err.name : 'Error',
    code: 'UNEXPECTED',
    message,
    exitCode: ExitCode.unexpected,
    suggestion: 'this is a bug or an environment problem; rerun with DEBUG=* for details',
  };
}

/**
 * oclif parse errors span lines ("The following error occurred:\n  Missing required flag name\n
 * See more help with --help"); keep what names the problem, on one line.
 */
function oclifMessage(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim().replace(/\s{2,}/g, ' '))
    .filter((l) => l && !/^See more help with /.test(l) && !/^The following errors? occurred:$/.test(l));
  return lines.reduce((out, line) => (out ? `${out}${out.endsWith(':') ? ' ' : '; '}${line}` : line), '') || message;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof ConvergenceError) return { code: value.code, message: value.message };
  return value;
}
