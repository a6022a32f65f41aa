import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { requestCancel, type CancelRequest } from '../../services/runs/store.ts';

export default class PipelineCancel extends BaseCommand<typeof PipelineCancel> {
  static override summary = 'Ask a pending or running pipeline run to stop.';
  static override description =
    'Sets cancel_requested on the run; the run stops at its next checkpoint (between steps and batches), leaves its destinations as they were and ends CANCELLED. Cancelling a run that already finished exits 2.';
  static override examples = [
    '<%= config.bin %> pipeline cancel 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b',
    '<%= config.bin %> pipeline cancel 3f2b9c1e-8d4a-4e2f-9b1a-2c3d4e5f6a7b --json',
  ];
  static override args = { run_id: Args.string({ description: 'Run id (pipeline_logging_id)', required: true }) };

  public async run(): Promise<CancelRequest> {
    const ctx = await this.context();
    const result = await requestCancel(ctx, this.args.run_id);
    this.log(
      result.changed
        ? `Cancel requested for run ${result.runId} (${result.tenantId}/${result.pipelineId}, ${result.status}).`
        : `A cancel was already requested for run ${result.runId}.`,
    );
    this.log(`It stops at its next checkpoint; follow it with \`convergence pipeline status ${result.runId}\`.`);
    return result;
  }
}
