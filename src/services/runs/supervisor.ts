import type { ServiceContext } from '../context.ts';
import type { Admission } from './admission.ts';
import { isCancelRequested } from './store.ts';

/** How often the run row is read for a cancel request, and the lock checked. */
/**
 * How often the run looks for a `pipeline cancel`: every second at first (short runs, and a cancel
 * soon after a start, answer at once), then every 5 s. Each look reads the run row, which on the
 * embedded warehouse opens its file: once a second that took a few seconds off a 20-second
 * ingest sharing the machine's cores.
 */
const CANCEL_POLL_MS = 1_000;
const CANCEL_POLL_LATER_MS = 5_000;
const CANCEL_POLL_LATER_AFTER_MS = 10_000;

/** Why a run stopped early, carried as the abort reason of its signal. */
export interface StopReason {
  status: 'CANCELLED' | 'TIMEOUT' | 'FAILED';
  message: string;
}

export interface SuperviseInput {
  runId: string;
  timeoutMs: number;
  /** The timeout as the pipeline wrote it, for the message. */
  timeoutText: string;
  /** Its checkpoint throws once the run lock is lost. */
  admission: Pick<Admission, 'checkpoint'>;
  /** The caller's own stop (Ctrl-C, SIGTERM, server shutdown). */
  signal?: AbortSignal;
}

/**
 * Every reason a run stops early, feeding one AbortSignal the steps check at their checkpoints:
 * the caller's signal, the run's timeout, a `pipeline cancel` recorded on the run row, and the
 * run lock lost. The first reason wins; later ones change nothing.
 */
export class RunSupervisor {
  readonly #stop = new AbortController();
  readonly #timeout: NodeJS.Timeout;
  #pollTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #callerSignal: AbortSignal | undefined;
  readonly #onCallerAbort = () => this.#abort({ status: 'CANCELLED', message: 'the run was interrupted' });

  constructor(ctx: ServiceContext, input: SuperviseInput) {
    this.#callerSignal = input.signal;
    if (input.signal?.aborted) this.#onCallerAbort();
    input.signal?.addEventListener('abort', this.#onCallerAbort, { once: true });
    this.#timeout = setTimeout(
      () => this.#abort({ status: 'TIMEOUT', message: `the run exceeded its timeout of ${input.timeoutText}` }),
      input.timeoutMs,
    );
    // The timers must not keep a finished CLI process alive.
    this.#timeout.unref();
    this.#schedulePoll(ctx, input, Date.now());
  }

  #schedulePoll(ctx: ServiceContext, input: SuperviseInput, startedAt: number): void {
    const delay = Date.now() - startedAt < CANCEL_POLL_LATER_AFTER_MS ? CANCEL_POLL_MS : CANCEL_POLL_LATER_MS;
    this.#pollTimer = setTimeout(() => {
      void this.#poll(ctx, input).finally(() => {
        if (!this.#closed) this.#schedulePoll(ctx, input, startedAt);
      });
    }, delay);
    this.#pollTimer.unref();
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Why the run was stopped, once it was (a method: it changes while the run goes on). */
  stopReason(): StopReason | undefined {
    return this.#stop.signal.aborted ? (this.#stop.signal.reason as StopReason) : undefined;
  }

  /** Ends the supervision when the run is over. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#timeout);
    this.#callerSignal?.removeEventListener('abort', this.#onCallerAbort);
  }

  async #poll(ctx: ServiceContext, input: SuperviseInput): Promise<void> {
    try {
      if (await isCancelRequested(ctx, input.runId))
        this.#abort({ status: 'CANCELLED', message: 'the run was cancelled (pipeline cancel)' });
      await input.admission.checkpoint();
    } catch (err) {
      this.#abort({ status: 'FAILED', message: `the run lost its lock: ${(err as Error).message}` });
    }
  }

  #abort(reason: StopReason): void {
    if (!this.#stop.signal.aborted) this.#stop.abort(reason);
  }
}
