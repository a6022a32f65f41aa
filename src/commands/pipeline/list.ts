import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.ts';
import { formatTable } from '../../cli/render.ts';
import { listPipelines, type PipelineEntry } from '../../services/pipelines/catalog.ts';

export default class PipelineList extends BaseCommand<typeof PipelineList> {
  static override summary =
    'List the pipelines of a tenant: the files in configs/<tenant>/pipelines/ and the versions pushed to the environment.';
  static override description =
    'LOCAL is the content hash of the workspace files, PUSHED the active version in tenant_pipeline_configs of --env; "modified" means the workspace differs from what remote runs execute (run `pipeline push`).';
  static override examples = [
    '<%= config.bin %> pipeline list --tenant acme_corp',
    '<%= config.bin %> pipeline list --tenant acme_corp --env staging',
    '<%= config.bin %> pipeline list --tenant acme_corp --json',
  ];
  static override flags = { tenant: Flags.string({ description: 'Tenant id', required: true }) };

  public async run(): Promise<PipelineEntry[]> {
    const ctx = await this.context();
    const pipelines = await listPipelines(ctx, this.flags.tenant);
    if (pipelines.length === 0) this.log(`No pipelines in configs/${this.flags.tenant}/pipelines/ and none pushed to ${ctx.env.name}.`);
    else
      this.log(
        formatTable(pipelines, [
          { header: 'pipeline', get: (p) => p.pipelineId },
          { header: 'valid', get: (p) => p.valid },
          { header: 'steps', get: (p) => (p.valid ? p.steps.length : null) },
          { header: 'schedule', get: (p) => p.schedule },
          { header: 'local', get: (p) => p.localVersion },
          { header: 'pushed', get: (p) => p.pushedVersion },
          {
            header: 'sync',
            get: (p) =>
              !p.pushedVersion ? 'not pushed' : !p.file ? 'pushed only' : p.pushedVersion === p.localVersion ? 'in sync' : 'modified',
          },
          { header: 'description', get: (p) => p.description ?? p.error?.split('\n')[0] },
        ]),
      );
    for (const p of pipelines.filter((x) => !x.valid)) this.warn(`${p.file} is invalid: run \`convergence pipeline validate ${p.file}\``);
    return pipelines;
  }
}
