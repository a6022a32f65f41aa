import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { parseDuration } from '../../lib/duration.ts';
import { formatTable } from '../../cli/render.ts';
import { cleanupOrphans, type CleanupResult } from '../../services/maintenance.ts';

export default class MaintenanceCleanupOrphans extends BaseCommand<typeof MaintenanceCleanupOrphans> {
  static override summary = 'End runs left PENDING or RUNNING past their timeout, free their locks and remove stale staging folders.';
  static override description =
    'The cleanup-orphaned-pipelines job of the scheduler (every 30 minutes). Orphaned runs and their running steps become TIMEOUT, their pipeline lock is released if they still hold it, the in-flight quota counter is recounted, and staging folders of ended runs are removed. Running it again changes nothing.';
  static override examples = [
    '<%= config.bin %> maintenance cleanup-orphans',
    '<%= config.bin %> maintenance cleanup-orphans --older-than 2h --dry-run',
    '<%= config.bin %> maintenance cleanup-orphans --json',
  ];
  static override flags = {
    'older-than': Flags.string({ description: 'Also end live runs that started longer ago than this, e.g. 2h' }),
    'dry-run': Flags.boolean({ description: 'Report what would be done and change nothing' }),
  };

  public async run(): Promise<CleanupResult> {
    const olderThan = this.flags['older-than'];
    const olderThanMs = olderThan ? parseDuration(olderThan, '--older-than') : undefined;
    const ctx = await this.context();
    const result = await cleanupOrphans(ctx, { dryRun: this.flags['dry-run'], ...(olderThanMs !== undefined ? { olderThanMs } : {}) });
    const verb = result.dryRun ? 'Would end' : 'Ended';
    if (result.timedOut.length === 0) this.log('No orphaned runs.');
    else {
      this.log(`${verb} ${result.timedOut.length} orphaned run(s) as TIMEOUT:`);
      this.log(
        formatTable(result.timedOut, [
          { header: 'run id', get: (o) => o.runId },
          { header: 'tenant', get: (o) => o.tenantId },
          { header: 'pipeline', get: (o) => o.pipelineId },
          { header: 'was', get: (o) => o.status },
          { header: 'started', get: (o) => o.startTime },
          { header: 'timeout at', get: (o) => o.timeoutAt },
          { header: 'lock', get: (o) => (result.locksReleased.includes(o.runId) ? 'released' : null) },
        ]),
      );
    }
    for (const c of result.countersCorrected) this.log(`Corrected the runs in flight of ${c.tenantId}: ${c.from} -> ${c.to}.`);
    if (result.stagingRemoved.length) {
      this.log(`${result.dryRun ? 'Would remove' : 'Removed'} ${result.stagingRemoved.length} staging folder(s) of ended runs.`);
    }
    return result;
  }
}
