import { clearInterval, setInterval } from 'node:timers';
import type { Lease, Lock, LockHolder } from '../../backends/lock/port.ts';
import type { Row } from '../../backends/warehouse/port.ts';
import { assertName, assertTenantId } from '../../domain/ids.ts';
import { ConvergenceError, ExitCode, isConvergenceError, lockHeldError, validationError } from '../../lib/errors.ts';
import { envFlag, type ServiceContext } from '../context.ts';
import { holderIdentity, holderIsDeadHere } from '../leases.ts';
import { assertRunSlot, readQuota, reserveRun, settleRun } from '../quotas.ts';
import { requireTenant } from '../tenants.ts';
import { assertRunId, finishRun } from './store.ts';

/**
 * Admission of a run: the tenant may run pipelines, no other run of the same pipeline holds its
 * lock, and the tenant's quota has a slot. The admitted run keeps its lock alive on a timer and
 * gives lock and slot back on release.
 */
export interface AdmitRunInput {
  tenantId: string;
  pipelineId: string;
  runId: string;
  /** The run's own timeout: the lock stops being renewed after it, so a hung run cannot block forever. */
  timeoutMs: number;
  /** Lease length of the run lock (default 60 s); renewed every third of it. */
  lockTtlMs?: number;
  /** The tenant's profile when the caller has just read it: the tenant is then not read again. */
  profile?: Row;
}

type ReleaseOutcome = 'succeeded' | 'failed';

export interface Admission {
  readonly key: string;
  /** The current lease (replaced on every renewal). */
  readonly lease: Lease;
  /** Throws LOCK_LOST (exit 5) when the lock expired or another run took it over. */
  checkpoint(): Promise<void>;
  /** Gives the quota slot and the lock back; never throws (problems become warnings). */
  release(outcome: ReleaseOutcome): Promise<void>;
}

const RUN_LOCK_TTL_MS = 60_000;
export const runLockKey = (tenantId: string, pipelineId: string) => `run/${tenantId}/${pipelineId}`;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function admitRun(ctx: ServiceContext, input: AdmitRunInput): Promise<Admission> {
  const tenantId = assertTenantId(input.tenantId);
  const pipelineId = assertName('pipeline id', input.pipelineId);
  const runId = assertRunId(input.runId);
  const ttlMs = input.lockTtlMs ?? RUN_LOCK_TTL_MS;
  if (!Number.isFinite(input.timeoutMs) || input.timeoutMs <= 0)
    throw validationError(`run timeout must be positive, got ${input.timeoutMs}`);
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw validationError(`lock ttl must be positive, got ${ttlMs}`);

  assertRunnableTenant(tenantId, input.profile ?? (await requireTenant(ctx, tenantId)));
  const lock = await ctx.backends.lock();
  const key = runLockKey(tenantId, pipelineId);
  const lease = await takeRunLock(ctx, lock, key, { tenantId, pipelineId, runId, ttlMs });
  try {
    await reserveRun(ctx, tenantId, runId);
  } catch (err) {
    await lock.release(lease).catch((releaseErr: unknown) => ctx.warn(`could not release ${key}: ${message(releaseErr)}`));
    throw err;
  }
  return new RunAdmission(ctx, lock, lease, { tenantId, runId, ttlMs, deadline: Date.now() + input.timeoutMs });
}

/**
 * The answer the container's admission would give, read without taking anything: the tenant is
 * not suspended (exit 7, TENANT_SUSPENDED), no live lease holds the run lock of the pipeline
 * (exit 5, LOCK_HELD), and today's quota has a run and a concurrency slot left (exit 6,
 * QUOTA_EXCEEDED). The container still admits the run for real (it takes the lock and the quota
 * slot); this check only lets the caller learn at once what would otherwise surface as a failed
 * execution. A start racing another one that has not yet reached its admission passes here, and
 * its container is then refused with exit 5.
 */
export async function checkRemoteAdmission(
  ctx: ServiceContext,
  tenantId: string,
  pipelineId: string,
  /** The tenant's profile when the caller has just read it. */
  profile?: Row,
): Promise<void> {
  assertRunnableTenant(tenantId, profile ?? (await requireTenant(ctx, tenantId)));

  // The Lock port reads a lease without taking it. Acquiring and releasing instead would raise the
  // key's fencing token, and a container acquiring in that instant would be refused.
  const key = runLockKey(tenantId, pipelineId);
  const holder = await (await ctx.backends.lock()).inspect(key);
  if (holder) throw runLockHeldError(ctx, key, { tenantId, pipelineId }, holder);

  // The tenant was found above: its quota is read without looking it up again.
  assertRunSlot(ctx, tenantId, await readQuota(ctx, tenantId));
}

/** Refuses (exit 7, TENANT_SUSPENDED) a profile whose pipelines may not run. */
function assertRunnableTenant(tenantId: string, profile: Row): void {
  if (profile.status === 'SUSPENDED') {
    const reason = profile.status_reason ? ` (${String(profile.status_reason)})` : '';
    throw new ConvergenceError('TENANT_SUSPENDED', ExitCode.auth, `tenant "${tenantId}" is suspended${reason}; its pipelines cannot run`, {
      suggestion: `resume it with \`convergence tenant resume ${tenantId}\``,
    });
  }
}

interface LockRequest {
  tenantId: string;
  pipelineId: string;
  runId: string;
  ttlMs: number;
}

async function takeRunLock(ctx: ServiceContext, lock: Lock, key: string, req: LockRequest): Promise<Lease> {
  const options = { ...holderIdentity(ctx, { run_id: req.runId }), ttlMs: req.ttlMs };
  let taken = await lock.acquire(key, options);
  if (!taken.acquired && holderIsDeadHere(ctx, taken.holder)) {
    const dead = taken.holder;
    // Release exactly that lease: if a racer already took over, its lease stays untouched.
    await lock.release({ ...dead, key });
    await failDeadRun(ctx, req, dead);
    taken = await lock.acquire(key, options);
  }
  if (!taken.acquired) throw runLockHeldError(ctx, key, req, taken.holder);
  return taken.lease;
}

async function failDeadRun(ctx: ServiceContext, req: LockRequest, dead: LockHolder): Promise<void> {
  const deadRunId = dead.info?.run_id;
  // A retry reusing the run id continues that record rather than failing it.
  if (!deadRunId || deadRunId === req.runId) return;
  try {
    const ended = await finishRun(ctx, deadRunId, {
      status: 'FAILED',
      exitCode: ExitCode.unexpected,
      errorMessage: `process ${dead.info?.pid} died`,
    });
    if (ended) await settleRun(ctx, req.tenantId, 'failed');
    ctx.warn(`took over the lock of run ${deadRunId}: its process ${dead.info?.pid} is no longer running`);
  } catch (err) {
    ctx.warn(`could not mark the dead run ${deadRunId} as failed: ${message(err)}`);
  }
}

/** Exit 5 (LOCK_HELD) naming the run that holds a pipeline's run lock and how to follow or stop it. */
function runLockHeldError(ctx: ServiceContext, key: string, req: { tenantId: string; pipelineId: string }, holder: LockHolder) {
  const holderRunId = holder.info?.run_id ?? null;
  const where = holder.info?.pid ? ` (pid ${holder.info.pid} on ${holder.info.host ?? 'unknown host'})` : '';
  const env = envFlag(ctx.env.name);
  return lockHeldError(
    `pipeline ${req.pipelineId} of tenant "${req.tenantId}" is already running: ${holderRunId ? `run ${holderRunId}` : holder.owner}${where} holds its lock until ${holder.expiresAt.toISOString()}`,
    {
      suggestion: holderRunId
        ? `follow it with \`convergence pipeline status ${holderRunId}${env}\`, or stop it with \`convergence pipeline cancel ${holderRunId}${env}\``
        : 'retry when it has finished',
      data: { key, holderRunId, holder: holder.owner, expiresAt: holder.expiresAt.toISOString() },
    },
  );
}

interface AdmissionSettings {
  tenantId: string;
  runId: string;
  ttlMs: number;
  /** Date.now() after which the lock is no longer renewed. */
  deadline: number;
}

class RunAdmission implements Admission {
  readonly key: string;
  readonly #ctx: ServiceContext;
  readonly #lock: Lock;
  readonly #settings: AdmissionSettings;
  #lease: Lease;
  #lost: ConvergenceError | undefined;
  #released = false;
  #confirmedAt = Date.now();
  #renewing: Promise<void> = Promise.resolve();
  #warnedTransient = false;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(ctx: ServiceContext, lock: Lock, lease: Lease, settings: AdmissionSettings) {
    this.#ctx = ctx;
    this.#lock = lock;
    this.#lease = lease;
    this.#settings = settings;
    this.key = lease.key;
    this.#timer = setInterval(() => void this.#renew(), Math.max(1, Math.floor(settings.ttlMs / 3)));
    // The timer must not keep a finished CLI process alive.
    this.#timer.unref();
  }

  get lease(): Lease {
    return this.#lease;
  }

  async checkpoint(): Promise<void> {
    if (!this.#lost && Date.now() - this.#confirmedAt >= this.#settings.ttlMs / 3) await this.#renew();
    if (this.#lost) throw this.#lost;
  }

  async release(outcome: ReleaseOutcome): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    await this.#renewing;
    const { tenantId, runId } = this.#settings;
    // The slot goes back before the lock, so the next run of this pipeline finds it free.
    try {
      await settleRun(this.#ctx, tenantId, outcome);
    } catch (err) {
      this.#ctx.warn(`run ${runId}: could not update the quota of tenant "${tenantId}": ${message(err)}`);
    }
    try {
      if (!(await this.#lock.release(this.#lease))) {
        this.#ctx.warn(`run ${runId}: its lock ${this.key} had already expired or been taken over; left it to its current holder`);
      }
    } catch (err) {
      this.#ctx.warn(`run ${runId}: could not release its lock ${this.key}: ${message(err)}`);
    }
  }

  /** One renewal at a time, whether from the timer or a checkpoint. */
  #renew(): Promise<void> {
    this.#renewing = this.#renewing.then(() => this.#renewOnce()).catch(() => undefined);
    return this.#renewing;
  }

  async #renewOnce(): Promise<void> {
    if (this.#lost || this.#released) return;
    const now = Date.now();
    if (now >= this.#settings.deadline) {
      if (now >= this.#lease.expiresAt.getTime()) this.#markLost('it outlived its timeout and the lease expired');
      return;
    }
    try {
      this.#lease = await this.#lock.renew(this.#lease, this.#settings.ttlMs);
      this.#confirmedAt = Date.now();
    } catch (err) {
      if ((isConvergenceError(err) && err.code === 'LOCK_LOST') || Date.now() >= this.#lease.expiresAt.getTime()) {
        this.#markLost(message(err));
      } else if (!this.#warnedTransient) {
        // A busy lock store is retried on the next tick; the lease is still ours until it expires.
        this.#warnedTransient = true;
        this.#ctx.warn(`run ${this.#settings.runId}: renewing its lock failed, will retry: ${message(err)}`);
      }
    }
  }

  #markLost(why: string): void {
    clearInterval(this.#timer);
    this.#lost = new ConvergenceError(
      'LOCK_LOST',
      ExitCode.alreadyRunning,
      `run ${this.#settings.runId} lost its lock ${this.key}: ${why}`,
      {
        suggestion: 'another process may be running this pipeline now; check `convergence pipeline runs`',
        data: { key: this.key, runId: this.#settings.runId },
      },
    );
  }
}
