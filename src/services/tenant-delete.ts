import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertTenantId } from '../domain/ids.ts';
import { TERMINAL_RUN_STATES } from '../domain/states.ts';
import { ExitCode, lockHeldError, notFoundError } from '../lib/errors.ts';
import type { ServiceContext } from './context.ts';
import { holderIsDeadHere, withLease } from './leases.ts';
import { releaseRunLock } from './maintenance.ts';
import { METADATA_DATASET, T } from './metadata/tables.ts';
import { runLockKey } from './runs/admission.ts';
import { closeOpenSteps, findLiveRuns, findRuns, finishRun, requestCancel, type RunRecord } from './runs/store.ts';
import { requireTenant } from './tenants.ts';

export interface DeleteTenantOptions {
  /** Cancel the tenant's runs in progress first instead of refusing. */
  force?: boolean;
  /** How long cancelled runs get to stop at their next checkpoint before they are ended here. */
  cancelWaitMs?: number;
}

export interface DeleteTenantResult {
  tenantId: string;
  keysRevoked: number;
  datasetDropped: boolean;
  configDirKept: string;
  /** Runs in progress that --force cancelled. */
  runsCancelled: string[];
}

/**
 * Deletes a tenant but keeps the audit trail: the profile stays (status DELETED), keys are revoked,
 * the subscription is cancelled, the tenant dataset is dropped. Metadata changes commit first in
 * one transaction; rerunning on a DELETED tenant finishes a drop that failed half way.
 *
 * A run in progress would go on writing into a dataset being dropped, so deletion is refused while
 * one exists (exit 5 naming it); `force` cancels such runs first.
 */
export async function deleteTenant(ctx: ServiceContext, tenantId: string, options: DeleteTenantOptions = {}): Promise<DeleteTenantResult> {
  assertTenantId(tenantId);
  return withLease(ctx, `tenant/${tenantId}`, { waitMs: 10_000, what: `tenant "${tenantId}"` }, async () => {
    const live = await findLiveRuns(ctx, { tenantId });
    if (live.length > 0 && !options.force) throw runsInProgressError(tenantId, live);
    const runsCancelled = live.length > 0 ? await cancelRuns(ctx, live, options.cancelWaitMs ?? 30_000) : [];
    return { ...(await deleteTenantRecords(ctx, tenantId)), runsCancelled };
  });
}

function runsInProgressError(tenantId: string, live: RunRecord[]) {
  const first = live[0]!;
  const names = live.map((r) => `${r.runId} (${r.pipelineId}, ${r.status})`).join(', ');
  return lockHeldError(`tenant "${tenantId}" has ${live.length === 1 ? 'a run' : `${live.length} runs`} in progress: ${names}`, {
    suggestion: `wait for it, cancel it with \`convergence pipeline cancel ${first.runId}\`, or delete with --force to cancel ${live.length === 1 ? 'it' : 'them'} first`,
    data: { runIds: live.map((r) => r.runId) },
  });
}

/**
 * Asks each run to stop at its next checkpoint and waits for the ones a live process is running; a
 * run nobody runs (its process is gone, or it never started) or that does not stop in time is
 * ended CANCELLED here and its lock freed.
 */
async function cancelRuns(ctx: ServiceContext, live: RunRecord[], waitMs: number): Promise<string[]> {
  for (const run of live) await requestCancel(ctx, run.runId).catch(() => undefined);
  const ids = live.map((r) => r.runId);
  const deadline = Date.now() + waitMs;
  let running = await heldByLiveProcess(ctx, live);
  while (running.length > 0 && Date.now() < deadline) {
    await sleep(Math.min(250, Math.max(0, deadline - Date.now())));
    running = (
      await findRuns(
        ctx,
        running.map((r) => r.runId),
      )
    ).filter((r) => !TERMINAL_RUN_STATES.has(r.status));
  }
  const left = (await findRuns(ctx, ids)).filter((r) => !TERMINAL_RUN_STATES.has(r.status));
  for (const run of left) {
    const ended = await finishRun(ctx, run.runId, {
      status: 'CANCELLED',
      exitCode: ExitCode.pipelineFailed,
      errorMessage: 'cancelled: its tenant was deleted',
    });
    if (ended) await closeOpenSteps(ctx, run.runId, 'CANCELLED', 'cancelled: its tenant was deleted');
    await releaseRunLock(ctx, run);
  }
  return ids;
}

/** The runs whose pipeline lock that very run holds, through a process not known to be dead. */
async function heldByLiveProcess(ctx: ServiceContext, runs: RunRecord[]): Promise<RunRecord[]> {
  const lock = await ctx.backends.lock();
  const held: RunRecord[] = [];
  for (const run of runs) {
    const holder = await lock.inspect(runLockKey(run.tenantId, run.pipelineId));
    if (holder?.info?.run_id === run.runId && !holderIsDeadHere(ctx, holder)) held.push(run);
  }
  return held;
}

async function deleteTenantRecords(ctx: ServiceContext, tenantId: string): Promise<Omit<DeleteTenantResult, 'runsCancelled'>> {
  const profile = await requireTenant(ctx, tenantId, { allowDeleted: true });
  const warehouse = await ctx.backends.warehouse();
  let keysRevoked = 0;
  if (profile.status !== 'DELETED') {
    const now = ctx.now();
    keysRevoked = await warehouse.count(METADATA_DATASET, T.apiKeys, { tenant_id: tenantId, status: 'ACTIVE' });
    await warehouse.atomic([
      {
        kind: 'update',
        dataset: METADATA_DATASET,
        table: T.apiKeys,
        set: { status: 'REVOKED', revoked_at: now, revoked_reason: 'tenant deleted', updated_at: now },
        where: { tenant_id: tenantId, status: 'ACTIVE' },
      },
      {
        kind: 'update',
        dataset: METADATA_DATASET,
        table: T.subscriptions,
        set: { status: 'CANCELLED', ends_at: now, updated_at: now },
        where: { tenant_id: tenantId, status: 'ACTIVE' },
      },
      {
        kind: 'update',
        dataset: METADATA_DATASET,
        table: T.credentials,
        set: { status: 'DELETED', updated_at: now },
        where: { tenant_id: tenantId, status: 'ACTIVE' },
      },
      {
        kind: 'update',
        dataset: METADATA_DATASET,
        table: T.schedules,
        set: { is_active: false, updated_at: now },
        where: { tenant_id: tenantId },
      },
      {
        kind: 'update',
        dataset: METADATA_DATASET,
        table: T.profiles,
        set: { status: 'DELETED', deleted_at: now, status_reason: `deleted by ${ctx.actor}`, updated_at: now },
        where: { tenant_id: tenantId },
      },
    ]);
  } else if (!(await warehouse.datasetExists(tenantId))) {
    throw notFoundError(`tenant "${tenantId}" is already deleted`, { suggestion: 'nothing left to do' });
  }
  const datasetDropped = await warehouse.datasetExists(tenantId);
  if (datasetDropped) await warehouse.dropDataset(tenantId);
  return { tenantId, keysRevoked, datasetDropped, configDirKept: path.join('configs', tenantId) };
}
